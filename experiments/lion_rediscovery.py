"""Reproduce the discovery of Lion: the search from the AdamW warm start for several seeds, the
paper's two baselines on the same budget, funnel selection, held-out checks, and a report.

    python experiments/lion_rediscovery.py experiments/lion_rediscovery.toml \\
        --seeds 0 1 2 3 4 --time-per-seed 3600 --out runs/rediscovery \\
        --report experiments/results/lion_rediscovery.md

Nothing here rewards closeness to Lion: the searches see only proxy-task fitness (the config's
suite, the full primitive set); ``match`` is used afterwards, to *describe* what was found.
For each seed the report gives where the run stood on the ladder from AdamW to Lion over time
(``lion_rediscovery_ladder``: the first Signum- and Lion-family programs, evaluations and minutes to
them, the best program's rung every 5 minutes, the final population's rungs, the fitted constants,
the best program per number of state tensors), the best program (raw and simplified), and held-out
results (tasks the search never saw, each optimizer with its learning rate tuned) against tuned
AdamW and tuned Lion; the baselines get the same ladder. The rungs themselves are scored once under
the search's own fitness (``measure_rungs``). It ends with ``lion_family_found: k/N``: the seeds
with a Lion-family program (``ladder.py``) in their final hall of fame.

Beside every fitness the report gives what it means in loss: for each task, the validation loss,
its ratio to tuned AdamW's and the accuracy where the task has one (``evosearch.search.readings``).
The run folder keeps no metrics of the large (meta-validation) sizes, so these readings come from
training the recorded programs again, after the searches; ``--report-only --readings`` does that
for a report whose run folders are gone, from the programs its JSON records:

    python experiments/lion_rediscovery.py experiments/lion_rediscovery.toml --report-only --readings

``--report-only`` trains nothing else: it reads the ladder again from the run folders that are
there (keeping the JSON's where one is gone); ``--rungs`` scores the rung programs again, and
``--odds FILE`` records an ``experiments/odds.py --json`` sample for the report to set each run's
trained candidates against.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import ladder  # sibling scripts
import torch
from lion_rediscovery_ladder import RUNG_PROGRAMS, RungOf, admission, read_run
from lion_rediscovery_report import kept_history, plot, report
from lion_vs_adamw_report import kept_findings

import tasks
from evosearch import Program, reference
from evosearch.search.config import load_config
from evosearch.search.driver import run_search
from evosearch.search.readings import task_readings
from evosearch.search.store import RunStore
from evosearch.search.suite import SuiteEvaluator, compute_baselines
from evosearch.symbolic.exact import simplify
from evosearch.symbolic.match import identify

# Held-out learning-rate grids. Each reaches a decade past where the 600 s runs' tuned optima sat:
# discovered programs chose 0.03 (then the smallest multiple) and Lion 1e-2 (then the largest lr),
# and an optimum at a grid's edge is not a tuned one. The report marks any that still is.
LR_MULTIPLIERS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)   # of a program's own lr
LION_LRS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def best_on_meta_validation(folder: Path) -> dict | None:
    """The funnelled candidate with the best large-size (meta-validation) fitness: the paper selects
    on this score, since the proxy fitness can be overfitted."""
    if not (Path(folder) / "run.sqlite").exists():
        return None
    store = RunStore(folder)
    try:
        row = store.db.execute("SELECT id, fitness, large_fitness, program FROM candidates WHERE large_fitness "
                               "IS NOT NULL ORDER BY large_fitness DESC, id LIMIT 1").fetchone()
        funnelled = store.db.execute("SELECT COUNT(*) FROM candidates WHERE large_fitness IS NOT NULL").fetchone()[0]
    finally:
        store.close()
    if row is None:
        return None
    fam, small = describe(row[3])
    return {"id": row[0], "fitness": row[1], "large_fitness": row[2], "funnelled": funnelled,
            "simplified": str(small) if small else row[3], "family": fam.family if fam else None,
            "constants": fam.constants if fam else {}}


def describe(text: str):
    """(family match or None, simplified program or None) of a program's text. Simplification and
    matching are analyses, not results: their failure (a bug) must not lose hours of search, so it
    is reported on stderr and the program counts as of no family."""
    try:
        small = simplify(Program.parse(text))
        return identify(small), small
    except Exception as exc:  # noqa: BLE001
        print(f"warning: could not describe a program ({type(exc).__name__}: {exc}):\n{text}", file=sys.stderr)
        return None, None


def tuned(task, make_eval, grid):
    """The best fitness over a learning-rate grid and the lr that gave it; None for the lr when every
    lr gave the same fitness (a program that overwrites its ``lr`` input ignores the multiple)."""
    scores = {lr: make_eval(task, lr) for lr in grid}
    best = max(scores, key=scores.get)
    return scores[best], (None if len(set(scores.values())) == 1 else best)


def _fitness(task, prog: Program, seed: int, lr: float) -> float:
    return _evaluate(task, prog, seed, lr).fitness


def _evaluate(task, prog: Program, seed: int, lr: float):
    # no per-evaluation time limit: the AdamW baseline has none either
    return task.evaluate(prog, seed=seed, lr=lr, time_limit=math.inf)


@functools.cache
def tuned_lion(name: str, seed: int) -> tuple[float, float | None]:
    """Lion tuned on one held-out task: the same for every seed's report row, so trained once."""
    lion = reference.load("lion")
    return tuned(tasks.get(name), lambda t, lr: _fitness(t, lion, seed, lr), LION_LRS)


