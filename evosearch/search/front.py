"""The fronts of a run: what a program costs against how well it trains.

Lion keeps one state tensor where Adam keeps two, and a researcher with a memory budget asks for the
best program that fits it. So a run reports, besides its hall of fame:

- the **state front**: for each number of live state tensors (``lang/liveness.py``, ``live_states``)
  0, 1, 2 and "3+", the best trained program with exactly that many (``on_front`` where it beats
  every program with fewer states: a bucket whose best is no better than a smaller one's is shown
  but dominated);
- the **length front**: PySR's loss against complexity, with length the number of live statements
  (``live_statements``): the programs that train better than every shorter one, shortest first.

Candidates that failed (fitness -1) are left out. Selection stays single-objective: the fronts are
what the search found, read back; they do not steer it (``[search] max_states`` is a hard limit).
"""

from __future__ import annotations

STATE_BUCKETS = ("0", "1", "2", "3+")


def program_shape(prog) -> tuple[int, int]:
    """(live state tensors, live statements) of a Program."""
    # (the engine, torch included: a reader loads it only for a run that stored no shapes)
    from evosearch.lang.liveness import live_statements, live_states
    return len(live_states(prog)), len(live_statements(prog))


def text_shape(text: str) -> tuple[int, int]:
    """(live state tensors, live statements) of a program in the text form."""
    from evosearch.lang.program import Program
    return program_shape(Program.parse(text))


def bucket(states: int) -> str:
    """The state front's bucket of a number of live state tensors."""
    return STATE_BUCKETS[min(states, 3)]


def fill_shapes(entries: list[dict]) -> dict[str, tuple[int, int]]:
    """Give every entry without ``states`` and ``length`` (a run that did not store them) its shape,
    parsed from its program; returns what was computed, by canonical hash."""
    computed = {}
    for e in entries:
        if e.get("states") is None or e.get("length") is None:
            shape = computed.get(e["canonical_hash"]) or text_shape(e["program"])
            computed[e["canonical_hash"]] = shape
            e["states"], e["length"] = shape
    return computed


def state_front(entries: list[dict]) -> dict[str, dict | None]:
    """The best entry per state bucket (None where no program has that many), each with ``bucket``
    and ``on_front``; ``entries`` are trained programs with ``fitness``, ``states`` and ``length``."""
    best: dict[str, dict] = {}
    for e in sorted(entries, key=_rank):
        best.setdefault(bucket(e["states"]), e)
    front, record = {}, None
    for name in STATE_BUCKETS:
        e = best.get(name)
        if e is not None:
            e = {**_public(e), "bucket": name, "on_front": record is None or e["fitness"] > record}
            record = e["fitness"] if record is None else max(record, e["fitness"])
        front[name] = e
    return front


def length_front(entries: list[dict]) -> list[dict]:
    """The entries that train better than every shorter one (the best of each length that
    improves on all shorter lengths), shortest first."""
    front, record = [], None
    for e in sorted(entries, key=lambda e: (e["length"], *_rank(e))):
        if record is None or e["fitness"] > record:
            front.append(_public(e))
            record = e["fitness"]
    return front


def fronts(entries: list[dict]) -> dict:
    """``{"states": state_front, "length": length_front}`` of trained programs (failures dropped)."""
    ok = [e for e in entries if e["fitness"] is not None and e["fitness"] > FAILURE]
    return {"states": state_front(ok), "length": length_front(ok)}


FAILURE = -1.0       # tasks.results.FAILURE_FITNESS (not imported: reading a run loads no engine)
_FIELDS = ("id", "fitness", "states", "length", "program", "canonical_hash")


def _rank(e: dict) -> tuple:
    return -e["fitness"], e["id"]


def _public(e: dict) -> dict:
    return {k: e[k] for k in _FIELDS}
