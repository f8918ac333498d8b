"""Early stopping: a candidate whose training is clearly behind the population's is stopped at a
checkpoint, not trained to the end: most mutants are hopeless long before their last step, and
on a proxy of seconds per run that is most of a search's time (on the ViT ladder proxy half of the
children barely learn: ``experiments/results/benchmarks.md``, "Early stopping on the ViT ladder
proxy").

At each checkpoint (a fraction of every run's steps) the evaluator reads the candidate's *partial
fitness*: the suite fitness (``suite.py``) computed from the validation losses the runs have then,
the same formula as the final one. The driver gives each candidate, when it sends it, one *bar* per
checkpoint, computed here from the population at that moment: the ``quantile`` of the partial
fitness its members had at the same checkpoint (members that failed, or have no reading there, are
left out), less ``margin``. A candidate below a bar stops there; its fitness is the partial fitness
its curve reached, and the store records where and why (``metrics["early_stop"]``).

So a stop depends only on the search's state when the candidate was asked for (deterministic, as
evolution is), and a stopped candidate is never scored with more than it had reached. It can be
scored with *less* than a full run would have given; ``experiments/early_stop_study.py`` measures
how often that costs a candidate its place (the false-stop rate) and what the stops save.

Pure: plain numbers in, plain numbers out; the driver keeps the readings and the evaluator trains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KEY = "early_stop"      # where an evaluation's metrics keep its readings (and its stop, if any)


@dataclass(frozen=True)
class EarlyStop:
    """The ``[early_stop]`` settings: ``checkpoints`` (fractions of a run's steps, increasing, each
    in (0, 1)), the population ``quantile`` a candidate must keep up with (0: its worst member),
    a ``margin`` below it that is still tolerated, and how many members must have a reading at a
    checkpoint (``min_members``) before it stops anything. The defaults are the rule measured on
    the ViT ladder proxy (``experiments/results/benchmarks.md``, "Early stopping on the ViT ladder
    proxy"): the median less 0.1, so that a child that starts slower than the warm start but ends
    ahead of it is not stopped."""

    enabled: bool = False
    checkpoints: tuple[float, ...] = (0.25, 0.5)
    quantile: float = 0.5
    margin: float = 0.1
    min_members: int = 10

    def steps(self, total: int) -> list[int]:
        """The step counts at which a run of ``total`` steps is read, one per checkpoint (between 1
        and ``total``), then ``total``."""
        return [min(total, max(1, round(f * total))) for f in self.checkpoints] + [total]

    def bars(self, readings: list[tuple[float, ...]]) -> tuple[float | None, ...]:
        """One bar per checkpoint from the population members' readings (each member's partial
        fitness at the checkpoints it reached; a member that failed gives none): the ``quantile``
        of the readings at that checkpoint less ``margin``, or None (no stop there) when fewer than
        ``min_members`` members have a reading."""
        out = []
        for i in range(len(self.checkpoints)):
            values = sorted(r[i] for r in readings if len(r) > i and math.isfinite(r[i]))
            if not values or len(values) < self.min_members:
                out.append(None)
                continue
            out.append(_quantile(values, self.quantile) - self.margin)
        return tuple(out)


def behind(partial: float, bar: float | None) -> bool:
    """Whether a candidate with ``partial`` fitness at a checkpoint stops at its ``bar``."""
    return bar is not None and partial < bar


def record(checkpoints: tuple[float, ...], partials: list[float], stop: dict | None = None) -> dict:
    """What an evaluation's metrics keep under ``KEY``: the checkpoints, the partial fitness read
    at each one reached, and, for a stopped candidate, where and why (``stop``)."""
    out = {"checkpoints": list(checkpoints), "partials": list(partials)}
    if stop is not None:
        out["stopped"] = stop
    return out


def readings(metrics: dict | None) -> tuple[float, ...]:
    """The partial fitness readings kept in an evaluation's metrics (empty when it has none)."""
    entry = (metrics or {}).get(KEY) or {}
    return tuple(float(x) for x in entry.get("partials", ()))


def stopped(metrics: dict | None) -> dict | None:
    """Where and why a candidate was stopped, from its metrics; None when it trained to the end."""
    return ((metrics or {}).get(KEY) or {}).get("stopped")


def _quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of sorted ``values`` (linear between order statistics, as numpy's default)."""
    pos = q * (len(values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)
