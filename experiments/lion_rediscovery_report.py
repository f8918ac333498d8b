"""The Lion-rediscovery report (``lion_rediscovery.py`` runs the searches and measures; this writes
what they found): a summary line per run, the rungs of the ladder from AdamW to Lion scored under the
search's own fitness, each run's climb up that ladder (``lion_rediscovery_ladder``), programs,
families and held-out results, the plots, and beside every fitness its readings (each task's
validation loss, its ratio to tuned AdamW's, accuracy), with where the readings came from. Where
fewer than 3 of 5 seeds found a Lion-family program, a line per run says from the measurements how
far it climbed and what it met there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from evosearch.search.store import RunStore


def at_edge(value: float, grid) -> str:
    """' (grid edge)' when a tuned value is the smallest or largest of its grid (if known), else ''."""
    return " (grid edge)" if grid and value in (min(grid), max(grid)) else ""


def lr_cell(prefix: str, lr: float | None, grid) -> str:
    """How a tuned lr reads in the report: the value (marked at a grid edge), or that it did not matter."""
    return "the same at every lr" if lr is None else f"{prefix}{lr:g}{at_edge(lr, grid)}"


def plot(out: Path, results: dict, figures: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    figures.mkdir(parents=True, exist_ok=True)
    path = figures / "lion_rediscovery.png"
    if not any((out / f"seed{seed}" / "run.sqlite").exists() for seed in results["seeds"]):
        # a report rewritten where its run folders are not: keep the figure made from them
        print(f"warning: no run folders in {out}: {path} is left as it was", file=sys.stderr)
        return [path.name] if path.exists() else []
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
    fig.savefig(path, dpi=100)
    names.append(path.name)
    return names


def _score(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def summary_table(results: dict) -> list[str]:
    """Every run on one line: the proxy-best program and its meta-validation, and the best funnelled
    program by meta-validation (what the paper selects on), each fitness followed by each suite
    task's validation loss over tuned AdamW's. Baselines made before their meta-validation was
    recorded, and runs without readings, show '-'."""
    rows = [("seed " + str(seed), r) for seed, r in results["seeds"].items()]
    rows += list(results["baselines"].items())
    suite = results["suite"]
    lines = ["| run | evaluations | best proxy fitness | ÷ AdamW | its meta-validation | ÷ AdamW | "
             "best meta-validation (candidate) | ÷ AdamW |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in rows:
        meta = r.get("best_meta")
        best_meta = f"{meta['large_fitness']:.3f} ({meta['id']})" if meta else "-"
        ours = r.get("best_readings") or {}
        theirs = (meta or {}).get("readings") or {}
        lines.append(f"| {name} | {r['evaluations']} | {_score(r['best_fitness'])} | "
                     f"{_ratios(ours.get('proxy'), suite)} | {_score(r.get('best_large_fitness'))} | "
                     f"{_ratios(ours.get('large'), suite)} | {best_meta} | {_ratios(theirs.get('large'), suite)} |")
    return lines


def _ratios(reading: dict | None, suite: list[str]) -> str:
    """'0.59 / 1.08 / 0.97': each suite task's validation loss over tuned AdamW's ('failed' where it
    failed), or '-' without readings."""
    if not reading:
        return "-"
    return " / ".join(f"{reading['tasks'][t]['loss_ratio']:.2f}" if t in reading["tasks"] else "failed" for t in suite)


def _cell(reading: dict | None) -> str:
    """One task's reading: '0.257 (0.59x), acc 0.928' (validation loss, over tuned AdamW's, accuracy)."""
    if not reading or "val_loss" not in reading:
        return "failed"
    text = f"{reading['val_loss']:.4g} ({reading['loss_ratio']:.2f}x)"
    return text + (f", acc {reading['val_accuracy']:.3f}" if "val_accuracy" in reading else "")


def readings_note(results: dict) -> list[str]:
    """What the fitness scale is, what the ÷ AdamW columns are, where the readings came from, and how
    the re-measured fitness compares with the recorded one."""
    lines = ["Fitness is the mean over the suite's tasks and seeds of (L0 − L) / (L0 − L\\*), with L the "
             "validation loss after training, L0 the untrained model's and L\\* that of AdamW with its "
             "learning rate tuned on the same task, seed and budget: 1.0 is tuned AdamW, 0 no progress, "
             "−1 a failure. Near 1.0 this scale hides large differences in loss, and the mean over tasks "
             "can hide a task a program does badly on. So beside each fitness, \"÷ AdamW\" gives each "
             f"suite task's validation loss over tuned AdamW's ({' / '.join(results['suite'])}; mean "
             "over the seeds; below 1 is a lower loss than AdamW's), and each run's section gives the "
             "losses and accuracies."]
    meta = results.get("readings")
    if not meta:
        return lines + ["", "This report has no readings: it was made before they were measured "
                        "(`--report-only --readings` measures them)."]
    pairs = _recorded_and_remeasured(results)
    lines += ["", f"**The readings were re-measured after the searches**, on {meta['date']} ({meta['machine']}), "
              f"from the programs this report's JSON records, with `{meta['command']}` "
              f"({meta['seconds'] / 60:.0f} min). Each program was trained again on the proxy suite and on its "
              "large sizes by `SuiteEvaluator.evaluate`, the code that scored it in the search, against "
              "tuned-AdamW baselines tuned again on this machine; held-out tasks were trained at the lr the "
              "table records as tuned. Best-by-meta-validation programs are recorded only in simplified form, "
              "so those were trained simplified (exact simplification modulo the arithmetic guards)."]
    if not pairs:
        return lines
    worst = max(pairs, key=lambda p: abs(p[2] - p[1]))
    close = sum(1 for _, a, b in pairs if abs(b - a) < 1e-3)
    lines += ["", f"Re-measured fitness against recorded: {close} of {len(pairs)} within 0.001; the largest "
              f"difference is {worst[2] - worst[1]:+.4f} ({worst[0]}: {worst[1]:.4f} recorded, {worst[2]:.4f} "
              "now). Each run's section gives both. The two can differ: the searches ran on another CPU, "
              "whose floating-point sums can round differently, and against the baselines tuned there; "
              "where they differ, the readings describe the re-measured run."]
    return lines


def _recorded_and_remeasured(results: dict) -> list[tuple[str, float, float]]:
    """(where, recorded fitness, re-measured fitness) for every fitness the readings re-measured."""
    pairs = []
    runs = [(f"seed {seed}", r) for seed, r in results["seeds"].items()] + list(results["baselines"].items())
    for name, r in runs:
        measured = r.get("best_readings") or {}
        for size, recorded in (("proxy", r.get("best_fitness")), ("large", r.get("best_large_fitness"))):
            if size in measured and recorded is not None:
                pairs.append((f"{name}, best by proxy fitness, {size}", recorded, measured[size]["fitness"]))
        meta = r.get("best_meta") or {}
        for size, key in (("proxy", "fitness"), ("large", "large_fitness")):
            if size in meta.get("readings", {}):
                pairs.append((f"{name}, candidate {meta['id']}, {size}", meta[key], meta["readings"][size]["fitness"]))
        for task, h in (r.get("held_out") or {}).items():
            for who in ("found", "lion"):
                if f"{who}_reading" in h:
                    pairs.append((f"{name}, held-out {task}, {who}", h[who], h[f"{who}_reading"]["fitness"]))
    return pairs


def readings_table(r: dict, suite: list[str]) -> list[str]:
    """A run's programs on the suite and its large sizes: fitness recorded and re-measured, and each
    task's validation loss (over tuned AdamW's) and accuracy."""
    rows = []
    if r.get("best_readings"):
        rows += [("best by proxy fitness", size, r.get(key), r["best_readings"][size])
                 for size, key in (("proxy", "best_fitness"), ("large", "best_large_fitness"))]
    meta = r.get("best_meta") or {}
    if meta.get("readings"):
        rows += [(f"best by meta-validation (candidate {meta['id']})", size, meta[key], meta["readings"][size])
                 for size, key in (("proxy", "fitness"), ("large", "large_fitness"))]
    if not rows:
        return []
    lines = ["", "Each task's cell: validation loss (over tuned AdamW's), accuracy; means over the suite's seeds.", "",
             f"| program | tasks | recorded fitness | re-measured | {' | '.join(suite)} |",
             f"| --- | --- | ---: | ---: |{' ---: |' * len(suite)}"]
    for label, size, recorded, reading in rows:
        cells = " | ".join(_cell(reading["tasks"].get(t)) for t in suite)
        lines.append(f"| {label} | {size} | {_score(recorded)} | {_score(reading['fitness'])} | {cells} |")
    adamw = {size: reading["tasks"] for _, size, _, reading in rows}
    for size, per_task in adamw.items():
        cells = " | ".join(f"{per_task[t]['adamw_val_loss']:.4g}" if t in per_task else "-" for t in suite)
        lines.append(f"| tuned AdamW | {size} | 1.000 | | {cells} |")
    return lines


def held_out_table(r: dict, grids: dict) -> list[str]:
    """Held-out tasks: the found program and Lion with their tuned lr, against tuned AdamW, each with
    its re-measured fitness and reading where the report has readings."""
    readings = any("found_reading" in h for h in r["held_out"].values())
    if not readings:
        lines = ["", "| held-out task | found (tuned lr) | tuned Lion | tuned AdamW |", "| --- | ---: | ---: | ---: |"]
        for task, h in r["held_out"].items():
            lines.append(f"| {task} | {h['found']:.3f} ({lr_cell('x', h['found_lr'], grids.get('found'))}) "
                         f"| {h['lion']:.3f} ({lr_cell('lr ', h['lion_lr'], grids.get('lion'))}) | 1.000 |")
        return lines
    lines = ["", "Held out, one training seed. \"Its readings\": the fitness re-measured at the tuned lr; "
             "the validation loss (over tuned AdamW's); the accuracy.", "",
             "| held-out task | found (tuned lr) | its readings | tuned Lion | its readings | tuned AdamW: val loss |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for task, h in r["held_out"].items():
        lines.append(f"| {task} | {h['found']:.3f} ({lr_cell('x', h['found_lr'], grids.get('found'))}) | "
                     f"{h['found_reading']['fitness']:.3f}; {_cell(h['found_reading'])} | "
                     f"{h['lion']:.3f} ({lr_cell('lr ', h['lion_lr'], grids.get('lion'))}) | "
                     f"{h['lion_reading']['fitness']:.3f}; {_cell(h['lion_reading'])} | "
                     f"{h['adamw_val_loss']:.4g} |")
    return lines


def best_meta_lines(lead: str, meta: dict) -> list[str]:
    """A run's best funnelled candidate by meta-validation, with its program."""
    return [f"{lead} of the {meta['funnelled']} funnelled candidates by meta-validation (large-size) fitness: "
            f"candidate {meta['id']}, meta-validation {meta['large_fitness']:.4f}, proxy {meta['fitness']:.4f}, "
            f"family {meta['family'] or 'none'} {json.dumps(meta['constants'])}:",
            "```python", meta["simplified"].rstrip(), "```"]


