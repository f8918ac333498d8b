"""Benchmark the search loop, as ratios measured in one process:

1. evaluations per second with 2 Ray workers vs 1 (goal on the 2-core machine: >= 1.7x);
2. the driver's own cost per evaluation (ask, tell, snapshot, SQLite commit, hall of fame) with an
   executor that answers at once, relative to the mean training time of one evaluation;
3. with ``--batched K`` instead: evaluations per second of a 2-worker search whose actors train
   their K candidates per call together (``[executor] batched = true``) vs one at a time, both with
   ``batch_size = K``;
4. with ``--task NAME`` instead: the search machinery on one (tiny) task, in-process and with 1 and
   2 Ray workers in one run (interleaved): children per second, trained evaluations per second, what
   was skipped and why, the workers' busy fraction, the driver's CPU time per child, and the time to
   the first result and after the last.

    python experiments/bench_search.py [--evals 100] [--tasks digits_mlp large_batch] [--batch-size 2]
    python experiments/bench_search.py --batched 8 [--tasks heavy_tail noisy_digits]
    python experiments/bench_search.py --task iris_mlp [--evals 400]
    python experiments/bench_search.py --task iris_mlp --driver-share   # the driver's CPU per setting
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from dataclasses import replace

from evosearch.search.config import SearchConfig
from evosearch.search.driver import run_search
from evosearch.search.suite import Evaluation


class SteadyRate:
    """A progress hook that times evaluations after the first ``warmup`` (Ray start-up, actors
    loading their tasks and the warm start are not throughput)."""

    def __init__(self, warmup: int):
        self.warmup, self.t0, self.n0, self.t1, self.n1 = warmup, None, 0, None, 0

    def update(self, evo, executor, elapsed):
        n = evo.counters.evaluated
        if self.t0 is None and n >= self.warmup:
            self.t0, self.n0 = time.perf_counter(), n
        if self.t0 is not None:
            self.t1, self.n1 = time.perf_counter(), n

    def log(self, message):
        pass

    def rate(self) -> float:
        return (self.n1 - self.n0) / (self.t1 - self.t0)


class InstantExecutor:
    """Scores candidates with a hash of their fingerprint: no training, only driver work."""

    workers = 1
    replaced = 0

    def __init__(self):
        self.queue = []

    def capacity(self):
        return 4

    def in_flight(self):
        return len(self.queue)

    def submit(self, candidates):
        self.queue.extend(candidates)

    def poll(self, timeout=0.0):
        out = [Evaluation(c.id, int(hashlib.sha1(c.fingerprint.encode()).hexdigest()[:8], 16) / 2**32,
                          {}, {}, None, "instant", 0.0) for c in self.queue]
        self.queue = []
        return out

    def shutdown(self):
        pass


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=60)
    ap.add_argument("--tasks", nargs="+", default=["digits_mlp", "large_batch"],
                    help="the suite (default: the quickstart's)")
    ap.add_argument("--batch-size", type=int, default=2, help="candidates per actor call (config default 2)")
    ap.add_argument("--warmup", type=int, default=10, help="evaluations before timing starts")
    ap.add_argument("--batched", type=int, default=0, metavar="K",
                    help="compare batched evaluation with K candidates per call against unbatched (3.)")
    ap.add_argument("--task", help="measure the search machinery on this one task (4.)")
    ap.add_argument("--driver-share", action="store_true",
                    help="with --task: trained/s and the driver's share of a core, per executor setting")
    args = ap.parse_args(argv)
    if args.task and args.driver_share:
        return driver_share(args)
    if args.task:
        return machinery(args)
    import ray

    from evosearch.search.executors import init_ray
    init_ray(num_cpus=2)
    base = SearchConfig(warm_start="adamw", max_evals=args.evals, population_size=20, tournament_size=4,
                        tasks=tuple(args.tasks), batch_size=args.batch_size)
    if args.batched:
        return compare_batched(replace(base, batch_size=args.batched, workers=2), args)
    rates = {}
    for workers in (1, 2, 1, 2):       # interleaved, so that drifting machine load hits both
        with tempfile.TemporaryDirectory() as d:
            cfg = replace(base, workers=workers, seed=0, max_evals=args.evals + args.warmup)
            meter = SteadyRate(args.warmup)
            run_search(cfg, d, progress=meter)
            rates.setdefault(workers, []).append(meter.rate())
    r1, r2 = (sum(rates[w]) / len(rates[w]) for w in (1, 2))
    print(f"suite {'+'.join(args.tasks)}, batch size {args.batch_size}: {args.evals} timed evaluations "
          f"per run (after {args.warmup}), runs interleaved 1,2,1,2 workers")
    print(f"  1 worker : {r1:.2f} evaluations/s   (runs: {', '.join(f'{x:.2f}' for x in rates[1])})")
    print(f"  2 workers: {r2:.2f} evaluations/s   (runs: {', '.join(f'{x:.2f}' for x in rates[2])})")
    print(f"  speed-up 2 vs 1 workers: {r2 / r1:.2f}x (goal >= 1.7x)")
    ray.shutdown()

    with tempfile.TemporaryDirectory() as d:
        cfg = replace(base, max_evals=2000, population_size=100, tournament_size=10, in_process=True)
        t0 = time.time()
        out = run_search(cfg, d, executor=InstantExecutor())
        driver = (time.time() - t0) / out.evaluations
    train = 1.0 / r1
    print(f"driver loop: {driver * 1e3:.1f} ms per trained evaluation ({out.evaluations} evaluations, "
          f"{out.cache_hits} cache hits, {out.rejected} pruned of {out.generated} children)")
    print(f"  = {driver / train:.3f} of one evaluation's wall time with 1 worker ({train:.2f} s)")


def compare_batched(base: SearchConfig, args) -> None:
    import ray
    rates = {}
    for batched in (False, True, False, True):      # interleaved, as above
        with tempfile.TemporaryDirectory() as d:
            cfg = replace(base, batched=batched, seed=0, max_evals=args.evals + args.warmup)
            meter = SteadyRate(args.warmup)
            run_search(cfg, d, progress=meter)
            rates.setdefault(batched, []).append(meter.rate())
    ray.shutdown()
    r0, r1 = (sum(rates[b]) / len(rates[b]) for b in (False, True))
    print(f"suite {'+'.join(args.tasks)}, 2 workers, batch size {base.batch_size}: {args.evals} timed "
          f"evaluations per run (after {args.warmup}), runs interleaved")
    print(f"  one at a time: {r0:.2f} evaluations/s   (runs: {', '.join(f'{x:.2f}' for x in rates[False])})")
    print(f"  batched      : {r1:.2f} evaluations/s   (runs: {', '.join(f'{x:.2f}' for x in rates[True])})")
    print(f"  batched / one at a time: {r1 / r0:.2f}x")


class Meter:
    """A progress hook for ``machinery``: counters and the driver's CPU time when the steady window
    opens (``warmup`` trained evaluations) and at its last update, and when the first result came."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.first, self.open, self.last = warmup, time.perf_counter(), None, None, None

    def update(self, evo, executor, elapsed):
        c = evo.counters
        now = (time.perf_counter(), time.process_time(), c.generated, c.evaluated, time.time())
        if self.first is None and c.evaluated:
            self.first = now[0]
        if self.open is None and c.evaluated >= self.warmup:
            self.open = now
        self.last = now

    def log(self, message):
        pass


