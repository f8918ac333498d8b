"""What early stopping (``evosearch/search/early_stop.py``) saves and what it loses, on a real search.

A search runs with ``[early_stop]`` on (the config's, or the config's section as given here), on
Ray with the config's workers, for a time budget; or ``--run`` reads a search that has already run.
Then a random sample of the children it stopped is trained to the end on the same suite and
baselines, and the study reports:

- trained candidates, and how many stopped at each checkpoint;
- the training time saved: for the sample, the seconds a full training takes against the seconds
  the stopped one took; the search's candidates per hour against what the same candidates would
  have cost trained to the end (stopped ones charged the sample's full-to-stopped ratio); and the
  same in training steps, which the machine's load cannot change (a stop at 25% took a quarter
  of the steps);
- false stops: sampled children whose full fitness would have entered the top tenth of the
  population when they were asked for (the ``population_size`` candidates recorded just before
  them, by id: aging evolution's population, up to the order in which results came back);
  goal: at most 5%;
- how often a stop flattered a child (its full fitness below the partial one it was scored with).

    python experiments/early_stop_study.py experiments/lion_rediscovery.toml --minutes 20 \\
        --sample 40 --out experiments/results/early_stop_study.json
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evosearch.lang.program import Program  # noqa: E402
from evosearch.search.config import SearchConfig, load_config  # noqa: E402
from evosearch.search.driver import run_search  # noqa: E402
from evosearch.search.early_stop import EarlyStop, stopped  # noqa: E402
from evosearch.search.store import RunStore  # noqa: E402
from evosearch.search.suite import SuiteEvaluator  # noqa: E402


def read_run(folder: Path) -> tuple[SearchConfig, dict, list[dict]]:
    """The run's config, baselines and every candidate row (id order)."""
    store = RunStore(folder, readonly=True)
    try:
        cfg = SearchConfig.from_dict(store.get_meta("config"))
        baselines = store.baselines()[0]
    finally:
        store.close()
    db = sqlite3.connect(f"file:{folder / 'run.sqlite'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in db.execute("SELECT id, status, program, fitness, metrics, failure, seconds "
                                            "FROM candidates ORDER BY id")]
    finally:
        db.close()
    return cfg, baselines, rows


def top_tenth(rows: list[dict], before: int, population: int) -> float:
    """The 90th percentile of the fitness of the ``population`` candidates recorded before id ``before``."""
    members = sorted(r["fitness"] for r in [r for r in rows if r["id"] < before][-population:])
    return members[min(len(members) - 1, int(0.9 * len(members)))]


def study(cfg: SearchConfig, baselines: dict, rows: list[dict], sample: int, seed: int) -> dict:
    trained = [r for r in rows if r["status"] == "evaluated"]
    stops = [(r, stopped(json.loads(r["metrics"] or "{}"))) for r in trained]
    stops = [(r, s) for r, s in stops if s]
    picked = random.Random(seed).sample(stops, min(sample, len(stops)))
    evaluator = SuiteEvaluator(replace(cfg.suite(), baselines=baselines, early_stop=EarlyStop()))
    judged = []
    for r, s in picked:
        e = evaluator.evaluate(r["id"], Program.parse(r["program"]))
        bar = top_tenth(rows, r["id"], cfg.population_size)
        judged.append(dict(id=r["id"], checkpoint=s["checkpoint"], stopped_fitness=r["fitness"], bar=s["bar"],
                           full_fitness=e.fitness, full_failure=e.failure, stopped_seconds=r["seconds"],
                           full_seconds=e.seconds, top_tenth=bar, false_stop=e.fitness >= bar,
                           flattered=e.fitness < r["fitness"]))
    per_checkpoint = {str(c): sum(1 for _, s in stops if s["checkpoint"] == c) for c in cfg.early_stop.checkpoints}
    ran = sum(r["seconds"] or 0.0 for r in trained)
    ratio = (sum(j["full_seconds"] for j in judged) / sum(j["stopped_seconds"] for j in judged)) if judged else 1.0
    stopped_s = sum(r["seconds"] for r, _ in stops)
    full_estimate = ran - stopped_s + stopped_s * ratio
    # in training steps (what the machine's load cannot change): a stopped child took its
    # checkpoint's fraction of the steps, every other one all of them (failures included)
    steps_used = len(trained) - len(stops) + sum(s["checkpoint"] for _, s in stops)
    return dict(trained=len(trained), stopped=len(stops), per_checkpoint=per_checkpoint,
                sample=len(judged), false_stops=sum(j["false_stop"] for j in judged),
                flattered=sum(j["flattered"] for j in judged),
                full_to_stopped_seconds=ratio, training_seconds=ran, full_training_estimate=full_estimate,
                candidates_per_hour_gain=full_estimate / ran if ran else 1.0,
                step_gain=len(trained) / steps_used if trained else 1.0,
                seconds_saved_per_candidate=(full_estimate - ran) / len(trained) if trained else 0.0,
                mean_seconds_per_candidate=ran / len(trained) if trained else 0.0,
                warm_fitness=trained[0]["fitness"] if trained else None,
                best_fitness=max((r["fitness"] for r in trained), default=None), judged=judged)