def held_out(prog: Program, names: list[str], seed: int = 0) -> dict:
    out = {}
    for name in names:
        found, found_lr = tuned(tasks.get(name), lambda t, lr: _fitness(t, prog, seed, lr), LR_MULTIPLIERS)
        lion_f, lion_lr = tuned_lion(name, seed)
        out[name] = {"found": found, "found_lr": found_lr, "lion": lion_f, "lion_lr": lion_lr,
                     "adamw": 1.0}
    return out


def proxy_best(folder: Path, cfg) -> dict | None:
    """The run's best program by proxy fitness (a hall-of-fame row), with its funnel (large-size)
    score computed and stored if the search stopped before that score came back."""
    store = RunStore(folder)
    try:
        hof = store.hall_of_fame(1)
        if hof and hof[0]["large_fitness"] is None:
            from evosearch.search.suite import SuiteEvaluator
            large = SuiteEvaluator(replace(cfg.suite(), size="large"))
            score = large.evaluate(hof[0]["id"], Program.parse(hof[0]["program"])).fitness
            store.set_large_fitness(hof[0]["id"], score)
            hof[0]["large_fitness"] = score
    finally:
        store.close()
    return hof[0] if hof else None


# -- readings: what each recorded fitness means in loss ---------------------------------------------

SIZES = ("proxy", "large")      # the search's suite, and the funnel's (meta-validation) size of it


@functools.cache
def suite_evaluator(config: str, size: str) -> SuiteEvaluator:
    """The config's suite at ``size`` ("proxy": the size the config's ``[tasks]`` gives, which the
    search trained at), with tuned-AdamW baselines as the driver gets them (``compute_baselines``:
    cached on disk per task setup, so tuned once per machine)."""
    spec = load_config(config).suite()
    spec = spec if size == "proxy" else replace(spec, size=size)
    return SuiteEvaluator(replace(spec, baselines=compute_baselines(spec, echo=_say)))


@functools.cache
def suite_reading(config: str, size: str, text: str) -> dict:
    """A program scored on the config's suite at ``size`` by the code that scored it in the search
    (``SuiteEvaluator.evaluate``): ``{"fitness", "failure", "tasks": {task: readings}}``."""
    suite = suite_evaluator(config, size)
    start = time.perf_counter()
    e = suite.evaluate(0, Program.parse(text))
    _say(f"  {size} suite: fitness {e.fitness:.4f} ({time.perf_counter() - start:.0f} s)")
    return {"fitness": e.fitness, "failure": e.failure, "tasks": task_readings(e.metrics, suite.spec.baselines)}


@functools.cache
def held_out_reading(name: str, text: str, lr: float, seed: int = 0) -> dict:
    """A program trained on a held-out task at one lr, as ``held_out`` trained it: its fitness and
    readings (empty where training failed)."""
    task = tasks.get(name)
    r = _evaluate(task, Program.parse(text), seed, lr)
    b = task.baseline(seed)
    readings = task_readings({f"{name}/{seed}": r.metrics}, {name: {seed: [b.initial_loss, b.best_loss, b.best_lr]}})
    _say(f"  {name} at lr {lr:g}: fitness {r.fitness:.4f}")
    return {"fitness": r.fitness, "failure": r.failure, **readings.get(name, {})}


