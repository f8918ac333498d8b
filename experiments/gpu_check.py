"""The GPU check: on a machine with CUDA, in a few minutes, what evosearch gets from its GPUs, as
ratios measured in one run (README, "GPUs"):

    python experiments/gpu_check.py [--out gpu_check.json]

1. evaluation throughput on one task, one candidate at a time, on the GPU against the host CPU;
2. batched evaluation on the GPU (``tasks.batched``: K candidates' models stacked and trained
   together) at K = 32 and 256 against one at a time there, and whether the batched step is exact
   on the GPU (the search batches only where it is);
3. what ``[executor] deterministic`` (``torch.use_deterministic_algorithms``) costs, and whether
   two runs of a seed agree bit for bit with it and without it;
4. a short search with ``device = "cuda"`` and two evaluators per GPU (``gpus_per_worker = 0.5``;
   ``--shares 1 0.5 0.25`` runs one search at each share, to compare one, two and four per GPU);
5. the export benchmark on CUDA (``bench_export.py --device cuda``): exported Lion against
   lion-pytorch and the memory-bandwidth floor.

``--device cpu --quick`` runs every step on the CPU at a tiny size (what the test suite does: the
same code paths, no GPU needed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# cuBLAS reads its workspace setting once, at the first product: set before anything runs, so that
# step 3 can switch deterministic algorithms on later in this process (the other steps are
# unaffected but for the workspace's size)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402

import tasks  # noqa: E402
from evosearch import Program, reference  # noqa: E402
from tasks import batched as batched_module  # noqa: E402
from tasks import devices  # noqa: E402

from lion_rediscovery_ladder import RUNG_PROGRAMS  # noqa: E402


def _programs(k: int) -> list:
    """K candidates: the rediscovery's rung programs in turn (the AdamW warm start and five sign-based
    variants at the search's scales, ``lr * 0.001``). Every one trains to the end on the proxy tasks,
    as most of a search's candidates do; the reference programs at their own learning rates mostly
    diverge within ten steps there, which times (and compares) far less than a training."""
    return [Program.parse(RUNG_PROGRAMS[i % len(RUNG_PROGRAMS)][1]) for i in range(k)]


def _rate(fn, count: int, device: torch.device) -> float:
    """Evaluations per second of ``fn()``, which evaluates ``count`` candidates."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - t0)


def one_at_a_time(task_name: str, size: str, device: torch.device, n: int) -> dict:
    """Evaluations per second of ``n`` candidates trained one at a time on ``device``, after a
    warm-up evaluation (CUDA's start), and the warm start's fitness there."""
    task = tasks.get(task_name, size, device=device)
    task.baseline(0)
    warm = task.evaluate(reference.load("adamw"))
    progs = _programs(n)
    rate = _rate(lambda: [task.evaluate(p) for p in progs], n, device)
    return {"device": devices.describe(device), "evaluations_per_s": rate, "adamw_fitness": warm.fitness,
            "adamw_val_loss": warm.metrics.get("val_loss")}


def batched(task_name: str, size: str, device: torch.device, ks: tuple[int, ...], alone_rate: float) -> dict:
    """Batched evaluation at each K: evaluations per second, its ratio to one at a time on the same
    device, and whether a batched step is exact there (``tasks.batched._BATCHING``)."""
    task = tasks.get(task_name, size, device=device)
    task.baseline(0)
    out = {}
    for k in ks:
        progs = _programs(k)
        batched_module.evaluate_batch(task, progs[:2], exact=False)       # warm-up: vmap's first trace
        rate = _rate(lambda: batched_module.evaluate_batch(task, progs, exact=False), k, device)
        exact = batched_module._BATCHING.get((batched_module._setup(task), k), "unchecked")
        out[k] = {"evaluations_per_s": rate, "x_one_at_a_time": rate / alone_rate, "exact": exact}
    return out


def determinism(task_name: str, size: str, device: torch.device, n: int) -> dict:
    """Two runs of the same candidates without and with torch's deterministic algorithms: whether
    the runs agree bit for bit, and the throughput ratio (deterministic / default)."""
    task = tasks.get(task_name, size, device=device)
    progs = _programs(n)

    def run():
        return [(r.metrics.get("val_loss"), r.metrics.get("loss_curve"), r.failure)
                for r in (task.evaluate(p) for p in progs)]

    out = {}
    for label in ("default", "deterministic"):
        if label == "deterministic":
            devices.make_deterministic()
        first, again = run(), []
        rate = _rate(lambda: again.extend(run()), n, device)
        # a candidate that diverges the same way twice is reproduced; one that raised (an operation
        # without a deterministic version) is not evidence either way, and is listed
        errors = [f for _, _, f in first + again if f and f.startswith("exception")]
        out[label] = {"evaluations_per_s": rate, "bit_for_bit": first == again and not errors,
                      "compared": sum(v is not None for v, _, _ in first), "errors": errors}
    torch.use_deterministic_algorithms(False)
    out["cost"] = out["default"]["evaluations_per_s"] / out["deterministic"]["evaluations_per_s"]
    return out


