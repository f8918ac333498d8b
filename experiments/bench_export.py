"""Benchmark: the step time of exported Lion on ~10M parameters, as ratios measured in one process
against lion-pytorch's Lion, torch.optim.AdamW(foreach=True) and a memory-bandwidth floor (the bytes
a Lion step must move, moved by two ``torch._foreach_add_`` calls), for each path of the exported
module: the default (``foreach=None``: chosen by the parameters' device), foreach, per tensor (in
cache-sized tiles, and on whole tensors as it was before tiles), fused.

    python experiments/bench_export.py [--device cpu|cuda|cuda:N] [--params 10000000] [--repeats 30]
    python experiments/bench_export.py --in-loop [--device ...] [--repeats 30]

``--in-loop`` times each optimizer's step inside a training loop of its own copy of a 9.4M-parameter
MLP instead, the steps interleaved: the forward and backward passes between two steps use the cache
and the memory allocator as training does, which moves lion-pytorch's step (it allocates two
temporaries of each parameter's size) and the exported loop's by different amounts.

Goals: the default path <= 0.6x lion-pytorch on CPU; the fused path <= 1.5x the floor on CPU and CUDA.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import torch

from evosearch import reference
from evosearch.optim.export import export

DEFAULT_GOAL = 0.6     # x lion-pytorch, on CPU (issue 17)
FUSED_GOAL = 1.5       # x the floor, on CPU and CUDA


def _params(total: int, device: torch.device):
    # A transformer-like mix of shapes: a few large matrices and many small vectors.
    shapes = [(1024, 1024)] * (total // (1024 * 1024 + 1024)) + [(1024,)] * (total // (1024 * 1024 + 1024))
    ps = [torch.nn.Parameter(torch.randn(s, device=device) * 0.02) for s in shapes]
    for p in ps:
        p.grad = torch.randn_like(p)
    return ps


def _time(steps: dict, repeats: int, device: torch.device) -> dict:
    """The median wall time of one step of each of ``steps`` (name -> step function). The steps take
    turns, one step each per round, so that a load that comes and goes on the machine falls on all
    of them alike; on CUDA the queue is drained before and after each step, so that a step counts its
    kernels, not only their launch."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    for step in steps.values():
        for _ in range(3):
            step()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _in_loop(makers: dict, repeats: int, device: torch.device, batch: int = 64) -> dict:
    """The median time of ``opt.step()`` inside a training loop, for each of ``makers`` (name ->
    function of parameters returning an optimizer): each gets its own copy of one MLP (nine
    1024x1024 linear layers with GELU, 9.4M parameters) and takes one training step (forward,
    backward, step) per round in turn. Between two steps of an optimizer the forward and backward
    passes run, which use the cache and the allocator as a training loop does."""
    torch.manual_seed(0)
    layers = [m for _ in range(9) for m in (torch.nn.Linear(1024, 1024), torch.nn.GELU())]
    base = torch.nn.Sequential(*layers).to(device)
    x, y = torch.randn(batch, 1024, device=device), torch.randn(batch, 1024, device=device)
    cases = {}
    for name, make in makers.items():
        model = copy.deepcopy(base)
        cases[name] = (model, make(list(model.parameters())))
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    times = {name: [] for name in cases}
    for round_ in range(repeats + 3):
        for name, (model, opt) in cases.items():
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            sync()
            t0 = time.perf_counter()
            opt.step()
            sync()
            if round_ >= 3:                   # the first steps allocate the states (and compile)
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _default_path(mod, device: torch.device) -> str:
    """The path the exported module's default (``foreach=None``) takes for parameters on ``device``."""
    return "foreach" if mod._use_foreach(None, [torch.zeros(1, device=device)]) else "per tensor, tiled"


def _makers(mod, whole, LionPytorch, default_path: str) -> dict:
    """The optimizers both modes time, by name: each a function of the parameters. ``mod`` and
    ``whole`` are two loads of the exported Lion, the second with tiles off."""
    kw = dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.01)
    return {
        "lion-pytorch Lion": lambda ps: LionPytorch(ps, **kw),
        "torch AdamW(foreach=True)": lambda ps: torch.optim.AdamW(ps, lr=1e-3, foreach=True),
        f"exported Lion (default: {default_path})": lambda ps: mod.Lion(ps, **kw),
        "exported Lion (foreach)": lambda ps: mod.Lion(ps, foreach=True, **kw),
        "exported Lion (per tensor, tiled)": lambda ps: mod.Lion(ps, foreach=False, **kw),
        "exported Lion (per tensor, whole)": lambda ps: whole.Lion(ps, foreach=False, **kw),
        "exported Lion (fused)": lambda ps: mod.Lion(ps, fused=True, **kw),
    }


