"""``evosearch plot RUN``: best and median fitness of the population against evaluations and time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .store import RunStore


def plot_run(run: str | Path, out: str | Path | None = None, window: int = 100) -> list[Path]:
    """Write ``fitness_vs_evaluations.png`` and ``fitness_vs_time.png`` of a run into ``out``
    (default: the run folder); returns their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    run = Path(run)
    out = Path(out) if out else run
    store = RunStore(run)
    try:
        rows = [r for r in store.history() if r[1] is not None]
    finally:
        store.close()
    out.mkdir(parents=True, exist_ok=True)
    if not rows:
        raise ValueError(f"run {run} has no candidates to plot")
    fitness = np.array([r[1] for r in rows])
    times = np.array([r[2] for r in rows])
    times = times - times.min()
    best = np.maximum.accumulate(fitness)
    median = np.array([np.median(fitness[max(0, i - window + 1): i + 1]) for i in range(len(fitness))])
    x = np.arange(1, len(fitness) + 1)
    paths = []
    for xs, label, name in ((x, "candidates (trained and cached)", "fitness_vs_evaluations.png"),
                            (times, "seconds", "fitness_vs_time.png")):
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(xs, best, label="best so far")
        ax.plot(xs, median, label=f"median of the last {window}", alpha=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("fitness (1.0 = tuned AdamW)")
        lo = np.percentile(fitness, 5)
        ax.set_ylim(max(lo, -1.05), max(best.max(), 1.0) + 0.05)
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
