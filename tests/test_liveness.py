"""Liveness (``evosearch.lang.liveness``; README, "Analysis"): which statements and states are live
within one step and across steps, and the pruning rule that rejects an update which never reads the
gradient."""

from __future__ import annotations

from evosearch import reference
from evosearch.lang.canonical import canonical_hash
from evosearch.lang.liveness import live_states, live_statements, needed_statements, pruning_reason, reads_input
from programs import P


# -- liveness --------------------------------------------------------------------------------------------

def test_live_statements_within_one_step():
    prog = P("""
def train(w, g, lr):
    a = square(g)
    b = sqrt(a)
    a = abs(g)
    c = cos(w)
    update = a * lr
    return update
""")
    assert live_statements(prog) == (2, 4)
    assert needed_statements(prog) == (2, 4)


def test_cross_step_liveness_through_a_chain_of_states():
    # v feeds m, m feeds the update: v is live although the update never reads it directly
    prog = P("""
def train(w, g, m, v, lr):
    g2 = square(g)
    v = interp(g2, v, 0.999)
    m = m + v
    update = m * lr
    return update, m, v
""")
    assert live_statements(prog) == (0, 1, 2, 3)
    assert live_states(prog) == ("m", "v")


def test_cross_step_liveness_when_the_update_reads_the_old_state():
    # the update reads m's value from the previous step; m's new value is still live
    prog = P("""
def train(w, g, m, v, lr):
    update = m * lr
    m = interp(v, m, 0.9)
    v = interp(g, v, 0.9)
    return update, m, v
""")
    assert live_statements(prog) == (0, 1, 2)
    assert live_states(prog) == ("m", "v")
    assert reads_input(prog, "g")


def test_a_state_only_feeding_itself_is_dead():
    prog = P("""
def train(w, g, m, lr):
    m = interp(g, m, 0.9)
    m = m * 2.0
    update = g * lr
    return update, m
""")
    assert live_statements(prog) == (2,)
    assert live_states(prog) == ()
    # the executor still computes the state it must return
    assert needed_statements(prog) == (0, 1, 2)


def test_a_state_returned_unchanged_and_unread_is_dead():
    prog = P("def train(w, g, m, lr):\n    update = g * lr\n    return update, m\n")
    assert live_states(prog) == ()
    assert canonical_hash(prog) == canonical_hash(reference.load("sgd"))


def test_liveness_of_the_reference_programs():
    for name in reference.names():
        prog = reference.load(name)
        assert live_statements(prog) == tuple(range(len(prog.statements))), name
        assert live_states(prog) == prog.state_names, name


# -- pruning ---------------------------------------------------------------------------------------------

def test_pruning_flags_an_update_that_ignores_the_gradient():
    no_grad = P("def train(w, g, m, lr):\n    m = interp(g, m, 0.9)\n    update = w * lr\n    return update, m\n")
    assert "gradient" in pruning_reason(no_grad)
    dead_grad = P("def train(w, g, lr):\n    x = sign(g)\n    update = w * 0.01\n    return update\n")
    assert "gradient" in pruning_reason(dead_grad)


def test_pruning_keeps_programs_that_read_the_gradient_across_steps():
    # the update reads g only through the momentum of the previous step
    momentum = P("def train(w, g, m, lr):\n    update = m * lr\n    m = interp(g, m, 0.9)\n    return update, m\n")
    assert pruning_reason(momentum) is None
    for name in reference.names():
        assert pruning_reason(reference.load(name)) is None

