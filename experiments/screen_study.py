"""What the numeric screen (``evosearch/lang/screen.py``) saves and what it loses, on real searches.

For each suite: a search with the screen on (in-process, so that the run is the same for a seed);
then every child it screened out is trained anyway, on the same suite with the run's baselines.
Reported per suite:

- screened children, and of them how many training fails (the trained failures the screen removed),
  how many train without failing, and how many would have beaten the warm start (false rejections:
  the goal is at most 1% of the screened children);
- the trained candidates that failed anyway (what the screen let through);
- the screen's cost per child it ran on (timed again here on the same programs).

    python experiments/screen_study.py [--evals 600] [--suites iris_mlp digits_mlp,large_batch]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from evosearch.lang.program import Program
from evosearch.lang.screen import screen_reason
from evosearch.search.config import SearchConfig
from evosearch.search.driver import run_search
from evosearch.search.store import RunStore
from evosearch.search.suite import SuiteEvaluator


def study(tasks: tuple[str, ...], evals: int, seed: int) -> dict:
    cfg = SearchConfig(warm_start="adamw", max_evals=evals, population_size=100, tournament_size=25,
                       tasks=tasks, seed=seed, in_process=True, device="cpu")
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        run_search(cfg, d)
        search_s = time.time() - t0
        store = RunStore(d, readonly=True)
        baselines = store.baselines()[0]
        warm = store.get_meta("warm_start_fitness")
        store.close()
        db = sqlite3.connect(f"{d}/run.sqlite")
        screened = db.execute("SELECT id, program, failure FROM candidates WHERE status = 'screened'").fetchall()
        trained = db.execute("SELECT program, failure, fitness FROM candidates WHERE status = 'evaluated'"
                             ).fetchall()
        db.close()
    evaluator = SuiteEvaluator(replace(cfg.suite(), baselines=baselines))
    outcomes = {"fails in training": 0, "trains, below the warm start": 0, "beats the warm start": 0}
    lost, judged = [], [dict(program=t, failed=f is not None, fitness=x, screened=None) for t, f, x in trained]
    for cid, text, reason in screened:
        e = evaluator.evaluate(cid, Program.parse(text))
        judged.append(dict(program=text, failed=e.failure is not None, fitness=e.fitness, screened=reason))
        key = ("fails in training" if e.failure else
               "beats the warm start" if e.fitness > warm else "trains, below the warm start")
        outcomes[key] += 1
        if key == "beats the warm start":
            lost.append((cid, e.fitness, reason, text))
    programs = [Program.parse(t) for _, t, _ in screened] + [Program.parse(t) for t, _, _ in trained]
    t0 = time.perf_counter()
    for p in programs:
        screen_reason(p, cfg.lr)
    cost = (time.perf_counter() - t0) / max(len(programs), 1)
    return dict(tasks=tasks, evals=evals, search_s=search_s, warm=warm, screened=len(screened),
                outcomes=outcomes, lost=lost, trained=len(trained),
                trained_failed=sum(f is not None for _, f, _ in trained), cost_ms=1e3 * cost, judged=judged)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=600, help="trained candidates per search")
    ap.add_argument("--suites", nargs="+", default=["iris_mlp", "digits_mlp,large_batch"],
                    help="comma-separated task lists, one search each")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show-programs", action="store_true", help="print each false rejection's program")
    ap.add_argument("--save", help="write every judged program (trained, or screened and trained anyway) "
                                   "with its outcome to this JSON file, for studying other screens")
    args = ap.parse_args(argv)
    saved = {}
    for suite in args.suites:
        r = study(tuple(suite.split(",")), args.evals, args.seed)
        saved[suite] = dict(warm=r["warm"], judged=r["judged"])
        o, n = r["outcomes"], max(r["screened"], 1)
        print(f"suite {'+'.join(r['tasks'])}: search of {r['evals']} trained candidates, seed {args.seed}, "
              f"in-process, {r['search_s']:.0f} s; warm start fitness {r['warm']:.4f}")
        print(f"  screened out: {r['screened']} children; trained anyway: "
              + ", ".join(f"{k} {v} ({v / n:.0%})" for k, v in o.items()))
        print(f"  false rejections (screened out, would beat the warm start): {o['beats the warm start']} of "
              f"{r['screened']} = {o['beats the warm start'] / n:.1%} (goal <= 1%)")
        for cid, fitness, reason, text in r["lost"]:
            print(f"    #{cid}: fitness {fitness:.4f}; {reason}")
            if args.show_programs:
                print("      " + text.strip().replace("\n", "\n      "))
        print(f"  trained failures removed: {o['fails in training']}; trained failures let through: "
              f"{r['trained_failed']} of {r['trained']} trained")
        print(f"  screen cost: {r['cost_ms']:.2f} ms per child it runs on ({r['screened'] + r['trained']} timed)")
    if args.save:
        Path(args.save).write_text(json.dumps(saved))


if __name__ == "__main__":
    main()
