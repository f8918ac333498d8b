"""Static analysis: abstract execution on kinds, liveness across steps, pruning, canonical form/hash."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import primitives
from evosearch import Program, ProgramError, reference
from evosearch.lang.canonical import canonical_form, canonical_hash
from evosearch.lang.kinds import check, kinds
from evosearch.lang.liveness import live_states, live_statements, needed_statements, pruning_reason, reads_input

SCALAR, TENSOR = primitives.SCALAR, primitives.TENSOR


def P(text: str) -> Program:
    return Program.parse(text)


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


# -- kinds (abstract execution) --------------------------------------------------------------------------

def test_kinds_tracks_scalars_and_tensors():
    prog = P("""
def train(w, g, m, lr, t):
    n = norm(g)
    s = lr * n
    c = cos(t)
    x = g * s
    k = clip_by_global_norm(g, c)
    d = dot(g, m)
    lr = lr * 0.5
    m = interp(g, m, 0.9)
    update = x + k
    return update, m
""")
    envs = kinds(prog)
    assert len(envs) == len(prog.statements) + 1
    assert envs[0] == {"w": TENSOR, "g": TENSOR, "m": TENSOR, "lr": SCALAR, "t": SCALAR}
    final = envs[-1]
    assert final["n"] == final["s"] == final["c"] == final["d"] == final["lr"] == SCALAR
    assert final["x"] == final["k"] == final["update"] == TENSOR


@pytest.mark.parametrize("body, words", [
    ("n = norm(lr)", ("scalar where a tensor is needed", "norm")),
    ("n = norm(2.0)", ("scalar where a tensor is needed", "norm")),
    ("n = dot(g, 0.5)", ("scalar where a tensor is needed", "argument 2", "dot")),
    ("n = cosine_sim(t, g)", ("scalar where a tensor is needed", "argument 1")),
    ("n = clip_by_global_norm(lr, g)", ("scalar where a tensor is needed", "clip_by_global_norm")),
    ("s = norm(g)\n    n = global_norm(s)", ("scalar where a tensor is needed", "global_norm")),
    ("n = interp(g, m)", ("interp takes 3 arguments, got 2",)),
    ("n = sign(q)", ("undefined variable 'q'",)),
])
def test_kinds_rejects_kind_errors(body, words):
    text = f"def train(w, g, m, lr, t):\n    {body}\n    update = g * lr\n    return update, m\n"
    with pytest.raises(ProgramError) as info:
        P(text)
    for word in words:
        assert word in info.value.reason


def test_kinds_rejects_scalar_outputs():
    with pytest.raises(ProgramError, match="update"):
        P("def train(w, g, lr):\n    update = lr * 2.0\n    return update\n")
    with pytest.raises(ProgramError, match="state 'm'"):
        P("def train(w, g, m, lr):\n    m = norm(g)\n    update = g * lr\n    return update, m\n")
    # a tensor made scalar by reassignment
    with pytest.raises(ProgramError, match="scalar where a tensor is needed"):
        P("def train(w, g, m, lr):\n    g = norm(g)\n    update = w * g\n    m = g * 0.9\n    return update, m\n")


def test_kinds_on_hand_built_programs():
    """The IR can be built without the parser (mutation, JSON); kinds() is what checks it."""
    from evosearch import Const, Statement, Var
    good = Program(("w", "g", "lr"), (Statement("u", "multiply", (Var("g"), Var("lr"))),), ("u",))
    assert kinds(good)[-1]["u"] == TENSOR
    for stmt, words in [
        (Statement("u", "softsign", (Var("g"),)), "unknown function"),
        (Statement("u", "abs", (Var("g"), Var("g"))), "takes 1 argument"),
        (Statement("u", "norm", (Const(1.0),)), "the number 1.0"),
        (Statement("pi", "abs", (Var("g"),)), "constant"),
    ]:
        with pytest.raises(ProgramError, match=words):
            kinds(Program(("w", "g", "lr"), (stmt,), ("u",)))
    with pytest.raises(ProgramError, match="declared twice"):
        kinds(Program(("w", "g", "g", "lr"), (), ("g", "g")))


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
