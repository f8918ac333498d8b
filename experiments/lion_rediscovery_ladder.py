"""Where each Lion-rediscovery run stood on the ladder from AdamW to Lion, read from its run folder
after the search, and the ladder's rungs scored under the search's own fitness.

Every rung is judged by what a program computes (``ladder.classify``: adamw-like, signum-family,
lion-family, other), once per canonical hash. For reporting only: the search never sees a rung.

For a run (``read_run``):

- the first trained candidate of each rung, and the first of each that beat the warm start: its
  place among the trained candidates (id order), the search minutes to it, its fitness and program;
  the first Lion-family program to enter the hall of fame;
- the best program so far and its rung every ``SAMPLE_MINUTES`` minutes of search and at the end;
- the final population's rungs (the last snapshot);
- the fitted betas and weight decay of the best Signum-family and Lion-family programs;
- the best program per number of live state tensors (``evosearch.search.front``), with its rung;
- the counts: trained, served from the cache, pruned, screened, stopped early, failed; per hour;
- whether a Lion-family program was trained at all ("produced") and whether one is in the final
  hall of fame, the top 10 distinct programs by proxy fitness ("found").

Search minutes run from the first recorded candidate, without the breaks between the sessions of a
resumed run (any stretch of ``SESSION_GAP`` s or more with nothing recorded).

``RUNG_PROGRAMS`` are the rungs themselves, at the warm start's scales (``lr * 0.001``, weight
decay 0.01 in units of the step), for ``lion_rediscovery.measure_rungs`` to score on the suite.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ladder  # sibling script (experiments/)

from evosearch.lang.errors import ProgramError
from evosearch.lang.kinds import check
from evosearch.lang.program import Program
from evosearch.lang.pruning import why_pruned
from evosearch.lang.screen import screen_reason
from evosearch.search import early_stop
from evosearch.search.store import RunStore

CLIMB = ("adamw-like", "signum-family", "lion-family")     # up the ladder; "other" is off it
FIRSTS = ("signum-family", "lion-family")
SAMPLE_MINUTES = 5
SESSION_GAP = 600.0
HALL_OF_FAME = 10

_WARM_START = """def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, m, 0.9)
    v = interp(g2, v, 0.999)
    sqrt_v = sqrt(v)
    update = m / sqrt_v
{sign}    wd = w * {wd}
    update = update + wd
    lr = lr * 0.001
    update = update * lr
    return update, m, v
"""
_SIGN = "    update = sign(update)\n"
_SIGNUM = """def train(w, g, m, lr):
    m = interp(g, m, 0.9)
    update = sign(m)
    wd = w * 0.01
    update = update + wd
    lr = lr * 0.001
    update = update * lr
    return update, m
"""
_LION = """def train(w, g, m, lr):
    update = interp(g, m, 0.9)
    update = sign(update)
    m = interp(g, m, 0.99)
    wd = w * {wd}
    update = update + wd
    lr = lr * 0.001
    update = update * lr
    return update, m
