"""Score programs on a suite as a search scores its candidates, and say what each fitness means in
loss: for every task, the validation loss, its ratio to tuned AdamW's and the accuracy where the
task has one. For the figures a report quotes from runs whose folders are gone.

    python experiments/score.py adamw --tasks digits_mlp large_batch --seeds 0

PROGRAM is a program file or a reference name (``evosearch list-programs``).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from evosearch.search.loading import load_program
from evosearch.search.readings import readings_text, task_readings
from evosearch.search.suite import SuiteEvaluator, SuiteSpec, compute_baselines


def score(programs: list[str], spec: SuiteSpec) -> list[dict]:
    """``{"program", "fitness", "failure", "tasks": readings}`` per program, scored by
    ``SuiteEvaluator.evaluate`` against the suite's tuned-AdamW baselines (cached on disk)."""
    suite = SuiteEvaluator(replace(spec, baselines=compute_baselines(spec)))
    out = []
    for n, name in enumerate(programs):
        e = suite.evaluate(n, load_program(name))
        out.append({"program": name, "fitness": e.fitness, "failure": e.failure,
                    "tasks": task_readings(e.metrics, suite.spec.baselines)})
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("programs", nargs="+", metavar="PROGRAM")
    ap.add_argument("--tasks", nargs="+", required=True)
    ap.add_argument("--size", default="proxy")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args(argv)
    for r in score(args.programs, SuiteSpec(tuple(args.tasks), args.size, tuple(args.seeds))):
        failed = f" ({r['failure']})" if r["failure"] else ""
        print(f"{r['program']}: fitness {r['fitness']:.4f}{failed}; {readings_text(r['tasks'])}")


if __name__ == "__main__":
    main()
