"""Reproduce the discovery of Lion: the search from the AdamW warm start for several seeds, the
paper's two baselines on the same budget, funnel selection, held-out checks, and a report.

    python experiments/lion_rediscovery.py experiments/lion_rediscovery.toml \\
        --seeds 0 1 2 3 4 --time-per-seed 3600 --out runs/rediscovery \\
        --report experiments/results/lion_rediscovery.md

Nothing here rewards closeness to Lion: the searches see only proxy-task fitness (the config's
suite, the full primitive set); ``match`` is used afterwards, to *describe* what was found.
For each seed the report gives the best program (raw and simplified), its family and constants,
when (evaluations, seconds) the first Lion-family program entered the hall of fame, and held-out
results (tasks the search never saw, each optimizer with its learning rate tuned) against tuned
AdamW and tuned Lion. It ends with ``lion_family_found: k/N``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

from lion_vs_adamw import kept_findings  # a sibling script

import tasks
from evosearch import Program, reference
from evosearch.search.config import load_config
from evosearch.search.driver import run_search
from evosearch.search.store import RunStore
from evosearch.symbolic.exact import simplify
from evosearch.symbolic.match import identify

# Held-out learning-rate grids. Each reaches a decade past where the 600 s runs' tuned optima sat:
# discovered programs chose 0.03 (then the smallest multiple) and Lion 1e-2 (then the largest lr),
# and an optimum at a grid's edge is not a tuned one. The report marks any that still is.
LR_MULTIPLIERS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)   # of a program's own lr
LION_LRS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def at_edge(value: float, grid) -> str:
    """' (grid edge)' when a tuned value is the smallest or largest of its grid (if known), else ''."""
    return " (grid edge)" if grid and value in (min(grid), max(grid)) else ""


def first_lion_in_hall_of_fame(folder: Path, k: int = 10):
    """(trained evaluations, wall-clock seconds since the first recorded one) when a Lion-family
    program first entered the top-k, or None. Failed evaluations count but never enter the top."""
    if not (Path(folder) / "run.sqlite").exists():
        return None
    store = RunStore(folder)
    try:
        rows = store.db.execute("SELECT id, fitness, program, canonical_hash, recorded_at, failure IS NULL "
                                "FROM candidates WHERE status = 'evaluated' ORDER BY id").fetchall()
    finally:
        store.close()
    if not rows:
        return None
    start = rows[0][4]
    top: list[tuple[float, str]] = []
    families: dict[str, bool] = {}
    for n, (cid, fitness, text, h, at, ok) in enumerate(rows, 1):
        if not ok or h in {t[1] for t in top}:
            continue
        if len(top) < k or fitness > top[-1][0]:
            top = sorted(top + [(fitness, h)], reverse=True)[:k]
            if h not in families:
                fam = describe(text)[0]
                families[h] = bool(fam and fam.family == "lion")
            if families[h]:
                return n, at - start
    return None


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


def lr_cell(prefix: str, lr: float | None, grid) -> str:
    """How a tuned lr reads in the report: the value (marked at a grid edge), or that it did not matter."""
    return "the same at every lr" if lr is None else f"{prefix}{lr:g}{at_edge(lr, grid)}"


def _fitness(task, prog: Program, seed: int, lr: float) -> float:
    # no per-evaluation time limit: the AdamW baseline has none either
    return task.evaluate(prog, seed=seed, lr=lr, time_limit=math.inf).fitness


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


def run_all(args) -> dict:
    base = load_config(args.config)
    used = set(base.tasks)
    held = [n for n in (args.held_out or tasks.names()) if n not in used]
    results = {"config": str(args.config), "suite": list(base.tasks), "held_out": held, "seeds": {},
               "baselines": {}, "time_per_seed": args.time_per_seed, "out": str(args.out),
               "lr_grids": {"found": list(LR_MULTIPLIERS), "lion": list(LION_LRS)},
               "workers": "in-process" if args.in_process else f"{base.workers or os.cpu_count()} workers"}
    out = Path(args.out)
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
            "first_lion": first_lion_in_hall_of_fame(folder),
            "best_meta": best_on_meta_validation(folder),
            "held_out": held_out(small or best, held) if best and not args.skip_held_out else {},
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
                                       "best_meta": best_on_meta_validation(folder)}
    return results


def plot(out: Path, results: dict, figures: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    figures.mkdir(parents=True, exist_ok=True)
    names = []
    fig, (a1, a3, a2) = plt.subplots(1, 3, figsize=(16, 4))
    for n, seed in enumerate(results["seeds"]):
        if not (out / f"seed{seed}" / "run.sqlite").exists():     # (opening a store would create one)
            print(f"warning: no run in {out / f'seed{seed}'}: left out of the plots", file=sys.stderr)
            continue
        store = RunStore(out / f"seed{seed}")
        try:
            rows = store.db.execute("SELECT fitness, large_fitness FROM candidates WHERE status='evaluated' "
                                    "ORDER BY id").fetchall()
        finally:
            store.close()
        f = np.array([r[0] for r in rows], dtype=float)
        color = f"C{n % 10}"
        a1.plot(np.maximum.accumulate(f), color=color, label=f"seed {seed}")
        funnel = np.array([(i, r[0], r[1]) for i, r in enumerate(rows) if r[1] is not None], dtype=float)
        if len(funnel):
            # the paper's meta-overfitting view: the funnelled candidates' proxy and meta-validation
            # fitness over the search (solid: proxy, dashed: large tasks)
            a3.plot(funnel[:, 0], funnel[:, 1], "o-", color=color, ms=3, label=f"seed {seed} proxy")
            a3.plot(funnel[:, 0], funnel[:, 2], "s--", color=color, ms=3, label=f"seed {seed} meta-val")
            a2.scatter(funnel[:, 1], funnel[:, 2], s=10, color=color, label=f"seed {seed}")
    a1.set_xlabel("trained candidates")
    a1.set_ylabel("best proxy fitness (1 = tuned AdamW)")
    a1.legend()
    a3.set_xlabel("trained candidates (when funnelled)")
    a3.set_ylabel("fitness")
    a3.set_title("funnelled candidates: proxy (o) vs meta-validation (s)")
    a2.set_xlabel("proxy fitness")
    a2.set_ylabel("meta-validation fitness (large tasks)")
    a2.set_title("funnel: proxy vs meta-validation")
    a2.legend()
    fig.tight_layout()
    path = figures / "lion_rediscovery.png"
    fig.savefig(path, dpi=100)
    names.append(path.name)
    return names


def _score(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def summary_table(results: dict) -> list[str]:
    """Every run on one line: the proxy-best program and its meta-validation, and the best funnelled
    program by meta-validation (what the paper selects on). Baselines made before their
    meta-validation was recorded show '-'."""
    rows = [("seed " + str(seed), r) for seed, r in results["seeds"].items()]
    rows += list(results["baselines"].items())
    lines = ["| run | evaluations | best proxy fitness | its meta-validation | best meta-validation (candidate) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in rows:
        meta = r.get("best_meta")
        best_meta = f"{meta['large_fitness']:.3f} ({meta['id']})" if meta else "-"
        lines.append(f"| {name} | {r['evaluations']} | {_score(r['best_fitness'])} | "
                     f"{_score(r.get('best_large_fitness'))} | {best_meta} |")
    return lines


def best_meta_lines(lead: str, meta: dict) -> list[str]:
    """A run's best funnelled candidate by meta-validation, with its program."""
    return [f"{lead} of the {meta['funnelled']} funnelled candidates by meta-validation (large-size) fitness: "
            f"candidate {meta['id']}, meta-validation {meta['large_fitness']:.4f}, proxy {meta['fitness']:.4f}, "
            f"family {meta['family'] or 'none'} {json.dumps(meta['constants'])}:",
            "```python", meta["simplified"].rstrip(), "```"]


