"""The canonical form and hash (``evosearch.lang.canonical``; docs/design.md, "The program
language"): equal for programs that differ only in variable names, dead code, unread states or the
order of commutative arguments; different otherwise; and the canonical form is a valid program that
keeps exactly the live statements."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import primitives
from evosearch import Program, reference
from evosearch.lang.canonical import canonical_form, canonical_hash
from evosearch.lang.kinds import check
from evosearch.lang.liveness import live_states, live_statements, needed_statements, pruning_reason, reads_input
from programs import P

ADAMW = reference.load("adamw")
LION = reference.load("lion")


# -- canonical hash: equal ---------------------------------------------------------------------------

def test_hash_is_a_stable_hex_digest():
    h = canonical_hash(LION)
    assert isinstance(h, str) and len(h) == 32 and int(h, 16) >= 0
    assert LION.canonical_hash() == h == canonical_hash(P(str(LION)))


def test_hash_equal_under_variable_renaming():
    renamed = P("""
def train(w, g, mom, lr):
    u = interp(g, mom, 0.9)
    u = sign(u)
    mom = interp(g, mom, 0.99)
    decay = w * 0.01
    u = u + decay
    u = u * lr
    return u, mom
""")
    assert renamed != LION
    assert canonical_hash(renamed) == canonical_hash(LION)
    assert canonical_form(renamed) == canonical_form(LION)


def test_hash_equal_under_renaming_and_reordering_of_states():
    swapped = P("""
def train(w, g, second, first, lr):
    g2 = square(g)
    first = interp(g, first, 0.9)
    second = interp(g2, second, 0.999)
    sqrt_v = sqrt(second)
    update = first / sqrt_v
    wd = w * 0.01
    update = update + wd
    lr = lr * 0.001
    update = update * lr
    return update, second, first
""")
    assert canonical_hash(swapped) == canonical_hash(ADAMW)


def test_hash_equal_with_an_unread_result():
    dead = P("""
def train(w, g, m, lr):
    update = interp(g, m, 0.9)
    junk = cosh(update)
    update = sign(update)
    m = interp(g, m, 0.99)
    junk2 = junk * lr
    wd = w * 0.01
    update = update + wd
    update = update * lr
    return update, m
""")
    assert live_statements(dead) == (0, 2, 3, 5, 6, 7)
    assert canonical_hash(dead) == canonical_hash(LION)


def test_hash_equal_with_a_value_overwritten_before_it_is_read():
    overwritten = P("""
def train(w, g, m, lr):
    update = exp(g)
    update = interp(g, m, 0.9)
    update = sign(update)
    m = interp(g, m, 0.99)
    wd = square(g)
    wd = w * 0.01
    update = update + wd
    update = update * lr
    return update, m
""")
    assert live_statements(overwritten) == (1, 2, 3, 5, 6, 7)
    assert canonical_hash(overwritten) == canonical_hash(LION)


def test_hash_equal_with_a_state_the_update_never_reads():
    extra_state = P("""
def train(w, g, m, junk, lr):
    update = interp(g, m, 0.9)
    update = sign(update)
    m = interp(g, m, 0.99)
    junk = junk + update
    junk = junk * m
    wd = w * 0.01
    update = update + wd
    update = update * lr
    return update, m, junk
""")
    assert live_states(extra_state) == ("m",)
    assert 3 not in live_statements(extra_state) and 4 not in live_statements(extra_state)
    assert canonical_hash(extra_state) == canonical_hash(LION)


def test_hash_equal_with_dead_states_that_feed_each_other_across_steps():
    # a and b feed each other (and read m), but nothing flows from them into the update
    chain = P("""
def train(w, g, a, m, b, lr, t):
    update = interp(g, m, 0.9)
    update = sign(update)
    x = a * b
    m = interp(g, m, 0.99)
    a = b + m
    b = x * t
    wd = w * 0.01
    update = update + wd
    update = update * lr
    return update, a, m, b
