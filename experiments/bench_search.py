"""Benchmark the search loop, as ratios measured in one process:

1. evaluations per second with 2 Ray workers vs 1 (goal on the 2-core machine: >= 1.7x);
2. the driver's own cost per evaluation (ask, tell, snapshot, SQLite commit, hall of fame) with an
   executor that answers at once, relative to the mean training time of one evaluation;
3. with ``--batched K`` instead: evaluations per second of a 2-worker search whose actors train
   their K candidates per call together (``[executor] batched = true``) vs one at a time, both with
   ``batch_size = K``.

    python experiments/bench_search.py [--evals 100] [--tasks digits_mlp large_batch] [--batch-size 2]
    python experiments/bench_search.py --batched 8 [--tasks heavy_tail noisy_digits]
"""

from __future__ import annotations

import argparse
import hashlib
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
    args = ap.parse_args(argv)
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


if __name__ == "__main__":
    main()
