"""What scoring an optimizer on a task gives (``Task.evaluate``, ``Task.evaluate_batch``)."""

from __future__ import annotations

from dataclasses import dataclass, field

FAILURE_FITNESS = -1.0   # the fitness of every failure, and the floor of every fitness


@dataclass(frozen=True)
class EvalResult:
    """A task's score of one optimizer: fitness, the training metrics, why it failed (or None)."""
    fitness: float
    metrics: dict = field(default_factory=dict)
    failure: str | None = None
