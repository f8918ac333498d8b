"""Benchmark: the cost of evaluating candidates (fast evaluation), as ratios measured in one
process, on the quick proxy tasks.

    python experiments/bench_evaluation.py [--tasks digits_mlp,...] [--k 32] [--repeats 3]
    python experiments/bench_evaluation.py --tasks digits_cnn,char_lm --inexact   # also exact=False

(a) Training time with a program on flat buffers (the path ``Task.evaluate`` takes) over
    ``torch.optim.AdamW(foreach=True)``: the AdamW warm start, and ``adamw_torch`` (the same math as
    torch's AdamW). Goal: <= 1.15.
(b) Throughput of ``tasks.batched.evaluate_batch`` over ``task.evaluate`` one program at a time,
    for K candidates: the twelve reference programs in turn, each at a learning rate where it trains.
    Goal: >= 4 at K = 32. Also prints how far the two fitness lists are apart (0 means bit for bit),
    and the ceiling of the ratio: one at a time over the batched forward and backward alone (the
    products of K models, which no batched step can skip).

Times are CPU seconds of this process (``time.process_time``; every path trains on one thread), the
best of ``--repeats`` interleaved runs, so that other processes on a shared machine disturb the
ratios less than they would wall-clock times.
"""

from __future__ import annotations

import argparse
import time

import torch

import tasks
from evosearch import reference, to_optimizer
from tasks.batched import evaluate_batch

QUICK_TASKS = ("digits_mlp", "noisy_digits", "large_batch", "heavy_tail", "quadratic")
# A learning rate at which each reference program trains on the quick tasks (the programs carry their
# own scale: the AdamW warm start multiplies lr by 1e-3).
WORKING_LR = {"adamw": 1.0, "adamw_torch": 1e-3, "adam": 1e-3, "lion": 1e-4, "signum": 1e-3,
              "signsgd": 1e-3, "sgd": 0.1, "sgd_momentum": 0.01, "rmsprop": 1e-3, "adagrad": 1e-2,
              "addsign": 0.05, "powersign": 0.05}


def _best(fns: dict, repeats: int) -> dict:
    """The least CPU time of each function over ``repeats`` interleaved rounds."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - t0)
    return best


def optimizer_step_cost(task, repeats: int) -> dict:
    """(a): training time of each optimizer over torch's AdamW(foreach=True)."""
    adamw = to_optimizer(reference.load("adamw"), flat=True)
    adamw_torch = to_optimizer(reference.load("adamw_torch"), flat=True)
    inf = float("inf")
    best = _best({
        "torch": lambda: task.train(lambda p, lr: torch.optim.AdamW(p, lr=lr, weight_decay=0.01, foreach=True),
                                    0, 1e-3, time_limit=inf),
        "adamw": lambda: task.train(lambda p, lr: adamw(p, lr=lr), 0, 1.0, time_limit=inf),
        "adamw_torch": lambda: task.train(lambda p, lr: adamw_torch(p, lr=lr), 0, 1e-3, time_limit=inf),
    }, repeats)
    return {"adamw": best["adamw"] / best["torch"], "adamw_torch": best["adamw_torch"] / best["torch"]}


def forward_backward_alone(task, k: int) -> float:
    """CPU seconds of the batched forward and backward alone (no update rule, no checks) of K
    models over a training run: no batched evaluation with these kernels can take less."""
    from tasks import batched
    with batched._training():
        torch.manual_seed(0)
        model = task.make_model()
        layout = batched._Layout(model)
        loss = batched._batched_loss(task, model, layout)
        stack = batched._Stack(layout.flat().expand(k, layout.numel).clone(), layout)
        t0 = time.process_time()
        for xb, yb in task.minibatches(0):
            stack.backward(loss, xb, yb)
        return time.process_time() - t0


def batch_throughput(task, k: int, repeats: int, exact: bool = True) -> tuple[float, float, int, float]:
    """(b): (time one at a time / time batched, max |fitness difference|, failures, the ceiling of
    the ratio: time one at a time / the batched forward and backward alone)."""
    names = list(WORKING_LR)
    programs = [reference.load(names[i % len(names)]) for i in range(k)]
    lrs = [WORKING_LR[names[i % len(names)]] for i in range(k)]
    out = {}
    best = _best({
        "single": lambda: out.__setitem__("single", [task.evaluate(p, 0, r) for p, r in zip(programs, lrs)]),
        "batch": lambda: out.__setitem__("batch", evaluate_batch(task, programs, 0, lrs, exact=exact)),
        "floor": lambda: out.__setitem__("floor", forward_backward_alone(task, k)),
    }, repeats)
    gap = max(abs(a.fitness - b.fitness) for a, b in zip(out["single"], out["batch"]))
    failures = sum(r.failure is not None for r in out["single"])
    return best["single"] / best["batch"], gap, failures, best["single"] / best["floor"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=",".join(QUICK_TASKS))
    ap.add_argument("--k", type=int, default=32, help="candidates per batch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--inexact", action="store_true",
                    help="also time evaluate_batch(exact=False) (for tasks that are not batched exactly)")
    args = ap.parse_args(argv)
    names = args.tasks.split(",")
    for name in names:   # tuned baselines are cached on disk; compute them before timing anything
        tasks.get(name).baseline(0)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available, training on 1\n")
    print("(a) training time / torch.optim.AdamW(foreach=True)   (goal <= 1.15)\n")
    print("| task | AdamW warm start (flat) | adamw_torch (flat) |")
    print("| --- | ---: | ---: |")
    for name in names:
        r = optimizer_step_cost(tasks.get(name), args.repeats)
        print(f"| {name} | {r['adamw']:.2f} | {r['adamw_torch']:.2f} |", flush=True)

    print(f"\n(b) throughput of evaluate_batch, K = {args.k} reference programs, / one at a time"
          "   (goal >= 4)\n")
    print("| task | exact: × one at a time | max abs fitness gap | ceiling: forward-backward alone |"
          + (" exact=False: × | gap |" if args.inexact else ""))
    print("| --- | ---: | ---: | ---: |" + (" ---: | ---: |" if args.inexact else ""))
    for name in names:
        task = tasks.get(name)
        ratio, gap, _, ceiling = batch_throughput(task, args.k, args.repeats)
        row = f"| {name} | {ratio:.2f} | {gap:.1e} | {ceiling:.2f} |"
        if args.inexact:
            ratio, gap, _, _ = batch_throughput(task, args.k, args.repeats, exact=False)
            row += f" {ratio:.2f} | {gap:.1e} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
