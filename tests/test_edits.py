"""Dead edits (``evosearch/lang/edits.py``): a child that differs from its parent only in dead code is
judged as the parent. Every child ``dead_edit`` accepts must pass the full ``check`` and have the
parent's canonical hash, live states and pruning verdict (on thousands of mutation-walk children of
bloated programs), hand-built edits it must refuse, and a search that gives the same children with it
as without it."""

from __future__ import annotations

import random

import pytest

from evosearch import Program, reference
from evosearch.lang.canonical import canonical_hash
from evosearch.lang.edits import dead_edit
from evosearch.lang.errors import ProgramError
from evosearch.lang.kinds import check
from evosearch.lang.liveness import live_states, pruning_reason
from evosearch.search import evolution
from evosearch.search.evolution import EvolutionConfig, RegularizedEvolution
from evosearch.search.mutation import MutationConfig, mutate
from test_evolution import drive

ADAMW = reference.load("adamw")

# statement 0 is dead (u is written again before it is read), and so are d, q and k (k a scalar)
BLOATED = Program.parse("""
def train(w, g, m, v, lr):
    u = g * g
    m = interp(g, m, 0.9)
    d = sign(g)
    q = d * 2.0
    k = lr * 3.0
    h = g * g
    v = interp(h, v, 0.999)
    s = sqrt(v)
    s = s + 1e-8
    u = m / s
    u = u * lr
    return u, m, v
""")


def _valid(prog: Program) -> bool:
    try:
        check(prog)
        return True
    except ProgramError:
        return False


def _walk_pairs(n: int, seed: int, starts: list[Program], config: MutationConfig):
    """(parent, child) pairs from a random walk of single mutations through valid programs."""
    rng, parents = random.Random(seed), list(starts)
    for _ in range(n):
        parent = rng.choice(parents)
        child, _ = mutate(parent, rng, config)
        yield parent, child
        if _valid(child):
            parents.append(child)
            if len(parents) > 60:
                parents.pop(0)


def test_every_accepted_dead_edit_is_judged_as_its_parent_would_be():
    kinds_seen, accepted = set(), 0
    for parent, child in _walk_pairs(4000, seed=0, starts=[ADAMW, BLOATED], config=MutationConfig()):
        if not dead_edit(parent, child):
            continue
        accepted += 1
        check(child)                          # raises if the edit was not well-kinded
        assert canonical_hash(child) == canonical_hash(parent), (str(parent), str(child))
        assert live_states(child) == live_states(parent)
        assert pruning_reason(child) == pruning_reason(parent)
        kinds_seen.add(len(child.statements) - len(parent.statements))
    # not vacuous: a good share of children are dead edits, of all three shapes
    assert accepted >= 600, accepted
    assert kinds_seen == {-1, 0, 1}


@pytest.mark.parametrize("config, least", [(MutationConfig(wrap=0.5, wrap_read=1.0), 100),
                                           # live statements only: what is left are dead insertions
                                           (MutationConfig(effective=True, wrap=0.5, wrap_read=1.0), 20),
                                           (MutationConfig(max_statements=12), 100)],
                         ids=["wraps", "effective", "short"])
def test_dead_edits_of_every_reference_program_under_other_mutation_settings(config, least):
    accepted = 0
    starts = [reference.load(name) for name in reference.names()]
    for parent, child in _walk_pairs(1500, seed=1, starts=starts, config=config):
        if dead_edit(parent, child):
            accepted += 1
            check(child)
            assert canonical_hash(child) == canonical_hash(parent), (str(parent), str(child))
            assert live_states(child) == live_states(parent) and pruning_reason(child) == pruning_reason(parent)
    assert accepted >= least, accepted


def _edited(old: str, new: str) -> Program:
    text = str(BLOATED)
    assert old in text
    return Program.parse(text.replace(old, new))


def _without(index: int) -> Program:
    """BLOATED less one statement, unchecked (it may be invalid)."""
    s = BLOATED.statements
    return Program(BLOATED.inputs, s[:index] + s[index + 1:], BLOATED.outputs, BLOATED.name)


def test_edits_that_reach_the_update_or_change_a_kind_are_refused():
    # changed in place
    assert dead_edit(BLOATED, _edited("q = d * 2.0", "q = d * 3.0"))            # dead, same kind
    assert dead_edit(BLOATED, _edited("q = d * 2.0", "q = sign(g)"))
    assert not dead_edit(BLOATED, _edited("m = interp(g, m, 0.9)", "m = interp(g, m, 0.8)"))  # live
    assert not dead_edit(BLOATED, _edited("k = lr * 3.0", "k = g * 3.0"))      # scalar -> tensor
    # inserted: dead only if nothing later reads its target and it is not returned
    assert dead_edit(BLOATED, _edited("    u = u * lr\n", "    z = g * 2.0\n    u = u * lr\n"))
    assert not dead_edit(BLOATED, _edited("    d = sign(g)\n", "    d = sign(g)\n    m = sign(g)\n"))  # m read later
    assert not dead_edit(BLOATED, _edited("    u = u * lr\n", "    u = u * lr\n    u = u * lr\n"))  # returned
    assert dead_edit(BLOATED, _edited("    d = sign(g)\n", "    d = g * 3.0\n    d = sign(g)\n"))  # assigned again
    # deleted: dead, and nothing later reads its target, or it keeps an earlier value of the same kind
    assert dead_edit(BLOATED, _without(3))                 # q = d * 2.0
    assert dead_edit(BLOATED, _without(4))                 # k = lr * 3.0
    assert dead_edit(BLOATED, _without(0))                 # u = g * g: u is assigned again before a read
    assert not dead_edit(BLOATED, _without(2))             # d = sign(g): q would read an undefined d
    assert not _valid(_without(2))
    assert not dead_edit(BLOATED, _without(1))             # m = interp(g, m, 0.9): live


def test_a_search_gives_the_same_children_with_dead_edits_as_without(monkeypatch):
    cfg = EvolutionConfig(population_size=20, tournament_size=4)
    with_edits = drive(RegularizedEvolution(ADAMW, cfg, seed=3), steps=40)
    judged = []
    real = evolution.dead_edit

    def counting(parent, child):
        judged.append(real(parent, child))
        return False
    monkeypatch.setattr(evolution, "dead_edit", counting)
    without = drive(RegularizedEvolution(ADAMW, cfg, seed=3), steps=40)
    assert with_edits == without
    assert sum(judged) >= 30, sum(judged)      # the fast path was taken in the first run