def machinery(args) -> None:
    """4.: see the module docstring."""
    import sqlite3

    import ray

    from evosearch.search.executors import init_ray
    base = SearchConfig(warm_start="adamw", max_evals=args.evals + args.warmup, population_size=100,
                        tournament_size=25, tasks=(args.task,), seed=0)
    init_ray(num_cpus=2)
    modes = {"in-process": replace(base, in_process=True), "1 worker": replace(base, workers=1),
             "2 workers": replace(base, workers=2)}
    rows: dict[str, list[dict]] = {}
    for name in ["in-process", "1 worker", "2 workers"] * 2:        # interleaved against drifting load
        with tempfile.TemporaryDirectory() as d:
            meter = Meter(args.warmup)
            t0 = time.perf_counter()
            out = run_search(modes[name], d, progress=meter)
            t_end = time.perf_counter()
            (ta, ca, ga, ea, wa), (tb, cb, gb, eb, wb) = meter.open, meter.last
            db = sqlite3.connect(f"{d}/run.sqlite")
            # training seconds of the window: candidates recorded in it (commits lag by <= 0.5 s)
            trained_s = db.execute("SELECT COALESCE(SUM(seconds), 0) FROM candidates WHERE status = 'evaluated' "
                                   "AND recorded_at > ? AND recorded_at <= ?", (wa, wb)).fetchone()[0]
            skips = dict(db.execute("SELECT COALESCE(cache_reason, status), COUNT(*) FROM candidates "
                                    "WHERE status != 'evaluated' GROUP BY 1").fetchall())
            failed = db.execute("SELECT COUNT(*) FROM candidates WHERE status = 'evaluated' "
                                "AND failure IS NOT NULL").fetchone()[0]
            db.close()
            workers = 1 if name == "in-process" else int(name[0])
            wall = tb - ta
            # the driver's own time: its CPU time with Ray (its threads included); in-process, the
            # loop's wall time less training
            driver_cpu = (wall - trained_s) if name == "in-process" else (cb - ca)
            rows.setdefault(name, []).append(dict(
                children=(gb - ga) / wall, trained=(eb - ea) / wall, busy=trained_s / (wall * workers),
                driver_ms=1e3 * driver_cpu / max(gb - ga, 1), first=meter.first - t0, after=t_end - tb,
                generated=out.generated, pruned=out.rejected, failed=failed, evaluations=out.evaluations,
                skips=skips))
    ray.shutdown()

    def mean(name, key):
        return sum(r[key] for r in rows[name]) / len(rows[name])
    print(f"task {args.task}: {args.evals} timed trained evaluations per run (after {args.warmup}), population "
          f"100, tournament 25, AdamW warm start; runs interleaved, 2 per mode; means")
    print(f"{'mode':<11} {'children/s':>10} {'trained/s':>9} {'busy':>5} {'driver ms/child':>15} "
          f"{'first result s':>14} {'after last s':>12}")
    for name in modes:
        print(f"{name:<11} {mean(name, 'children'):10.1f} {mean(name, 'trained'):9.1f} {mean(name, 'busy'):5.0%} "
              f"{mean(name, 'driver_ms'):15.3f} {mean(name, 'first'):14.2f} {mean(name, 'after'):12.2f}")
    print(f"2 workers / 1 worker, trained/s: {mean('2 workers', 'trained') / mean('1 worker', 'trained'):.2f}x "
          f"(goal >= 1.7x)")
    # What the machine's cores allow: per trained evaluation with 1 worker, W seconds of the worker
    # and D of the driver's CPU; two workers and the driver need W + D of CPU per trained evaluation
    # (Ray's own processes left out), and one worker goes at 1 / max(W, D).
    trained1 = mean("1 worker", "trained")
    w = mean("1 worker", "busy") / trained1
    d = mean("1 worker", "driver_ms") / 1e3 * mean("1 worker", "children") / trained1
    cores = os.cpu_count() or 1
    bound = min(2 / w, cores / (w + d)) * max(w, d)
    print(f"per trained evaluation, 1 worker: worker {w * 1e3:.2f} ms, driver CPU {d * 1e3:.2f} ms: on {cores} cores "
          f"two workers can give at most {bound:.2f}x one worker's trained/s")
    for name in modes:          # what was not trained anew, over whole runs
        total = sum(r["generated"] for r in rows[name])
        reasons = {"pruned": sum(r["pruned"] for r in rows[name])}
        for r in rows[name]:
            for k, v in r["skips"].items():
                reasons[k] = reasons.get(k, 0) + v
        skipped = sum(reasons.values())
        trained = sum(r["evaluations"] for r in rows[name])
        failed = sum(r["failed"] for r in rows[name])
        print(f"{name}: {total} children, {skipped / total:.0%} not trained anew ("
              + ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
              + f"); {failed} of {trained} trained failed ({failed / max(trained, 1):.0%})")