def kept_history(md: Path) -> str:
    """The "## History" section of the report ``md`` (earlier runs' tables, kept verbatim: up to the
    next section or the last line, followed by a blank line), or "" when there is none."""
    text = md.read_text() if md.exists() else ""
    if "\n## History" not in text:
        return ""
    section = "## History" + text.split("\n## History", 1)[1]
    section = section.split("\n## ", 1)[0]
    if "\nlion_family_found: " in section:
        section = section.rsplit("\nlion_family_found: ", 1)[0]
    return section.rstrip() + "\n\n"


def lion_found(r: dict) -> bool:
    """A Lion-family program (``ladder.py``) in the run's final hall of fame; for a run recorded before
    the ladder was read, its proxy-best program's family by ``match.identify``."""
    return r["ladder"]["lion_found"] if r.get("ladder") else r.get("family") == "lion"


# -- the ladder ------------------------------------------------------------------------------------
SHORT = {"adamw-like": "AdamW-like", "signum-family": "Signum", "lion-family": "Lion", "other": "other"}


def _first_cell(e: dict | None) -> str:
    return "never" if e is None else f"{e['evaluations']}, {e['minutes']:.1f} min"


def _per_hour(x) -> str:
    return "-" if x is None else f"{x:.0f}"


def ladder_summary(results: dict) -> list[str]:
    """A line per run: its climb up the ladder (runs recorded before the ladder was read: '-')."""
    lines = ["| run | trained | trained/hour | stopped early | first Signum (evals, min) | first Lion (evals, min) | "
             "best proxy fitness (rung) | its meta-validation | Lion produced | Lion found |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |"]
    for name, r in _runs(results):
        lad, counts = r.get("ladder"), r.get("counts")
        if not lad:
            lines.append(f"| {name} | {r['evaluations']} | - | - | - | - | {_score(r['best_fitness'])} | "
                         f"{_score(r.get('best_large_fitness'))} | - | {'yes' if lion_found(r) else 'no'} |")
            continue
        best = lad["hall_of_fame"][0] if lad["hall_of_fame"] else None
        best_cell = f"{best['fitness']:.3f} ({best['rung'].split(' ', 1)[0]})" if best else "-"
        lines.append(f"| {name} | {counts['trained']} | {_per_hour(counts['trained_per_hour'])} | "
                     f"{counts['early_stopped']} | {_first_cell(lad['first']['signum-family'])} | "
                     f"{_first_cell(lad['first']['lion-family'])} | {best_cell} | "
                     f"{_score(r.get('best_large_fitness'))} | {'yes' if lad['lion_produced'] else 'no'} | "
                     f"{'yes' if lad['lion_found'] else 'no'} |")
    return lines