def search(task_name: str, device_name: str, seconds: float, gpus_per_worker: float, max_evals: int = 100000) -> dict:
    """A short real search on Ray (``device``, ``gpus_per_worker``): trained candidates per second
    and the devices the store recorded."""
    import sqlite3

    from evosearch.search.config import SearchConfig
    from evosearch.search.driver import run_search
    gpus = torch.cuda.device_count() if device_name != "cpu" else 0
    workers = max(1, int(gpus / gpus_per_worker)) if gpus_per_worker else min(2, os.cpu_count() or 1)
    cfg = SearchConfig(warm_start="adamw", max_evals=max_evals, time_limit=seconds, population_size=32,
                       tournament_size=4, tasks=(task_name,), device=device_name,
                       gpus_per_worker=gpus_per_worker, workers=workers)
    folder = Path(tempfile.mkdtemp(prefix="evosearch-gpu-check-")) / "run"
    t0 = time.perf_counter()
    outcome = run_search(cfg, folder)     # a later share's search, with more workers, restarts the
                                          # embedded Ray with more CPUs (executors.init_ray)
    wall = time.perf_counter() - t0
    db = sqlite3.connect(folder / "run.sqlite")
    where = sorted({json.loads(m).get("device", {}).get("name", "?") for (m,) in
                    db.execute("SELECT metrics FROM candidates WHERE status = 'evaluated'")})
    db.close()
    return {"workers": workers, "gpus_per_worker": gpus_per_worker, "evaluations": outcome.evaluations,
            "seconds": outcome.seconds, "wall_seconds": wall,
            "evaluations_per_s": outcome.evaluations / max(outcome.seconds, 1e-9), "devices": where,
            "best_fitness": outcome.best_fitness, "folder": str(folder)}


def export_benchmark(device_name: str, quick: bool) -> str:
    """``bench_export.py`` on the device, its printed table."""
    args = [sys.executable, str(Path(__file__).with_name("bench_export.py")), "--device", device_name]
    if quick:
        args += ["--params", "2100000", "--repeats", "3"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900)
    return done.stdout + (done.stderr if done.returncode else "")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help='the device to check (default cuda; "cpu" for a dry run)')
    ap.add_argument("--task", default="digits_mlp", help="the task the evaluations train (default digits_mlp)")
    ap.add_argument("--vit", default="digits_vit", help="a second, attention task for the throughput rows")
    ap.add_argument("--n", type=int, default=24, help="candidates per one-at-a-time timing")
    ap.add_argument("--ks", type=int, nargs="+", default=[32, 256], help="batch sizes of batched evaluation")
    ap.add_argument("--search-seconds", type=float, default=90)
    ap.add_argument("--shares", type=float, nargs="+", default=[0.5],
                    help="gpus_per_worker of each step-4 search on a GPU (default 0.5: two evaluators per GPU)")
    ap.add_argument("--no-throughput", action="store_true", help="skip steps 1-2 (measured already)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (the test suite's dry run on the CPU)")
    ap.add_argument("--no-search", action="store_true", help="skip step 4 (a machine without Ray)")
    ap.add_argument("--no-export", action="store_true", help="skip step 5 (a machine without lion-pytorch)")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.ks, args.search_seconds = 2, [2, 3], 120     # the search stops at 6 trained
    device = devices.resolve(args.device)
    cpu = torch.device("cpu")
    report: dict = {"device": devices.describe(device), "torch": torch.__version__, "python": platform.python_version(),
                    "host": platform.node(), "cpu_threads": torch.get_num_threads(), "args": vars(args) | {"out": None}}
    say = print
    say(f"evosearch GPU check on {report['device']} (torch {torch.__version__})")

    # 1-2. throughput, one at a time and batched
    report["throughput"] = {}
    for name in [] if args.no_throughput else dict.fromkeys([args.task, args.vit]):
        here = one_at_a_time(name, "proxy", device, args.n)
        host = one_at_a_time(name, "proxy", cpu, max(2, args.n // 4))
        row = {"one_at_a_time": here, "host_cpu": host,
               "x_host_cpu": here["evaluations_per_s"] / host["evaluations_per_s"],
               "batched": batched(name, "proxy", device, tuple(args.ks), here["evaluations_per_s"])}
        report["throughput"][name] = row
        say(f"{name}: one at a time {here['evaluations_per_s']:.2f}/s on {here['device']}, "
            f"{host['evaluations_per_s']:.2f}/s on the host CPU ({row['x_host_cpu']:.2f}x); AdamW fitness "
            f"{here['adamw_fitness']:.4f} there, {host['adamw_fitness']:.4f} on the CPU")
        for k, b in row["batched"].items():
            say(f"  batched K={k}: {b['evaluations_per_s']:.2f}/s, {b['x_one_at_a_time']:.2f}x one at a time "
                f"(batched step {b['exact']} on this device)")

    # 3. determinism, on each task
    report["determinism"] = {}
    for name in dict.fromkeys([args.task, args.vit]):
        d = report["determinism"][name] = determinism(name, "proxy", device, max(2, args.n // 4))
        say(f"{name}: deterministic algorithms {d['cost']:.2f}x the time; two runs bit for bit: "
            f"default {d['default']['bit_for_bit']}, deterministic {d['deterministic']['bit_for_bit']} "
            f"({d['default']['compared']} trained candidates compared)")

    if args.out:       # what is measured so far, in case the rest does not finish
        args.out.write_text(json.dumps(report, indent=1, default=str))
    # 4. short searches, two evaluators per GPU (or each share asked for)
    report["search"] = None if args.no_search else []
    for share in [] if args.no_search else (args.shares if device.type != "cpu" else [0.0]):
        s = search(args.task, args.device, args.search_seconds, share, 6 if args.quick else 100000)
        report["search"].append(s)
        say(f"search: {s['evaluations']} trained in {s['seconds']:.0f} s ({s['evaluations_per_s']:.2f}/s) by "
            f"{s['workers']} workers at {s['gpus_per_worker']:g} GPU each; recorded devices {s['devices']}; "
            f"best fitness {s['best_fitness'] if s['best_fitness'] is None else round(s['best_fitness'], 4)}")
        if args.out:
            args.out.write_text(json.dumps(report, indent=1, default=str))

    # 5. the export benchmark
    if not args.no_export:
        table = export_benchmark(args.device if device.type != "cpu" else "cpu", args.quick)
        report["export"] = table
        say(table.rstrip())
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, default=str))
        say(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
