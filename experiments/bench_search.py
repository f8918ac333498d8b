"""Benchmark the search loop, as ratios measured in one process:

1. evaluations per second with 2 Ray workers vs 1 (goal on the 2-core machine: >= 1.7x);
2. the driver's own cost per evaluation (ask, tell, snapshot, SQLite commit, hall of fame) with an
   executor that answers at once, relative to the mean training time of one evaluation.

    python experiments/bench_search.py [--evals 60] [--task digits_mlp]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from dataclasses import replace

from evosearch.config import SearchConfig
from evosearch.search import run_search
from evosearch.store import Evaluation


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
    ap.add_argument("--task", default="digits_mlp")
    args = ap.parse_args(argv)
    import ray
    from evosearch.executor import init_ray
    init_ray(num_cpus=2)
    base = SearchConfig(warm_start="adamw", max_evals=args.evals, population_size=20, tournament_size=4,
                        tasks=(args.task,), batch_size=1)
    rates = {}
    for workers in (1, 2, 1, 2):       # interleaved, so that drifting machine load hits both
        with tempfile.TemporaryDirectory() as d:
            cfg = replace(base, workers=workers, seed=workers)
            t0 = time.time()
            out = run_search(cfg, d)
            rates.setdefault(workers, []).append(out.evaluations / (time.time() - t0))
    r1, r2 = (sum(rates[w]) / len(rates[w]) for w in (1, 2))
    print(f"{args.task}: {args.evals} evaluations per run, runs interleaved 1,2,1,2 workers")
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


if __name__ == "__main__":
    main()