def _runs(results: dict) -> list[tuple[str, dict]]:
    return [(f"seed {seed}", r) for seed, r in results["seeds"].items()] + list(results["baselines"].items())


def rungs_section(results: dict) -> list[str]:
    """The rung programs under the search's own fitness, and the warm start's fitness as each run
    recorded it (the same program, suite and seeds: the two should agree)."""
    lines = ["", "## Rungs under the search's own fitness", ""]
    rungs = results.get("rungs")
    if not rungs:
        return lines + ["Not measured for this report (`--report-only --rungs` measures them)."]
    suite = rungs["suite"]
    lines += [f"Each rung of the ladder as a program at the warm start's scales (`lr * 0.001`; weight decay "
              f"in units of the step), trained on the search's suite ({', '.join(suite)}, size "
              f"{rungs.get('size', 'proxy')}; seeds {', '.join(map(str, rungs['seeds']))}) and scored as the "
              "search scores a candidate, against the same tuned-AdamW baselines. \"÷ AdamW\": each task's "
              "validation loss over tuned AdamW's. \"Search trains it\": whether the search's analysis, "
              "gradient and lr rules and numeric screen let it be trained.", "",
              "| program | ladder | fitness | ÷ AdamW | search trains it |", "| --- | --- | ---: | ---: | --- |"]
    for e in rungs["programs"]:
        fitness = _score(e["fitness"]) + (f" ({e['failure']})" if e["failure"] else "")
        lines.append(f"| {e['name']} | {e['rung']} | {fitness} | {_ratios(e, suite)} | "
                     f"{'yes' if e['admission'] is None else 'no: ' + e['admission']} |")
    warm = [(name, r["ladder"]["warm_start_fitness"]) for name, r in _runs(results)
            if r.get("ladder") and r["ladder"]["warm_start_fitness"] is not None]
    if warm:
        lines += ["", "The warm start as the runs scored it: " + ", ".join(f"{n} {f:.4f}" for n, f in warm) + "."]
    lines += ["", "<details><summary>The rung programs</summary>", ""]
    for e in rungs["programs"]:
        lines += [f"{e['name']}:", "```python", e["program"].rstrip(), "```"]
    return lines + ["", "</details>"]


