"""``evosearch plot RUN``: how the search went, as PNGs in the run folder.

- ``fitness_vs_evaluations.png``: the best fitness so far and the population's median against the
  number of trained candidates (the evaluations ``show`` counts);
- ``fitness_vs_time.png``: the same against seconds since the first candidate was recorded;
- ``fitness_vs_length.png``: the fitness of every trained candidate against its number of live
  statements, the hall of fame marked;
- ``fitness_front.png``: the fitness of every distinct trained program (failures left out) against
  its number of live state tensors and against its number of live statements, with the fronts of
  ``front.py`` drawn over them: the best program per state count (hollow where a program with fewer
  states does better), and the programs that train better than every shorter one.

Each has the warm start's fitness and tuned AdamW's (1.0) as reference lines, and a y-axis fitted to
the curves (failures, at -1, and the first generations' dips would otherwise flatten a climb from
0.92 to 1.01 into the top edge).
The population's median at a point is the median fitness of the last ``population_size`` candidates
told to evolution, trained or served from the cache (the aging population), in the order they were
recorded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evosearch.lang.liveness import live_statements
from evosearch.lang.program import Program

from .store import RunStore


def plot_run(run: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write the four PNGs of a run into ``out`` (default: the run folder); returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    run = Path(run)
    out = Path(out) if out else run
    store = RunStore(run, readonly=True)
    try:
        rows = store.scored_by_time()
        population = int((store.get_meta("config") or {}).get("population_size", 100))
        warm = store.get_meta("warm_start_fitness")
        hof_ids = {e["id"] for e in store.hall_of_fame(int((store.get_meta("config") or {}).get("hall_of_fame", 10)))}
        front, programs = store.front()
    finally:
        store.close()
    trained = [r for r in rows if r[3] == "evaluated"]
    if not trained:
        raise ValueError(f"run {run} has no trained candidate to plot")
    out.mkdir(parents=True, exist_ok=True)
    evaluations, seconds, best, median = curves(rows, population)
    # the best curve whole, the median from its 10th percentile up: the first generations' mutants
    # dip it briefly towards 0, which would squash the climb of the best into the top edge
    low, high = _fitted_range(np.concatenate([best, [np.percentile(median, 10)]]), warm)

    paths = []
    for xs, label, name in ((evaluations, "trained candidates (evaluations)", "fitness_vs_evaluations.png"),
                            (seconds, "seconds since the first candidate", "fitness_vs_time.png")):
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(xs, best, label="best so far", color="C0")
        ax.plot(xs, median, label=f"population median (last {population})", color="C1", alpha=0.8)
        _references(ax, warm)
        ax.set_xlabel(label)
        ax.set_ylabel("fitness (1.0 = tuned AdamW)")
        ax.set_ylim(low, high)
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        paths.append(_save(fig, out / name))

    lengths = np.array([len(live_statements(Program.parse(r[4]))) for r in trained])
    scores = np.array([r[1] for r in trained])
    fig, ax = plt.subplots(figsize=(7, 4))
    ok = scores > -1.0
    ax.scatter(lengths[ok], scores[ok], s=8, alpha=0.4, color="C2", label="trained candidates (failures left out)")
    marked = np.array([r[0] in hof_ids for r in trained])
    ax.scatter(lengths[marked], scores[marked], s=30, color="C3", label="hall of fame")
    _references(ax, warm)
    ax.set_xlabel("live statements")
    ax.set_ylabel("fitness (1.0 = tuned AdamW)")
    ax.set_ylim(*_fitted_range(scores[ok] if ok.any() else scores, warm, quantile=10))
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    paths.append(_save(fig, out / "fitness_vs_length.png"))
    if programs:
        paths.append(_plot_fronts(plt, front, programs, warm, out / "fitness_front.png"))
    return paths


def _plot_fronts(plt, front: dict, programs: list[dict], warm: float | None, path: Path) -> Path:
    """``fitness_front.png`` (module docstring): fitness against live state tensors and against
    live statements, every distinct trained program and the fronts."""
    scores = np.array([e["fitness"] for e in programs])
    states = np.array([min(e["states"], 3) for e in programs])     # 3 and more share the "3+" column
    lengths = np.array([e["length"] for e in programs])
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(programs))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    left.scatter(states + jitter, scores, s=8, alpha=0.4, color="C2", label="trained programs (failures left out)")
    best = [e for e in front["states"].values() if e is not None]
    for on_front, style in ((True, dict(color="C3")), (False, dict(facecolors="none", edgecolors="C3"))):
        chosen = [e for e in best if e["on_front"] == on_front]
        if chosen:
            left.scatter([min(e["states"], 3) for e in chosen], [e["fitness"] for e in chosen], s=60, zorder=3,
                         label="best per state count" + ("" if on_front else " (fewer states do better)"),
                         **style)
    left.set_xticks(range(4), ["0", "1", "2", "3+"])
    left.set_xlabel("live state tensors (memory per parameter)")
    right.scatter(lengths, scores, s=8, alpha=0.4, color="C2")
    steps = front["length"]
    right.step([e["length"] for e in steps], [e["fitness"] for e in steps], where="post", color="C3", zorder=3)
    right.scatter([e["length"] for e in steps], [e["fitness"] for e in steps], s=40, color="C3", zorder=3,
                  label="length front (better than every shorter program)")
    right.set_xlabel("live statements")
    for ax in (left, right):
        _references(ax, warm)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    left.set_ylabel("fitness (1.0 = tuned AdamW)")
    left.set_ylim(*_fitted_range(scores, warm, quantile=10))
    return _save(fig, path)


def curves(rows: list[tuple], population: int) -> tuple[np.ndarray, ...]:
    """(evaluation number, seconds since the first candidate, best fitness so far, population
    median) at each trained candidate, from ``(id, fitness, recorded_at, status, ...)`` rows of
    every candidate in the order they were recorded."""
    fitness = np.array([r[1] for r in rows])
    at_trained = np.array([i for i, r in enumerate(rows) if r[3] == "evaluated"])
    median = np.array([np.median(fitness[max(0, i - population + 1): i + 1]) for i in at_trained])
    seconds = np.array([rows[i][2] for i in at_trained]) - rows[0][2]
    return np.arange(1, len(at_trained) + 1), seconds, np.maximum.accumulate(fitness[at_trained]), median


def _fitted_range(values: np.ndarray, warm: float | None, quantile: float = 0.0) -> tuple[float, float]:
    """A y-range that holds the curves (from their ``quantile`` percentile up), the warm start and 1.0."""
    low = float(np.percentile(values, quantile)) if quantile else float(values.min())
    marks = [low, float(values.max()), 1.0] + ([warm] if warm is not None else [])
    low, high = max(min(marks), -1.0), max(marks)
    pad = max(0.05 * (high - low), 0.002)
    return low - pad, high + pad


def _references(ax, warm: float | None) -> None:
    ax.axhline(1.0, color="k", linestyle="--", linewidth=0.8, label="tuned AdamW (1.0)")
    if warm is not None:
        ax.axhline(warm, color="gray", linestyle=":", linewidth=1.0, label=f"warm start ({warm:.3f})")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path