def report(results: dict, figures: list[str], command: str) -> str:
    n = len(results["seeds"])
    k = sum(1 for r in results["seeds"].values() if r["family"] == "lion")
    lines = ["# Rediscovering Lion", "", f"Command: `{command}`", "",
             f"Proxy suite: {', '.join(results['suite'])}; held-out tasks: {', '.join(results['held_out'])}.",
             "The search saw only proxy fitness; families were identified afterwards.",
             f"Budget: {results['time_per_seed']:.0f} s of search per seed (and per baseline), "
             f"{results.get('workers', '2 workers')}.", ""]
    for name in figures:
        lines.append(f"![{name}]({name})")
    lines += ["", *summary_table(results)]
    for seed, r in results["seeds"].items():
        lines += ["", f"## Seed {seed}", "",
                  f"{r['evaluations']} evaluations, {r['cache_hits']} cache hits, {r['pruned']} pruned, "
                  f"{r['seconds']:.0f} s. Best proxy fitness {r['best_fitness']}, meta-validation "
                  f"{r['best_large_fitness']}.", "",
                  f"Family: {r['family'] or 'none'} {json.dumps(r['constants'])}.",
                  "First Lion-family program in the hall of fame: "
                  + (f"after {r['first_lion'][0]} evaluations, {r['first_lion'][1]:.0f} s" if r["first_lion"] else "never"),
                  "", "Best program by proxy fitness (raw):", "```python", (r["best"] or "").rstrip(), "```",
                  "Simplified:", "```python", (r["simplified"] or "").rstrip(), "```"]
        if r.get("best_meta"):
            lines += best_meta_lines("Best", r["best_meta"])
        if r["held_out"]:
            lines += ["", "| held-out task | found (tuned lr) | tuned Lion | tuned AdamW |", "| --- | ---: | ---: | ---: |"]
            grids = results.get("lr_grids", {})         # (reports made before grids were recorded: none)
            for task, h in r["held_out"].items():
                lines.append(f"| {task} | {h['found']:.3f} ({lr_cell('x', h['found_lr'], grids.get('found'))}) "
                             f"| {h['lion']:.3f} ({lr_cell('lr ', h['lion_lr'], grids.get('lion'))}) | 1.000 |")
    if results["baselines"]:
        # their evaluations and scores are in the summary table above
        lines += ["", "## Baselines (same budget, seed of the first run)"]
        for label, b in results["baselines"].items():
            if b.get("best_meta"):
                lines += ["", *best_meta_lines(f"{label}: best", b["best_meta"])]
    lines += ["", f"lion_family_found: {k}/{n}", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--time-per-seed", type=float, default=3600)
    ap.add_argument("--max-evals", type=int, default=0)
    ap.add_argument("--out", default="runs/rediscovery")
    ap.add_argument("--report", default="experiments/results/lion_rediscovery.md")
    ap.add_argument("--held-out", nargs="*", help="held-out tasks (default: every task not in the suite)")
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--skip-held-out", action="store_true")
    ap.add_argument("--in-process", action="store_true")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite the report and plots from REPORT.json and the run folders, training nothing")
    args = ap.parse_args(argv)
    report_path = Path(args.report)
    if args.report_only:
        results = json.loads(report_path.with_suffix(".json").read_text())
        argv = results.get("argv") or [a for a in (argv or sys.argv[1:]) if a != "--report-only"]
        for seed, r in results["seeds"].items():      # reports made before this field existed
            if "best_meta" not in r:
                r["best_meta"] = best_on_meta_validation(Path(results.get("out", args.out)) / f"seed{seed}")
    else:
        results = run_all(args)
        results["argv"] = list(argv or sys.argv[1:])
    report_path.parent.mkdir(parents=True, exist_ok=True)     # the results first: a plotting error loses nothing
    report_path.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    figures = plot(Path(results.get("out", args.out)), results, report_path.parent)
    text = report(results, figures, "python experiments/lion_rediscovery.py " + " ".join(argv or sys.argv[1:]))
    findings = kept_findings(report_path)       # written by hand: kept
    if findings:
        text = text.replace("\n## ", "\n" + findings + "## ", 1)
    report_path.write_text(text)
    print(next(line for line in text.splitlines() if line.startswith("lion_family_found")))


if __name__ == "__main__":
    main()
