"""Funnel selection (Chen et al. 2023, Sec. 2.3): candidates that do well on the small proxy tasks
are scored again on larger versions of the same tasks (the ``large`` size), a meta-validation that
the proxy fitness alone cannot overfit. The score is recorded beside the candidate (its
``large_fitness``); it never feeds back into evolution.

Which candidates: the warm start (the reference every score is read against), and every candidate
whose proxy fitness beats the warm start's by more than ``margin``; with ``new_best_only``, only
those that also beat every proxy fitness evaluated before them (a large-size suite can cost as much
as dozens of proxy ones). The same rule picks, on ``--resume``, the candidates whose large-size
score was lost with the driver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SIZE = "large"      # the task size of the funnel


@dataclass(frozen=True)
class Funnel:
    """The funnel's settings (``[funnel]`` in a search config); ``enabled`` False: no funnel."""

    enabled: bool = False
    margin: float = 0.0
    new_best_only: bool = False

    def wants(self, fitness: float, failure: str | None, warm_fitness: float | None,
              is_warm_start: bool, is_record: bool) -> bool:
        """Whether a candidate just scored on the proxy tasks is scored on the large size too.
        ``is_record``: its fitness beats every one evaluated before it."""
        if not self.enabled or failure is not None or warm_fitness is None:
            return False
        if is_warm_start:
            return True
        return fitness > warm_fitness + self.margin and (is_record or not self.new_best_only)

    def missing(self, records, warm_id: int, warm_fitness: float | None) -> list[tuple[int, str]]:
        """(id, program text) of the candidates the funnel wants and that have no large-size score,
        from the run's ``(id, program, fitness, failure, large_fitness)`` records in id order."""
        out, best = [], -math.inf
        for cid, text, fitness, failure, large in records:
            if large is None and self.wants(fitness, failure, warm_fitness, cid == warm_id, fitness > best):
                out.append((cid, text))
            best = max(best, fitness)
        return out
