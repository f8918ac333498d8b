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

To choose the settings before paying for such runs, ``--observe`` runs the search with readings
but no stop (every child trained to the end, read at each checkpoint), and ``--simulate`` then
replays rules on it: for each trained child, the bars its population (the ``population_size``
candidates recorded before it) would have set, whether it would have stopped, and whether it
would have been a false stop. A replay cannot see how stops change the search that follows them
(a stopped child joins the population with its partial fitness), so the chosen rule is then
measured on a real run, as above.

    python experiments/early_stop_study.py CONFIG --observe --minutes 15 --keep runs/observe
    python experiments/early_stop_study.py --run runs/observe --simulate 0,0.1,0.25,0.5
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
from evosearch.search.early_stop import EarlyStop, behind, readings, stopped  # noqa: E402
from evosearch.search.store import RunStore  # noqa: E402
from evosearch.search.suite import SuiteEvaluator  # noqa: E402


def read_run(folder: Path) -> tuple[SearchConfig, dict, list[dict]]:
    """The run's config, baselines and every candidate row (id order)."""
    store = RunStore(folder, readonly=True)
    try:
        cfg = SearchConfig.from_dict(store.get_meta("config"))
        # trained again where the run trained, against its baselines (not "auto" on this machine)
        cfg = replace(cfg, device=store.get_meta("device_kind") or "cpu")
        baselines = store.baselines()[0]
    finally:
        store.close()
    db = sqlite3.connect(f"file:{folder / 'run.sqlite'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in db.execute("SELECT id, status, program, fitness, metrics, failure, seconds, "
                                            "cached_from FROM candidates ORDER BY id")]
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


def simulate(cfg: SearchConfig, rows: list[dict], quantiles: list[float], margin: float = 0.0,
             min_members: int = EarlyStop.min_members) -> list[dict]:
    """Replay early stopping at each quantile on a run whose children all trained to the end with
    readings (``--observe``); the members' readings are their own or, for cache hits, their
    source's (failures and screened children have none)."""
    own = {r["id"]: readings(json.loads(r["metrics"] or "{}")) if r["status"] == "evaluated" and not r["failure"]
           else () for r in rows}
    member = [own.get(r["id"]) or own.get(r["cached_from"], ()) for r in rows]
    out = []
    for q in quantiles:
        rule = replace(cfg.early_stop, enabled=True, quantile=q, margin=margin, min_members=min_members)
        stops, false, used, at = 0, 0, 0.0, {str(c): 0 for c in rule.checkpoints}
        trained = 0
        for i, r in enumerate(rows):
            if r["status"] != "evaluated" or i == 0:
                continue
            trained += 1
            window = rows[max(0, i - cfg.population_size):i]
            bars = rule.bars([member[j] for j in range(max(0, i - cfg.population_size), i)])
            mine = own[r["id"]] or (-1.0,) * len(rule.checkpoints)
            stop = next((k for k, b in enumerate(bars) if k < len(mine) and behind(mine[k], b)), None)
            if stop is None:
                used += 1.0
                continue
            stops += 1
            used += rule.checkpoints[stop]
            at[str(rule.checkpoints[stop])] += 1
            top = sorted(w["fitness"] for w in window)
            false += r["fitness"] >= top[min(len(top) - 1, int(0.9 * len(top)))] and r["fitness"] > -1
        out.append(dict(quantile=q, margin=margin, trained=trained, stopped=stops, per_checkpoint=at,
                        false_stops=false, step_gain=trained / used if used else 1.0))
    return out


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
    ap.add_argument("--min-members", type=int, help="(default: the config's; with --simulate, 10)")
    ap.add_argument("--keep", help="run folder to keep the search in (default: a temporary one)")
    ap.add_argument("--observe", action="store_true", help="read every child at the checkpoints, stop none")
    ap.add_argument("--simulate", help="comma-separated quantiles to replay on an --observe run (with --run)")
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
        if args.min_members:
            rule = replace(rule, min_members=args.min_members)
        if args.observe:
            rule = replace(rule, min_members=10 ** 9)     # bars never set: readings only
        cfg = replace(cfg, early_stop=rule, time_limit=args.minutes * 60, max_evals=10 ** 9, seed=args.seed,
                      workers=args.workers or cfg.workers)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(args.keep or Path(tmp) / "run")
            t0 = time.time()
            run_search(cfg, folder)
            print(f"search: {time.time() - t0:.0f} s into {folder}")
            cfg, baselines, rows = read_run(folder)
    if args.simulate:
        replays = simulate(cfg, rows, [float(q) for q in args.simulate.split(",")], args.margin or 0.0,
                           args.min_members or EarlyStop.min_members)
        for r in replays:
            print(f"quantile {r['quantile']:g}, margin {r['margin']:g}: {r['stopped']} of {r['trained']} stopped "
                  f"({', '.join(f'{n} at {c}' for c, n in r['per_checkpoint'].items())}), {r['false_stops']} false "
                  f"stops, {r['step_gain']:.2f}x the candidates per training step")
        if args.out:
            Path(args.out).write_text(json.dumps(dict(config=cfg.to_dict(), replays=replays), indent=1))
        return
    t0 = time.time()
    result = study(cfg, baselines, rows, args.sample, args.seed)
    result["study_seconds"] = time.time() - t0
    print(report(cfg, result))
    if args.out:
        Path(args.out).write_text(json.dumps(dict(config=cfg.to_dict(), **result), indent=1))


if __name__ == "__main__":
    main()