""")
    assert live_states(chain) == ("m",)
    assert canonical_form(chain).inputs == ("w", "g", "s0", "lr")  # t is dropped too
    assert canonical_hash(chain) == canonical_hash(LION)


def test_hash_equal_under_swapped_arguments_of_a_commutative_op():
    a = P("def train(w, g, m, lr):\n    m = m * 0.9\n    m = m + g\n    update = m * lr\n    return update, m\n")
    b = P("def train(w, g, m, lr):\n    m = 0.9 * m\n    m = g + m\n    update = lr * m\n    return update, m\n")
    assert canonical_hash(a) == canonical_hash(b) == canonical_hash(reference.load("sgd_momentum"))


def test_canonical_form_is_a_valid_program():
    for name in reference.names():
        prog = reference.load(name)
        canon = canonical_form(prog)
        check(canon)
        assert P(str(canon)) == canon
        assert canonical_form(canon) == canon
        assert len(canon.statements) <= len(prog.statements)


# -- canonical hash: different --------------------------------------------------------------------

def _lion_with(old: str, new: str) -> Program:
    text = str(LION)
    assert old in text
    return P(text.replace(old, new, 1))


@pytest.mark.parametrize("old, new", [
    ("m = interp(g, m, 0.99)", "m = interp(g, m, 0.999)"),   # a different constant
    ("wd = w * 0.01", "wd = w * 0.1"),
    ("update = sign(update)", "update = tanh(update)"),      # a different function
    ("wd = w * 0.01", "wd = w / 0.01"),                      # a different operator
    ("update = interp(g, m, 0.9)", "update = interp(m, g, 0.9)"),  # swapped non-commutative arguments
    ("update = update * lr", "update = update * e"),          # a named constant instead of an input
    ("update = update + wd", "update = update - wd"),
])
def test_hash_differs_for_different_programs(old, new):
    assert canonical_hash(_lion_with(old, new)) != canonical_hash(LION)


def test_hash_differs_for_swapped_arguments_of_subtract_and_divide():
    base = "def train(w, g, m, lr):\n    m = interp(g, m, 0.9)\n    x = {}\n    update = x * lr\n    return update, m\n"
    hashes = {canonical_hash(P(base.format(rhs))) for rhs in ("g - m", "m - g", "g / m", "m / g", "g * m",
                                                                "power(g, m)", "power(m, g)", "clip(g, m)",
                                                                "clip(m, g)")}
    assert len(hashes) == 9


def test_hash_differs_when_a_state_feeds_the_update_or_not():
    live = P("def train(w, g, m, lr):\n    m = m + g\n    update = m * lr\n    return update, m\n")
    dead = P("def train(w, g, m, lr):\n    m = m + g\n    update = g * lr\n    return update, m\n")
    assert canonical_hash(live) != canonical_hash(dead)
    assert canonical_hash(dead) == canonical_hash(reference.load("sgd"))


def test_hash_differs_between_reference_programs():
    hashes = {name: canonical_hash(reference.load(name)) for name in reference.names()}
    assert len(set(hashes.values())) == len(hashes)


# -- properties over random programs ----------------------------------------------------------------

TENSOR_UNARY = [n for n in primitives.names()
                if primitives.get(n).arity == 1 and primitives.get(n).reduces is None
                and not primitives.get(n).infix]


@st.composite
def random_programs(draw):
    """Random well-kinded programs over tensors, with states: enough structure for liveness."""
    states = draw(st.lists(st.sampled_from(["m", "v", "s"]), max_size=3, unique=True))
    names = ["w", "g", *states]
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        target = draw(st.sampled_from(["a", "b", "c", "update", *states]))
        kind = draw(st.integers(0, 2))
        if kind == 0:
            rhs = f"{draw(st.sampled_from(TENSOR_UNARY))}({draw(st.sampled_from(names))})"
        elif kind == 1:
            op = draw(st.sampled_from(["+", "-", "*", "/"]))
            rhs = f"{draw(st.sampled_from(names))} {op} {draw(st.sampled_from(names + ['lr', '0.5']))}"
        else:
            rhs = f"interp({draw(st.sampled_from(names))}, {draw(st.sampled_from(names))}, 0.9)"
        lines.append(f"    {target} = {rhs}")
        if target not in names:
            names.append(target)
    outputs = [draw(st.sampled_from(names)) for _ in range(1 + len(states))]
    text = (f"def train({', '.join(['w', 'g', *states, 'lr'])}):\n" + "\n".join(lines)
            + f"\n    return {', '.join(outputs)}\n")
    return P(text)


def _rename(prog: Program, rng: random.Random) -> Program:
    """A consistent renaming of every state and every statement target (inputs w, g, lr fixed)."""
    old = [n for n in dict.fromkeys(prog.state_names + tuple(s.target for s in prog.statements))
           if n not in ("w", "g", "lr")]
    new = [f"r{k}_{rng.randrange(1000)}" for k in range(len(old))]
    mapping = dict(zip(old, new))
    text = str(prog)
    return P(re.sub(r"\b[A-Za-z_]\w*\b", lambda m: mapping.get(m.group(), m.group()), text))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_programs(), st.integers(0, 2**32 - 1))
def test_hash_invariant_under_renaming_and_dead_code(prog, seed):
    rng = random.Random(seed)
    h = canonical_hash(prog)
    assert canonical_hash(_rename(prog, rng)) == h
    # insert a dead statement (its target is fresh and never read) anywhere in the body
    lines = str(prog).splitlines()
    at = rng.randrange(1, len(lines))
    lines.insert(at, f"    dead_{rng.randrange(100)} = exp({rng.choice(['g', 'w', 'lr'])})")
    assert canonical_hash(P("\n".join(lines) + "\n")) == h
    # add an extra state that reads everything but is never read
    extra = str(prog).replace("lr):", "junk, lr):", 1)
    extra = extra.replace("    return ", "    junk = junk + g\n    return ", 1)
    extra = extra.rstrip("\n") + ", junk\n"
    assert canonical_hash(P(extra)) == h


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_programs())
def test_canonical_form_keeps_exactly_the_live_statements(prog):
    canon = canonical_form(prog)
    assert len(canon.statements) == len(live_statements(prog))
    assert len(canon.state_names) == len(live_states(prog))
    assert canonical_form(canon) == canon
    assert live_statements(canon) == tuple(range(len(canon.statements)))
    assert set(live_statements(prog)) <= set(needed_statements(prog))
    assert (pruning_reason(prog) is None) == reads_input(prog, "g")
