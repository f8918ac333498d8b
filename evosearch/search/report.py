"""What ``evosearch show RUN`` reports: counts, the warm start's fitness, the hall of fame with
each program's simplified form and family (described now where the search had not yet), and the
fronts of ``front.py`` (the best program per number of live state tensors, the length front)."""

from __future__ import annotations

import json
from pathlib import Path

from .readings import task_readings
from .store import RunStore

WARM_START_ID = 0     # evolution's first candidate (``RegularizedEvolution`` asks it before any child)


def summary(folder: str | Path) -> dict:
    """What ``evosearch show RUN --json`` prints (the keys of ``docs/design.md``, "Public API")."""
    store = RunStore(folder, readonly=True)
    try:
        counts = store.counts()
        counters = store.get_meta("counters") or {}
        snap = store.last_snapshot()
        if snap:
            counters = snap["counters"]
        hof = store.hall_of_fame(store.get_meta("config", {}).get("hall_of_fame", 10))
        front, trained = store.front()
        shapes = {e["canonical_hash"]: (e["states"], e["length"]) for e in trained}
        for entry in hof:
            entry["states"], entry["length"] = shapes.get(entry["canonical_hash"], (None, None))
        described = hof + [e for e in front["states"].values() if e is not None]
        known = store.descriptions(e["canonical_hash"] for e in described)
        missing = list({e["canonical_hash"]: e for e in described if e["canonical_hash"] not in known}.values())
        if missing:     # described for the screen, not stored: show only reads (sympy: seconds to load)
            from evosearch.lang.program import Program

            from . import describe
            known.update({e["canonical_hash"]: describe.describe_program(Program.parse(e["program"]))
                          for e in missing})
        for entry in described:
            entry.update(known[entry["canonical_hash"]])
        best = {"program": hof[0]["program"], "fitness": hof[0]["fitness"], "id": hof[0]["id"]} if hof else None
        warm = store.candidate(WARM_START_ID)
        warm_tasks = task_readings(json.loads(warm["metrics"] or "{}"), store.baselines()[0] or {}) if warm else {}
        failed = store.failed_count()
        return {"evaluations": counts["evaluations"], "cache_hits": counts["cache_hits"],
                "failed": failed, "failure_reasons": store.failures() if failed else {},
                "screened": counts["screened"],
                "screen_reasons": store.failures("screened") if counts["screened"] else {},
                "early_stopped": store.early_stops(),
                "pruned": counters.get("rejected", 0), "generated": counters.get("generated", 0),
                "warm_start_fitness": store.get_meta("warm_start_fitness"), "warm_start_tasks": warm_tasks,
                "elapsed": store.get_meta("elapsed", 0.0), "best": best, "hall_of_fame": hof,
                "front": front}
    finally:
        store.close()


def to_json(obj) -> str:
    """``show --json``'s text."""
    return json.dumps(obj, indent=2)