def ladder_lines(r: dict) -> list[str]:
    """A run's climb: counts, the first of each rung, the best program's rung over time, the final
    population, the fitted constants, the best per number of state tensors, the hall of fame."""
    lad, c = r.get("ladder"), r.get("counts")
    if not lad:
        return ["", "Ladder: not read (the run was recorded before the ladder existed, and its folder is gone)."]
    warm = lad["warm_start_fitness"]
    lines = ["", f"{c['trained']} trained ({_per_hour(c['trained_per_hour'])} per hour of search), {c['cache_hits']} "
             f"served from the cache, {c['pruned']} pruned, {c['screened']} failed the numeric screen, "
             f"{c['early_stopped']} stopped early (their fitness is the partial fitness they reached), "
             f"{c['failed']} failed in training; {c['generated']} children generated "
             f"({_per_hour(c['generated_per_hour'])} per hour); {lad['minutes']:.1f} min of search from the "
             f"first recorded candidate. The warm start's fitness: {_score(warm)}.",
             "", "Trained candidates per rung: " + ", ".join(f"{k} {v}" for k, v in lad["rung_counts"].items()) + ".",
             "", "| rung | first trained (evals, min, fitness) | first beating the warm start | first in the "
             "hall of fame |", "| --- | --- | --- | --- |"]

    def cell(e):
        return "never" if e is None else f"{e['evaluations']}, {e['minutes']:.1f} min, {e['fitness']:.4f}"
    for label in ("signum-family", "lion-family"):
        lines.append(f"| {label} | {cell(lad['first'][label])} | {cell(lad['first_beating_warm_start'][label])} | "
                     f"{cell(lad['first_in_hall_of_fame'][label])} |")
    for label in ("signum-family", "lion-family"):
        e = lad["first"][label]
        if e:
            lines += ["", f"The first {label} program (candidate {e['id']}, {e['rung']}):", "```python",
                      e["program"].rstrip(), "```"]
    lines += ["", "The best program so far, by minutes of search:", "",
              "| minute | trained | best fitness | candidate | its rung |", "| ---: | ---: | ---: | ---: | --- |"]
    lines += [f"| {row['minute']:.1f} | {row['evaluations']} | {row['fitness']:.4f} | {row['id']} | {row['rung']} |"
              for row in lad["best_over_time"]]
    pop = lad["population"]
    lines += ["", f"The final population ({pop['size']} members): " + ", ".join(
        f"{k} {v}" + (f" (best {pop['best'][k]:.4f})" if pop["best"][k] is not None else "")
        for k, v in pop["counts"].items()) + "."]
    for label in ("signum-family", "lion-family"):
        f = lad["fitted"][label]
        lines.append("")
        lines.append(f"Fitted constants of the best {label} program: "
                     + ("none trained (or all failed)." if f is None else
                        f"candidate {f['id']}, fitness {f['fitness']:.4f}: {f['rung']}."))
    front = r.get("front") or {}
    lines += ["", "The best program per number of live state tensors:", "",
              "| state tensors | candidate | fitness | live statements | rung | on the front |",
              "| --- | ---: | ---: | ---: | --- | --- |"]
    for bucket, e in front.items():
        lines.append(f"| {bucket} | - | - | - | - | - |" if e is None else
                     f"| {bucket} | {e['id']} | {e['fitness']:.4f} | {e['length']} | {e['rung']} | "
                     f"{'yes' if e['on_front'] else 'no'} |")
    hof = {}
    for e in lad["hall_of_fame"]:
        label = e["rung"].split(" ", 1)[0]
        hof[label] = hof.get(label, 0) + 1
    lines += ["", f"The final hall of fame ({len(lad['hall_of_fame'])} programs): "
              + ", ".join(f"{k} {v}" for k, v in hof.items()) + ". Lion-family: "
              + f"produced {'yes' if lad['lion_produced'] else 'no'}, found {'yes' if lad['lion_found'] else 'no'}."]
    return lines