def driver_share(args) -> None:
    """Trained evaluations per second and the driver process's CPU time per second of search, for
    1 and 2 workers with and without batched training and sized calls (one run each)."""
    from evosearch.search.executors import init_ray
    init_ray(num_cpus=2)
    base = SearchConfig(warm_start="adamw", max_evals=args.evals + args.warmup, population_size=100,
                        tournament_size=25, tasks=(args.task,), seed=0)
    settings = [("2 workers, auto calls, batched", dict(workers=2)),
                ("2 workers, auto calls, one at a time", dict(workers=2, batched=False)),
                ("2 workers, 2 per call, one at a time", dict(workers=2, batched=False, batch_size=2)),
                ("1 worker, auto calls, batched", dict(workers=1)),
                ("1 worker, auto calls, one at a time", dict(workers=1, batched=False))]
    print(f"task {args.task}: {args.evals} trained evaluations timed after {args.warmup}, one run each")
    for label, kw in settings:
        with tempfile.TemporaryDirectory() as d:
            meter = Meter(args.warmup)
            run_search(replace(base, **kw), d, progress=meter)
            (ta, ca, ga, ea, _), (tb, cb, gb, eb, _) = meter.open, meter.last
            print(f"  {label:<38} trained/s {(eb - ea) / (tb - ta):6.1f}  children/s {(gb - ga) / (tb - ta):6.1f}  "
                  f"driver CPU {(cb - ca) / (tb - ta):4.0%} of a core")


if __name__ == "__main__":
    main()