def _print_table(results: dict, bases: dict) -> None:
    """One row per case: its ms per step and its ratio to each of ``bases`` (column title -> seconds)."""
    print(f"{'':<42}{'ms/step':>9}" + "".join(f"{title:>{len(title) + 2}}" for title in bases))
    for name, t in results.items():
        ratios = "".join(f"{t / base:>{len(title) + 2}.2f}" for title, base in bases.items())
        print(f"{name:<42}{t * 1e3:>9.3f}{ratios}")


def _where(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"


def _print_default_goal(device: torch.device, default: float) -> None:
    """The default path's step against lion-pytorch's, and the goal where the issue sets one (CPU)."""
    if device.type == "cpu":
        print(f"goal: default <= {DEFAULT_GOAL}x lion-pytorch on CPU: {default:.2f}x, "
              f"{'met' if default <= DEFAULT_GOAL else 'NOT met'}")
    else:
        print(f"default: {default:.2f}x lion-pytorch (the issue sets this goal on CPU only)")


def _load(path: Path):
    """A fresh module object from the exported file (each has its own globals, ``_TILED`` among them)."""
    spec = importlib.util.spec_from_file_location("lion_export", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _device(name: str) -> torch.device:
    """The device ``--device`` names, or a one-line error where it is none this machine has."""
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise SystemExit(f"bench_export: --device {name!r}: expected cpu, cuda or cuda:N")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise SystemExit(f"bench_export: --device {name}, but torch {torch.__version__} sees "
                         f"{torch.cuda.device_count()} CUDA devices")
    return device


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    ap.add_argument("--params", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--in-loop", action="store_true",
                    help="time each step inside a training loop of its own 9.4M-parameter MLP instead")
    args = ap.parse_args(argv)
    device = _device(args.device)
    from lion_pytorch import Lion as LionPytorch

    path = export(reference.load("lion"), Path(tempfile.mkdtemp()) / "lion_export.py", "Lion")
    mod, whole = _load(path), _load(path)
    whole._TILED = False        # the one-tensor loop as it was before tiles: one statement at a time

    if args.in_loop:
        _main_in_loop(args, mod, whole, device, LionPytorch)
        return
    ps = _params(args.params, device)
    n = sum(p.numel() for p in ps)
    default_path = _default_path(mod, device)
    cases = {"floor: 2x _foreach_add_": None}
    cases.update({name: make(ps) for name, make in _makers(mod, whole, LionPytorch, default_path).items()})
    grads = [p.grad for p in ps]
    m = [torch.zeros_like(p) for p in ps]
    data = [p.data for p in ps]

    def floor():
        torch._foreach_add_(data, grads)   # reads w, g; writes w
        torch._foreach_add_(m, grads)      # reads m, g; writes m

    t0 = time.perf_counter()
    cases["exported Lion (fused)"].step()  # compile once, outside the timing
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    compile_s = time.perf_counter() - t0
    with torch.no_grad():
        results = _time({name: floor if opt is None else opt.step for name, opt in cases.items()},
                        args.repeats, device)
    base_floor = results["floor: 2x _foreach_add_"]
    base_lion = results["lion-pytorch Lion"]
    where = _where(device)
    print(f"{n / 1e6:.1f}M parameters in {len(ps)} tensors on {device.type} ({where}), torch {torch.__version__}; "
          f"fused compile {compile_s:.1f} s (once); median of {args.repeats} rounds of one step each")
    _print_table(results, {"x floor": base_floor, "x lion-pytorch": base_lion})

    default = results[f"exported Lion (default: {default_path})"] / base_lion
    fused = results["exported Lion (fused)"] / base_floor
    _print_default_goal(device, default)
    print(f"goal: fused <= {FUSED_GOAL}x the floor: {fused:.2f}x, {'met' if fused <= FUSED_GOAL else 'NOT met'}")


def _main_in_loop(args, mod, whole, device, LionPytorch) -> None:
    default_path = _default_path(mod, device)
    results = _in_loop(_makers(mod, whole, LionPytorch, default_path), args.repeats, device)
    base = results["lion-pytorch Lion"]
    print(f"optimizer step inside a training loop (9.4M-parameter MLP, batch 64) on {device.type} "
          f"({_where(device)}), torch {torch.__version__}; median of {args.repeats} steps each, interleaved")
    _print_table(results, {"x lion-pytorch": base})
    _print_default_goal(device, results[f"exported Lion (default: {default_path})"] / base)


if __name__ == "__main__":
    main()