def in_the_way(results: dict) -> list[str]:
    """Per run, from the measurements: the highest rung it trained and the highest that beat the warm
    start, its best against the rung programs' fitness, its final population, and its trained
    candidates against the odds samples the JSON records."""
    lines = ["", "## What stood in the way", "",
             "From the measurements above, per run: the highest rung trained and the highest that beat the "
             "warm start; the run's best against the best rung program under the same fitness; the final "
             "population; the candidates trained against the odds measured by `experiments/odds.py` (for the "
             "evolution seeds: the odds are of children made by their mutation, which random search and the "
             "constants-only baseline do not make).", ""]
    rungs = [e for e in (results.get("rungs") or {}).get("programs", []) if e["fitness"] is not None]
    top_rung = max(rungs, key=lambda e: e["fitness"]) if rungs else None
    for name, r in _runs(results):
        lad, c = r.get("ladder"), r.get("counts")
        if not lad:
            lines.append(f"- {name}: not read (no ladder recorded).")
            continue
        parts = [f"{c['trained']} trained in {lad['minutes']:.0f} min ({_per_hour(c['trained_per_hour'])} per hour)",
                 f"highest rung trained {lad['highest_rung'] or 'none'}",
                 f"highest beating the warm start ({_score(lad['warm_start_fitness'])}) "
                 f"{lad['highest_rung_beating_warm_start'] or 'none'}"]
        best = lad["hall_of_fame"][0] if lad["hall_of_fame"] else None
        if best and top_rung:
            gap = best["fitness"] - top_rung["fitness"]
            parts.append(f"its best {best['fitness']:.4f} ({best['rung'].split(' ', 1)[0]}) is "
                         f"{abs(gap):.4f} {'above' if gap >= 0 else 'below'} the best of the rung programs "
                         f"({top_rung['name']}, {top_rung['fitness']:.4f})")
        parts.append("final population " + ", ".join(f"{k} {v}" for k, v in lad["population"]["counts"].items()))
        for o in results.get("odds", []) if name.startswith("seed ") else ():
            parts += [_against_odds(o, label, c["trained"]) for label in ("signum-family", "lion-family")
                      if label in o["rates"]]
        lines.append(f"- {name}: " + "; ".join(parts) + ".")
    return lines


