"""Benchmark: the step time of exported Lion on ~10M parameters (CPU), as ratios measured in one
process against lion-pytorch's Lion, torch.optim.AdamW(foreach=True) and a memory-bandwidth floor
(the bytes a Lion step must move, moved by two ``torch._foreach_add_`` calls).

    python experiments/bench_export.py [--params 10000000] [--repeats 30]

Goals: fused exported Lion <= 0.6x lion-pytorch and <= 1.5x the floor.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import torch

from evosearch import reference
from evosearch.optim.export import export


def _params(total: int):
    # A transformer-like mix of shapes: a few large matrices and many small vectors.
    shapes = [(1024, 1024)] * (total // (1024 * 1024 + 1024)) + [(1024,)] * (total // (1024 * 1024 + 1024))
    ps = [torch.nn.Parameter(torch.randn(s) * 0.02) for s in shapes]
    for p in ps:
        p.grad = torch.randn_like(p)
    return ps


def _time(step, repeats: int) -> float:
    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args(argv)
    from lion_pytorch import Lion as LionPytorch

    path = export(reference.load("lion"), Path(tempfile.mkdtemp()) / "lion_export.py", "Lion")
    spec = importlib.util.spec_from_file_location("lion_export", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    ps = _params(args.params)
    n = sum(p.numel() for p in ps)
    kw = dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.01)
    cases = {
        "floor: 2x _foreach_add_": None,
        "lion-pytorch Lion": LionPytorch(ps, **kw),
        "torch AdamW(foreach=True)": torch.optim.AdamW(ps, lr=1e-3, foreach=True),
        "exported Lion (foreach)": mod.Lion(ps, **kw),
        "exported Lion (per tensor)": mod.Lion(ps, foreach=False, **kw),
        "exported Lion (fused)": mod.Lion(ps, fused=True, **kw),
    }
    grads = [p.grad for p in ps]
    m = [torch.zeros_like(p) for p in ps]
    data = [p.data for p in ps]

    def floor():
        torch._foreach_add_(data, grads)   # reads w, g; writes w
        torch._foreach_add_(m, grads)      # reads m, g; writes m

    t0 = time.perf_counter()
    cases["exported Lion (fused)"].step()  # compile once, outside the timing
    compile_s = time.perf_counter() - t0
    results = {}
    for name, opt in cases.items():
        with torch.no_grad():
            results[name] = _time(floor if opt is None else opt.step, args.repeats)
    base_floor = results["floor: 2x _foreach_add_"]
    base_lion = results["lion-pytorch Lion"]
    print(f"{n / 1e6:.1f}M parameters in {len(ps)} tensors, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; fused compile {compile_s:.1f} s (once)")
    print(f"{'':<30}{'ms/step':>9}{'x floor':>9}{'x lion-pytorch':>16}")
    for name, t in results.items():
        print(f"{name:<30}{t * 1e3:>9.2f}{t / base_floor:>9.2f}{t / base_lion:>16.2f}")


if __name__ == "__main__":
    main()