def add_readings(results: dict, config: str, command: str) -> None:
    """Train again every program ``results`` records, and store beside each recorded fitness its
    re-measured fitness and readings: on the proxy suite and its large sizes (the proxy-best program
    of each run, and its best by meta-validation), and on the held-out tasks at the lr the report
    records as tuned. A baseline run's proxy-best program is recorded only by runs made after this
    existed; without it that row has no readings."""
    start = time.perf_counter()
    lion = str(reference.load("lion"))
    runs = [(f"seed {seed}", r) for seed, r in results["seeds"].items()] + list(results["baselines"].items())
    for name, r in runs:
        if r.get("best"):
            _say(f"readings: {name}, best by proxy fitness")
            r["best_readings"] = {size: suite_reading(config, size, r["best"]) for size in SIZES}
        meta = r.get("best_meta")
        # the proxy best itself (both scores the same), whose raw program is recorded: read once
        proxy_best_itself = meta and (meta["fitness"], meta["large_fitness"]) == (r.get("best_fitness"),
                                                                                  r.get("best_large_fitness"))
        if proxy_best_itself and r.get("best"):
            meta["readings"] = r["best_readings"]
        elif meta:
            _say(f"readings: {name}, best by meta-validation (candidate {meta['id']})")
            meta["readings"] = {size: suite_reading(config, size, meta["simplified"]) for size in SIZES}
        if r.get("held_out"):
            _say(f"readings: {name}, held out")
        for task, h in r.get("held_out", {}).items():
            found = r["simplified"] or r["best"]         # what ``held_out`` trained
            h["found_reading"] = held_out_reading(task, found, _lr(h["found_lr"], LR_MULTIPLIERS))
            h["lion_reading"] = held_out_reading(task, lion, _lr(h["lion_lr"], LION_LRS))
            h["adamw_val_loss"] = tasks.get(task).baseline(0).best_loss
    results["readings"] = {"command": command, "date": time.strftime("%Y-%m-%d"),
                           "seconds": time.perf_counter() - start,
                           "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"}


def _lr(tuned_lr: float | None, grid) -> float:
    # None: every lr of the grid gave the same run, and ``tuned`` kept the first
    return grid[0] if tuned_lr is None else tuned_lr


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_all(args) -> dict:
    base = load_config(args.config)
    used = set(base.tasks)
    # by default every other task that needs no data files (those that read them, from a data_dir
    # this machine may not have, are held out only when named)
    held = [n for n in (args.held_out or [n for n in tasks.names() if not tasks.get(n).reads_files])
            if n not in used]
    results = {"config": str(args.config), "suite": list(base.tasks), "held_out": held, "seeds": {},
               "baselines": {}, "time_per_seed": args.time_per_seed, "out": str(args.out),
               "lr_grids": {"found": list(LR_MULTIPLIERS), "lion": list(LION_LRS)},
               "workers": "in-process" if args.in_process else f"{base.workers or os.cpu_count()} workers"}
    out = Path(args.out)
    rung_of = RungOf()
    for seed in args.seeds:
        folder = out / f"seed{seed}"
        cfg = replace(base, seed=seed, time_limit=args.time_per_seed,
                      max_evals=args.max_evals or base.max_evals, in_process=args.in_process)
        outcome = run_search(cfg, folder, resume=(folder / "run.sqlite").exists())
        top = proxy_best(folder, cfg)
        best = Program.parse(top["program"]) if top else None
        fam, small = describe(top["program"]) if top else (None, None)
        results["seeds"][seed] = {
            "evaluations": outcome.evaluations, "cache_hits": outcome.cache_hits,
            "pruned": outcome.rejected, "seconds": outcome.seconds,
            "best_fitness": top["fitness"] if top else None,
            "best_large_fitness": top["large_fitness"] if top else None,
            "best": str(best) if best else None, "simplified": str(small) if small else None,
            "family": fam.family if fam else None, "constants": fam.constants if fam else {},
            "best_meta": best_on_meta_validation(folder),
            "held_out": held_out(small or best, held) if best and not args.skip_held_out else {},
            **(read_run(folder, rung_of) or {}),
        }
    for label, change in (("random search", dict(strategy="random")),
                          ("AdamW constants only", dict(mutation=replace(base.mutation, constants_only=True)))):
        if args.skip_baselines:
            break
        folder = out / label.replace(" ", "_")
        cfg = replace(base, seed=args.seeds[0], time_limit=args.time_per_seed,
                      max_evals=args.max_evals or base.max_evals, in_process=args.in_process, **change)
        outcome = run_search(cfg, folder, resume=(folder / "run.sqlite").exists())
        top = proxy_best(folder, cfg)
        # compared on meta-validation too: the proxy alone rewards overfitting it, baselines included
        results["baselines"][label] = {"evaluations": outcome.evaluations, "best_fitness": outcome.best_fitness,
                                       "best_large_fitness": top["large_fitness"] if top else None,
                                       "best": top["program"] if top else None,
                                       "best_meta": best_on_meta_validation(folder),
                                       **(read_run(folder, rung_of) or {})}
    return results


def run_folders(results: dict, out: Path) -> list[tuple[dict, Path]]:
    """Each run's record in ``results`` and its folder under ``out``."""
    return ([(r, out / f"seed{seed}") for seed, r in results["seeds"].items()]
            + [(r, out / label.replace(" ", "_")) for label, r in results["baselines"].items()])


