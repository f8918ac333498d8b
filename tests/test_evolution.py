"""Regularized evolution as a pure ask/tell object (``evosearch.search.evolution``; docs/design.md,
"Data flow"): warm start, determinism, snapshot and restore, the cache that spares re-training
(canonical hash, fingerprint, twins in flight), rejected children, restarts, and the paper's cache
rate. No training and no Ray: a cheap deterministic stand-in for fitness (``fake_fitness``) replaces
it. The search driver that trains candidates is tested in test_driver.py.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from evosearch import Program, reference
from evosearch.lang.canonical import canonical_hash
from evosearch.lang.errors import ProgramError
from evosearch.lang.fingerprint import fingerprint
from evosearch.lang.ir import Statement
from evosearch.lang.kinds import check
from evosearch.lang.liveness import pruning_reason
from evosearch.search import evolution
from evosearch.search.evolution import EvolutionConfig, RegularizedEvolution

ADAMW = reference.load("adamw")


# ---- helpers ------------------------------------------------------------------------------------

def fake_fitness(candidate) -> float:
    """A cheap deterministic stand-in for training: a pseudo-random number in [0, 1) that depends only
    on what the program computes (its functional fingerprint), as a real fitness would."""
    digest = hashlib.blake2b(candidate.fingerprint.encode(), digest_size=8).hexdigest()
    return int(digest, 16) / 2 ** 64


def drive(evo: RegularizedEvolution, steps: int, batch: int = 3) -> list[tuple]:
    """``steps`` rounds of ask(batch) then tell (in order) with the fake fitness; returns what happened."""
    history = []
    for _ in range(steps):
        for c in evo.ask(batch):
            history.append(("evaluated", c.id, c.parent_id, c.mutation, str(c.program)))
            evo.tell(c.id, fake_fitness(c))
        for h in evo.take_cache_hits():
            history.append(("cached", h.candidate.id, h.source_id, h.reason, str(h.candidate.program)))
    return history


def edit(prog: Program, old: str, new: str) -> Program:
    text = str(prog)
    assert old in text
    return Program.parse(text.replace(old, new))


def with_statements(prog: Program, statements) -> Program:
    """A program built without checking (as mutation does), so it may be invalid."""
    return Program(prog.inputs, tuple(statements), prog.outputs, prog.name)


def scripted_mutations(monkeypatch, programs: list[Program]) -> None:
    """Make evolution's mutation return ``programs`` in turn (then fail loudly)."""
    queue = list(programs)

    def mutate(parent, rng, config):
        rng.random()
        return queue.pop(0), "scripted"
    monkeypatch.setattr(evolution, "mutate", mutate)


# ---- evolution as a pure ask/tell object ------------------------------------------------------

def test_warm_start_fills_the_population():
    evo = RegularizedEvolution(ADAMW, EvolutionConfig(population_size=7, tournament_size=3), seed=0)
    first = evo.ask(5)
    assert [c.program for c in first] == [ADAMW] and first[0].parent_id is None
    assert evo.ask(5) == []                      # nothing else until the warm start has been told
    evo.tell(first[0].id, 0.5)
    assert len(evo.population) == 7
    assert all(m.candidate.id == first[0].id and m.fitness == 0.5 for m in evo.population)
    assert evo.best.candidate.id == first[0].id