def report(cfg: SearchConfig, result: dict) -> str:
    r = result
    lines = [f"suite {', '.join(cfg.tasks)} (size {cfg.task_size}, seeds {list(cfg.task_seeds)}), "
             f"early stop {cfg.early_stop}",
             f"trained {r['trained']} candidates, stopped {r['stopped']} "
             f"({', '.join(f'{n} at {c}' for c, n in r['per_checkpoint'].items())}); "
             f"warm start {r['warm_fitness']}, best {r['best_fitness']}",
             f"training time: {r['training_seconds']:.0f} s spent; trained to the end it would have been "
             f"~{r['full_training_estimate']:.0f} s (sampled stopped children take {r['full_to_stopped_seconds']:.2f}x "
             f"their stopped time in full): {r['candidates_per_hour_gain']:.2f}x the candidates per hour, "
             f"{r['seconds_saved_per_candidate']:.2f} s saved per candidate "
             f"(mean {r['mean_seconds_per_candidate']:.2f} s spent); in training steps, "
             f"{r['step_gain']:.2f}x the candidates per step",
             f"false stops: {r['false_stops']} of {r['sample']} sampled stopped children would have entered the "
             f"population's top tenth trained to the end; {r['flattered']} of {r['sample']} scored higher stopped "
             f"than in full"]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", help="a search config (its [early_stop] section is switched on)")
    ap.add_argument("--run", help="study this run folder instead of running a search")
    ap.add_argument("--minutes", type=float, default=20.0, help="the search's time budget")
    ap.add_argument("--workers", type=int, default=0, help="Ray actors (0: the config's)")
    ap.add_argument("--seed", type=int, default=0, help="the search's seed and the sample's")
    ap.add_argument("--sample", type=int, default=40, help="stopped children trained to the end")
    ap.add_argument("--checkpoints", help="comma-separated fractions (default: the config's)")
    ap.add_argument("--quantile", type=float, help="(default: the config's)")
    ap.add_argument("--margin", type=float, help="(default: the config's)")
    ap.add_argument("--keep", help="run folder to keep the search in (default: a temporary one)")
    ap.add_argument("--out", help="write the result as JSON here")
    args = ap.parse_args(argv)
    if args.run:
        cfg, baselines, rows = read_run(Path(args.run))
    else:
        if not args.config:
            ap.error("give a config, or --run")
        cfg = load_config(args.config)
        rule = replace(cfg.early_stop, enabled=True)
        if args.checkpoints:
            rule = replace(rule, checkpoints=tuple(float(x) for x in args.checkpoints.split(",")))
        if args.quantile is not None:
            rule = replace(rule, quantile=args.quantile)
        if args.margin is not None:
            rule = replace(rule, margin=args.margin)
        cfg = replace(cfg, early_stop=rule, time_limit=args.minutes * 60, max_evals=10 ** 9, seed=args.seed,
                      workers=args.workers or cfg.workers)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(args.keep or Path(tmp) / "run")
            t0 = time.time()
            run_search(cfg, folder)
            print(f"search: {time.time() - t0:.0f} s into {folder}")
            cfg, baselines, rows = read_run(folder)
    t0 = time.time()
    result = study(cfg, baselines, rows, args.sample, args.seed)
    result["study_seconds"] = time.time() - t0
    print(report(cfg, result))
    if args.out:
        Path(args.out).write_text(json.dumps(dict(config=cfg.to_dict(), **result), indent=1))


if __name__ == "__main__":
    main()