def _against_odds(o: dict, label: str, trained: int) -> str:
    """A run's trained candidates against the trained candidates an odds sample puts per child of
    ``label`` (generated children per rung child, times trained per generated child)."""
    where = f"odds.py, parent {o['parent']}, {o['generated']} children"
    rate = o["rates"][label]
    if not rate:
        return f"{label}: none of {o['generated']} children of {o['parent']} ({where})"
    per = o["trained_per_generated"] / rate
    return (f"{label} child of {o['parent']}: 1 per {1 / rate:.3g} generated, ~{per:.3g} trained ({where}); "
            f"{trained} trained is {trained / per:.2g} of that")


def report(results: dict, figures: list[str], command: str) -> str:
    n = len(results["seeds"])
    k = sum(1 for r in results["seeds"].values() if lion_found(r))
    lines = ["# Rediscovering Lion", "", f"Command: `{command}`", "",
             f"Proxy suite: {', '.join(results['suite'])}; held-out tasks: {', '.join(results['held_out'])}.",
             "The search saw only proxy fitness; families were identified afterwards.",
             f"Budget: {results['time_per_seed']:.0f} s of search per seed (and per baseline), "
             f"{results.get('workers', '2 workers')}.", ""]
    for name in figures:
        lines.append(f"![{name}]({name})")
    lines += ["", "The climb up the ladder from AdamW to Lion (rungs judged by what a program computes, "
              "`experiments/ladder.py`; minutes of search from the first recorded candidate; \"Lion found\": "
              "a Lion-family program in the final hall of fame, the top 10 by proxy fitness):", "",
              *ladder_summary(results), "", "Each run's best programs and their readings:", "",
              *summary_table(results), "", *readings_note(results), *rungs_section(results)]
    if k < 3 or n < 5:
        lines += in_the_way(results)
    grids = results.get("lr_grids", {})         # (reports made before grids were recorded: none)
    for seed, r in results["seeds"].items():
        lines += ["", f"## Seed {seed}", "",
                  f"{r['evaluations']} evaluations, {r['cache_hits']} cache hits, {r['pruned']} pruned, "
                  f"{r['seconds']:.0f} s. Best proxy fitness {r['best_fitness']}, meta-validation "
                  f"{r['best_large_fitness']}.", *ladder_lines(r), *readings_table(r, results["suite"]), "",
                  f"Family of the proxy best (`match.identify`): {r['family'] or 'none'} {json.dumps(r['constants'])}.",
                  *_first_lion_line(r),
                  "", "Best program by proxy fitness (raw):", "```python", (r["best"] or "").rstrip(), "```",
                  "Simplified:", "```python", (r["simplified"] or "").rstrip(), "```"]
        if r.get("best_meta"):
            lines += best_meta_lines("Best", r["best_meta"])
        if r["held_out"]:
            lines += held_out_table(r, grids)
    if results["baselines"]:
        # their evaluations and scores are in the summary table above
        lines += ["", "## Baselines (same budget, seed of the first run)"]
        for label, b in results["baselines"].items():
            lines += ["", f"### {label}", *ladder_lines(b)]
            if b.get("best_meta"):
                lines += ["", *best_meta_lines(f"{label}: best", b["best_meta"])]
            lines += readings_table(b, results["suite"])
    lines += ["", f"lion_family_found: {k}/{n}", ""]
    return "\n".join(lines)


def _first_lion_line(r: dict) -> list[str]:
    """When a Lion-family program first entered the hall of fame: by the ladder where the run has one,
    else as recorded before it (``match.identify``'s family, wall-clock seconds)."""
    if r.get("ladder"):
        return []                                   # in the ladder's table
    first = r.get("first_lion")
    return ["First Lion-family program in the hall of fame: "
            + (f"after {first[0]} evaluations, {first[1]:.0f} s" if first else "never")]