def test_same_seed_same_children_and_another_seed_differs():
    cfg = EvolutionConfig(population_size=20, tournament_size=4)
    runs = [drive(RegularizedEvolution(ADAMW, cfg, seed=s), steps=40) for s in (5, 5, 6)]
    assert len([h for h in runs[0] if h[0] == "evaluated"]) > 20
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_snapshot_json_restore_continues_identically():
    cfg = EvolutionConfig(population_size=20, tournament_size=4, restart_patience=15)
    evo = RegularizedEvolution(ADAMW, cfg, seed=11)
    told = []                                        # what a run store would hold: (hash, fp, fitness, id)

    def record_screened():                           # the store's cache entries include them
        told.extend((x.candidate.canonical_hash, x.candidate.fingerprint, x.fitness, x.candidate.id)
                    for x in evo.take_screened())
    for _ in range(25):
        for c in evo.ask(3):
            evo.tell(c.id, fake_fitness(c))
            told.append((c.canonical_hash, c.fingerprint, fake_fitness(c), c.id))
        evo.take_cache_hits()
        record_screened()
    in_flight = evo.ask(3)                           # snapshot with candidates still being trained
    assert in_flight
    evo.take_cache_hits()                            # the driver records these with the snapshot
    record_screened()
    snap = json.loads(json.dumps(evo.snapshot()))
    twin = RegularizedEvolution(ADAMW, cfg, seed=12345)   # a different seed: the RNG must be restored
    twin.restore(snap)
    twin.seed_cache(sorted(told, key=lambda t: t[3]))
    assert json.loads(json.dumps(twin.snapshot())) == snap
    for e in (evo, twin):
        for c in in_flight:
            e.tell(c.id, fake_fitness(c))
    assert drive(evo, steps=30) == drive(twin, steps=30)
    assert evo.counters == twin.counters and evo.next_id == twin.next_id


# Run stores keep fingerprints and a resumed search serves its cache by them: a change to the
# fingerprint's arithmetic (or to how numpy_exec runs a program) must be deliberate, never a side
# effect of making it faster.
PINNED_FINGERPRINTS = {
    "adagrad": "54ba01876cd65a28d69b2b2e1a56fc5b", "adam": "846d8edd43a02227fd3cce0b018a3cab",
    "adamw": "7609bbc3d28f276791a8916f796599b8", "adamw_torch": "586f949c562a401c231947f0dc18d319",
    "addsign": "dc202614d09313733db2caeac3520558", "lion": "60bbddf87706b56885eff5ae65873415",
    "powersign": "529cee6e384f73a89b9a897bd60ebbc0", "rmsprop": "77df3444dc7cc1030382e79897767d99",
    "sgd": "0336ab2ef56eac27e4611fe96257603c", "sgd_momentum": "8bf8f7f5223e72c48513e1a8fbd95061",
    "signsgd": "80df5b971b09905abb82f1d5b4bb5c7a", "signum": "8aa5a0bd13f2c2a3181fd7d8c3722a02",
}


def test_the_reference_programs_keep_their_fingerprints():
    assert {name: fingerprint(reference.load(name)) for name in reference.names()} == PINNED_FINGERPRINTS


def test_a_seen_program_is_served_from_the_cache_and_never_returned(monkeypatch):
    dead = edit(ADAMW, "    sqrt_v = sqrt(v)\n", "    sqrt_v = sqrt(v)\n    junk = cos(w)\n")
    same_function = edit(ADAMW, "g2 = square(g)", "g2 = g * g")
    new = edit(ADAMW, "interp(g, m, 0.9)", "interp(g, m, 0.8)")
    new_dead = edit(new, "    wd = w * 0.01\n", "    wd = w * 0.01\n    junk = exp(g)\n")
    assert canonical_hash(dead) == canonical_hash(ADAMW)
    assert canonical_hash(same_function) != canonical_hash(ADAMW)
    assert fingerprint(same_function) == fingerprint(ADAMW)
    assert canonical_hash(new_dead) == canonical_hash(new)

    evo = RegularizedEvolution(ADAMW, EvolutionConfig(population_size=5, tournament_size=2), seed=0)
    (warm,) = evo.ask(1)
    evo.tell(warm.id, 0.75)
    other = edit(ADAMW, "w * 0.01", "w * 0.02")
    scripted_mutations(monkeypatch, [dead, same_function, new, new_dead, new, other])
    (child,) = evo.ask(1)
    assert child.program == new
    hits = evo.take_cache_hits()
    assert [(h.candidate.program, h.source_id, h.fitness, h.reason) for h in hits] == [
        (dead, warm.id, 0.75, "canonical hash"), (same_function, warm.id, 0.75, "fingerprint")]
    assert [m.candidate.program for m in list(evo.population)[-2:]] == [dead, same_function]
    # a twin of a candidate still being trained waits for its result instead of being trained too
    assert [c.program for c in evo.ask(1)] == [other]   # new_dead and the second `new` wait
    assert evo.counters.cache_hits == 2 and evo.take_cache_hits() == []
    evo.tell(child.id, 0.9)
    hits = evo.take_cache_hits()
    assert [(h.candidate.program, h.source_id, h.fitness, h.reason) for h in hits] == [
        (new_dead, child.id, 0.9, "in flight"), (new, child.id, 0.9, "in flight")]
    assert evo.counters.cache_hits == 4 and evo.counters.evaluated == 2
    assert evo.counters.generated == 6 and evo.counters.rejected == 0
    assert evo.next_id == 7                          # every child got an id, none was skipped