def measure_rungs(config: str) -> dict:
    """The rung programs (``RUNG_PROGRAMS``) scored on the config's suite by the code that scores the
    search (``suite_reading``: the same tasks, seeds and tuned-AdamW baselines), each with its rung and
    whether the search would train it at all."""
    cfg = load_config(config)
    programs = []
    for name, text in RUNG_PROGRAMS:
        _say(f"rungs: {name}")
        prog = Program.parse(text)
        programs.append({"name": name, "program": text, "rung": str(ladder.classify(prog)),
                         "admission": admission(prog, cfg.lr_proportional, cfg.lr),
                         **suite_reading(config, "proxy", text)})
    return {"suite": list(cfg.tasks), "size": cfg.task_size, "seeds": list(cfg.task_seeds), "programs": programs}


def odds_summary(path: Path) -> dict:
    """What the report uses of an ``experiments/odds.py --json`` sample of children."""
    o = json.loads(Path(path).read_text())
    if "rates" not in o:
        raise ValueError(f"{path} is not an odds.py sample (no rates; a --climb file?)")
    keep = ("parent", "n", "seed", "generated", "counts", "rates", "trained_per_generated", "mutation")
    return {"path": str(path), **{k: o[k] for k in keep if k in o}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--time-per-seed", type=float, default=3600)
    ap.add_argument("--max-evals", type=int, default=0)
    ap.add_argument("--out", default="runs/rediscovery")
    ap.add_argument("--report", default="experiments/results/lion_rediscovery.md")
    ap.add_argument("--held-out", nargs="*", help="held-out tasks (default: every task not in the suite that "
                    "reads no data files)")
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--skip-held-out", action="store_true")
    ap.add_argument("--in-process", action="store_true")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite the report and plots from REPORT.json and the run folders, training nothing "
                         "unless --readings")
    ap.add_argument("--readings", action="store_true",
                    help="with --report-only: train the programs REPORT.json records again, for the loss "
                         "readings beside each fitness (a full run always measures them)")
    ap.add_argument("--rungs", action="store_true",
                    help="with --report-only: score the rung programs on the suite again (a full run always does)")
    ap.add_argument("--odds", type=Path, nargs="+", default=[],
                    help="experiments/odds.py --json samples to set each run's trained candidates against")
    args = ap.parse_args(argv)
    for flag in ("readings", "rungs"):
        if getattr(args, flag) and not args.report_only:
            ap.error(f"--{flag} goes with --report-only (a full run always measures them)")
    report_path = Path(args.report)
    invoked = "python experiments/lion_rediscovery.py " + " ".join(argv or sys.argv[1:])
    if args.report_only:
        results = json.loads(report_path.with_suffix(".json").read_text())
        argv = results.get("argv") or [a for a in (argv or sys.argv[1:]) if a not in ("--report-only", "--readings")]
        for seed, r in results["seeds"].items():      # reports made before this field existed
            if "best_meta" not in r:
                r["best_meta"] = best_on_meta_validation(Path(results.get("out", args.out)) / f"seed{seed}")
        if args.readings:
            if list(load_config(args.config).tasks) != results["suite"]:
                ap.error(f"{args.config} does not name the suite the report was made with ({results['suite']})")
            add_readings(results, args.config, invoked)
        rung_of = RungOf()
        for r, folder in run_folders(results, Path(results.get("out", args.out))):
            r.update(read_run(folder, rung_of) or {})      # a folder that is gone keeps what the JSON has
        if args.rungs or "rungs" not in results:
            if not args.rungs:
                _say("the JSON has no rungs table: --rungs scores the rung programs (training them)")
            elif list(load_config(args.config).tasks) != results["suite"]:
                ap.error(f"{args.config} does not name the suite the report was made with ({results['suite']})")
            else:
                results["rungs"] = measure_rungs(args.config)
    else:
        results = run_all(args)
        results["argv"] = list(argv or sys.argv[1:])
        add_readings(results, args.config, invoked)
        results["rungs"] = measure_rungs(args.config)
    if args.odds:
        results["odds"] = [odds_summary(path) for path in args.odds]
    report_path.parent.mkdir(parents=True, exist_ok=True)     # the results first: a plotting error loses nothing
    report_path.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    figures = plot(Path(results.get("out", args.out)), results, report_path.parent)
    text = report(results, figures, "python experiments/lion_rediscovery.py " + " ".join(argv or sys.argv[1:]))
    findings = kept_findings(report_path)       # written by hand: kept
    if findings:
        text = text.replace("\n## ", "\n" + findings + "## ", 1)
    history = kept_history(report_path)         # earlier runs' tables: kept, just before the last line
    if history:
        head, last = text.rstrip("\n").rsplit("\n", 1)
        text = f"{head}\n{history}{last}\n"
    report_path.write_text(text)
    print(text.rstrip("\n").rsplit("\n", 1)[1])


if __name__ == "__main__":
    main()