"""
# (name, program): each rung at the warm start's scales; weight decay in units of the step
RUNG_PROGRAMS = (
    ("the warm start (AdamW, wd 0.01)", _WARM_START.format(sign="", wd="0.01")),
    ("the warm start, sign(update) after the division", _WARM_START.format(sign=_SIGN, wd="0.01")),
    ("the same, wd 1", _WARM_START.format(sign=_SIGN, wd="1.0")),
    ("Signum 0.9, wd 0.01", _SIGNUM),
    ("Lion (0.9, 0.99), wd 0.01", _LION.format(wd="0.01")),
    ("Lion (0.9, 0.99), wd 1", _LION.format(wd="1.0")),
)


def admission(prog: Program, lr_proportional: bool = True, lr: float = 1.0) -> str | None:
    """Why the search would not train ``prog`` (its analysis, the gradient and lr rules, the numeric
    screen at the tasks' ``lr`` input), or None: the rung programs must be ones it can train."""
    try:
        check(prog)
    except ProgramError as exc:
        return f"invalid: {exc}"
    return why_pruned(prog, lr_proportional) or screen_reason(prog, lr)


class RungOf:
    """``ladder.classify``, once per canonical hash. A classification that raises (a bug in the
    analysis, not a result) is reported on stderr and the program counts as ``other``."""

    def __init__(self):
        self.known: dict[str, ladder.Rung] = {}

    def __call__(self, canonical_hash: str, program) -> ladder.Rung:
        if canonical_hash not in self.known:
            try:
                prog = program if isinstance(program, Program) else (
                    Program.from_json(program) if isinstance(program, dict) else Program.parse(program))
                self.known[canonical_hash] = ladder.classify(prog)
            except Exception as exc:  # noqa: BLE001
                print(f"warning: could not classify a program ({type(exc).__name__}: {exc})", file=sys.stderr)
                self.known[canonical_hash] = ladder.Rung("other", why=f"not classified: {exc}")
        return self.known[canonical_hash]


def search_clock(times) -> dict[float, float]:
    """Search seconds at each recorded time: from the first, less every gap of ``SESSION_GAP`` s or
    more (a resumed run's break between sessions)."""
    out, total, prev = {}, 0.0, None
    for t in sorted(set(times)):
        if prev is not None and t - prev < SESSION_GAP:
            total += t - prev
        out[t] = total
        prev = t
    return out


def _entry(c: dict, n: int, minutes: float, rung: ladder.Rung) -> dict:
    return {"id": c["id"], "evaluations": n, "minutes": minutes, "fitness": c["fitness"],
            "failure": c["failure"], "rung": str(rung), "program": c["program"]}


def read_ladder(trained: list[dict], clock: dict[float, float], warm_fitness: float | None,
                rung_of: RungOf, population: list[tuple[str, object, float]], hall: list[dict]) -> dict:
    """The ladder of one run (see the module docstring) from plain records: ``trained``, the trained
    candidates (``id``, ``fitness``, ``failure``, ``program``, ``canonical_hash``, ``recorded_at``);
    ``clock``, search seconds by recorded time; ``population``, the final population's (canonical
    hash, program, fitness); ``hall``, the final hall of fame (``id``, ``fitness``, ``program``,
    ``canonical_hash``)."""
    trained = sorted(trained, key=lambda c: c["id"])
    first = dict.fromkeys(FIRSTS)
    beat = dict.fromkeys(FIRSTS)
    entered = dict.fromkeys(FIRSTS)
    fitted = dict.fromkeys(FIRSTS)
    counts = dict.fromkeys(ladder.LABELS, 0)
    beaten: set[str] = set()                        # rungs with a program that beat the warm start
    top: list[tuple[float, int, str]] = []          # the hall of fame as the search went: (fitness, -id, hash)
    for n, c in enumerate(trained, 1):
        rung = rung_of(c["canonical_hash"], c["program"])
        label = rung.label
        counts[label] += 1
        minutes = clock[c["recorded_at"]] / 60
        ok = c["failure"] is None
        beats = ok and warm_fitness is not None and c["fitness"] > warm_fitness
        if beats:
            beaten.add(label)
        if label in first:
            if first[label] is None:
                first[label] = _entry(c, n, minutes, rung)
            if beat[label] is None and beats:
                beat[label] = _entry(c, n, minutes, rung)
            if ok and (fitted[label] is None or c["fitness"] > fitted[label]["fitness"]):
                fitted[label] = {"id": c["id"], "fitness": c["fitness"], "beta1": rung.beta1, "beta2": rung.beta2,
                                 "weight_decay": rung.weight_decay, "rung": str(rung), "program": c["program"]}
        if ok and _enters(top, c):
            if label in entered and entered[label] is None:
                entered[label] = _entry(c, n, minutes, rung)
    over_time = _best_over_time(trained, clock, rung_of)
    pop_counts = dict.fromkeys(ladder.LABELS, 0)
    pop_best = dict.fromkeys(ladder.LABELS)
    for h, program, fitness in population:
        label = rung_of(h, program).label
        pop_counts[label] += 1
        if fitness is not None and (pop_best[label] is None or fitness > pop_best[label]):
            pop_best[label] = fitness
    hof = [{"id": e["id"], "fitness": e["fitness"], "rung": str(rung_of(e["canonical_hash"], e["program"]))}
           for e in hall]
    climbed = [label for label in CLIMB if counts[label]]
    above = [label for label in CLIMB if label in beaten]
    return {"warm_start_fitness": warm_fitness, "trained": len(trained), "rung_counts": counts,
            "first": first, "first_beating_warm_start": beat, "first_in_hall_of_fame": entered,
            "best_over_time": over_time,
            "population": {"size": len(population), "counts": pop_counts, "best": pop_best},
            "fitted": fitted, "hall_of_fame": hof,
            "highest_rung": climbed[-1] if climbed else None,
            "highest_rung_beating_warm_start": above[-1] if above else None,
            "minutes": (max(clock.values()) / 60) if clock else 0.0,
            "lion_produced": counts["lion-family"] > 0,
            "lion_found": any(e["rung"].startswith("lion-family") for e in hof)}


def _enters(top: list, c: dict) -> bool:
    """Update the running top-``HALL_OF_FAME`` (distinct canonical hashes, ties to the earlier id) with
    a trained candidate; whether its program was not in it before and is now."""
    key = (c["fitness"], -c["id"], c["canonical_hash"])
    for i, (f, _, h) in enumerate(top):
        if h == c["canonical_hash"]:
            if key > top[i]:
                top[i] = key
                top.sort(reverse=True)
            return False
    if len(top) < HALL_OF_FAME or key > top[-1]:
        top.append(key)
        top.sort(reverse=True)
        del top[HALL_OF_FAME:]
        return True
    return False


def _best_over_time(trained: list[dict], clock: dict[float, float], rung_of: RungOf) -> list[dict]:
    """The best trained program so far (failures left out) every ``SAMPLE_MINUTES`` minutes of search
    and at the end: minute, trained candidates so far, its id, fitness and rung."""
    by_time = sorted(trained, key=lambda c: (clock[c["recorded_at"]], c["id"]))
    rows, best, n = [], None, 0
    end = clock[by_time[-1]["recorded_at"]] / 60 if by_time else 0.0
    marks = [SAMPLE_MINUTES * k for k in range(1, int(end // SAMPLE_MINUTES) + 1) if SAMPLE_MINUTES * k < end]
    marks.append(end)
    i = 0
    for mark in marks:
        while i < len(by_time) and clock[by_time[i]["recorded_at"]] / 60 <= mark:
            c = by_time[i]
            n += 1
            if c["failure"] is None and (best is None or c["fitness"] > best["fitness"]):
                best = c
            i += 1
        if best is not None:
            rows.append({"minute": mark, "evaluations": n, "id": best["id"], "fitness": best["fitness"],
                         "rung": str(rung_of(best["canonical_hash"], best["program"]))})
    return rows


def read_run(folder: Path, rung_of: RungOf) -> dict | None:
    """``{"counts", "ladder", "front"}`` of the run in ``folder`` (see the module docstring), or None
    without a run there. The store is opened read-only."""
    if not (Path(folder) / "run.sqlite").exists():
        return None
    store = RunStore(folder, readonly=True)
    try:
        rows = store.db.execute("SELECT id, fitness, failure, program, canonical_hash, recorded_at, metrics "
                           "FROM candidates WHERE status = 'evaluated' ORDER BY id").fetchall()
        times = [t for (t,) in store.db.execute("SELECT recorded_at FROM candidates")]
        counters = store.get_meta("counters") or {}
        elapsed = store.get_meta("elapsed", 0.0)
        warm = store.get_meta("warm_start_fitness")
        snap = store.last_snapshot() or {"population": []}
        hall = store.hall_of_fame(HALL_OF_FAME)
        front = store.front()[0]["states"]
        stored = store.counts()
    finally:
        store.close()
    trained = [{"id": i, "fitness": f, "failure": fail, "program": p, "canonical_hash": h, "recorded_at": t,
                "stopped": early_stop.stopped(json.loads(m) if m else None) is not None}
               for i, f, fail, p, h, t, m in rows]
    population = [(c["canonical_hash"], c["program"], fitness) for c, fitness in snap["population"]]
    ladder_ = read_ladder(trained, search_clock(times), warm, rung_of, population, hall)
    hours = elapsed / 3600
    counts = {"trained": stored["evaluations"], "cache_hits": stored["cache_hits"],
              "pruned": counters.get("rejected", 0), "screened": stored["screened"],
              "early_stopped": sum(c["stopped"] for c in trained),
              "failed": sum(c["failure"] is not None for c in trained),
              "generated": counters.get("generated", 0), "seconds": elapsed,
              "trained_per_hour": stored["evaluations"] / hours if hours else None,
              "generated_per_hour": counters.get("generated", 0) / hours if hours else None}
    for e in front.values():
        if e is not None:
            e["rung"] = str(rung_of(e["canonical_hash"], e["program"]))
    return {"counts": counts, "ladder": ladder_, "front": front}