def test_rejected_children_are_counted_and_never_returned(monkeypatch):
    s = ADAMW.statements
    undefined = with_statements(ADAMW, s[1:])                     # g2 is never defined
    lr_scale = s[-2]                                              # lr = lr * 0.001
    assert str(lr_scale) == "lr = lr * 0.001"
    scalar_update = with_statements(ADAMW, s[:-1] + (Statement("update", lr_scale.op, lr_scale.args),))
    no_gradient = edit(ADAMW, "update = m / sqrt_v", "update = w * 0.5")
    for bad in (undefined, scalar_update):
        with pytest.raises(ProgramError):
            check(bad)
    assert pruning_reason(no_gradient) is not None
    new = edit(ADAMW, "interp(g2, v, 0.999)", "interp(g2, v, 0.99)")

    evo = RegularizedEvolution(ADAMW, EvolutionConfig(population_size=5, tournament_size=2), seed=0)
    (warm,) = evo.ask(1)
    evo.tell(warm.id, 0.5)
    scripted_mutations(monkeypatch, [undefined, scalar_update, no_gradient, new])
    (child,) = evo.ask(1)
    assert child.program == new and child.parent_id == warm.id
    assert evo.counters.generated == 4 and evo.counters.rejected == 3
    assert child.id == warm.id + 1                   # rejected children get no id
    assert all(m.candidate.program == ADAMW for m in evo.population)


def test_restart_from_the_best_after_patience_runs_out():
    evo = RegularizedEvolution(ADAMW, EvolutionConfig(population_size=6, tournament_size=2,
                                                      restart_patience=4), seed=3)
    (warm,) = evo.ask(1)
    evo.tell(warm.id, 1.0)
    worse = []
    while len(worse) < 4:
        for c in evo.ask(1):
            evo.tell(c.id, 0.1)
            worse.append(c)
        evo.take_cache_hits()
        if len(worse) == 3:
            assert evo.counters.restarts == 0
            assert any(m.candidate.id != warm.id for m in evo.population)
    assert evo.counters.restarts == 1
    assert len(evo.population) == 6 and all(m.candidate.id == warm.id for m in evo.population)
    assert evo.since_improvement == 0


# ---- don't pay twice: the paper's cache rate ------------------------------------------------

def test_most_of_5000_children_from_adamw_are_not_trained_anew():
    """Don't pay twice (docs/design.md, "Data flow"): >= 85% of children rejected or served from the
    cache (the paper: 89%)."""
    evo = RegularizedEvolution(ADAMW, EvolutionConfig(), seed=0)     # P = 100, T = 10
    while evo.counters.generated < 5000:
        for c in evo.ask(1):
            evo.tell(c.id, fake_fitness(c))
    c = evo.counters
    assert c.generated == (c.rejected + c.cache_hits + c.screened + c.evaluated - 1
                           + sum(map(len, evo.waiting.values())))
    rate = (c.rejected + c.cache_hits + c.screened) / c.generated
    print(f"\n5,000-child cache rate from AdamW: {rate:.1%} ({c})")
    assert rate >= 0.85
