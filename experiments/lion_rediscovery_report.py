"""The Lion-rediscovery report (``lion_rediscovery.py`` runs the searches and measures; this writes
what they found): a summary line per run, each run's programs, families and held-out results, the
plots, and beside every fitness its readings (each task's validation loss, its ratio to tuned
AdamW's, accuracy), with where the readings came from.
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
    lines += ["", *summary_table(results), "", *readings_note(results)]
    grids = results.get("lr_grids", {})         # (reports made before grids were recorded: none)
    for seed, r in results["seeds"].items():
        lines += ["", f"## Seed {seed}", "",
                  f"{r['evaluations']} evaluations, {r['cache_hits']} cache hits, {r['pruned']} pruned, "
                  f"{r['seconds']:.0f} s. Best proxy fitness {r['best_fitness']}, meta-validation "
                  f"{r['best_large_fitness']}.", *readings_table(r, results["suite"]), "",
                  f"Family: {r['family'] or 'none'} {json.dumps(r['constants'])}.",
                  "First Lion-family program in the hall of fame: "
                  + (f"after {r['first_lion'][0]} evaluations, {r['first_lion'][1]:.0f} s" if r["first_lion"] else "never"),
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
            if b.get("best_meta"):
                lines += ["", *best_meta_lines(f"{label}: best", b["best_meta"])]
            lines += readings_table(b, results["suite"])
    lines += ["", f"lion_family_found: {k}/{n}", ""]
    return "\n".join(lines)
