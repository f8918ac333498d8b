"""Abstract execution on kinds (``evosearch.lang.kinds``; docs/design.md, "The program language"):
every value is a tensor or a scalar, and a scalar where a tensor is needed is a ProgramError, on
parsed and on hand-built programs."""

from __future__ import annotations

import pytest

import primitives
from evosearch import Program, ProgramError
from evosearch.lang.kinds import kinds
from programs import P

SCALAR, TENSOR = primitives.SCALAR, primitives.TENSOR


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



def test_kinds_before_each_statement():
    """Entry i is what statement i reads: a redefinition counts from the next statement on, and the
    names come in the order a table built statement by statement holds them (mutation draws from it)."""
    prog = P("""
def train(w, g, m, lr):
    n = norm(g)
    g = g * n
    n = g * 2.0
    lr = lr * n
    update = n * 0.5
    return update, m
""")
    envs = kinds(prog)
    assert envs[1]["n"] == SCALAR and envs[1]["g"] == TENSOR
    assert envs[2]["n"] == SCALAR and envs[3]["n"] == TENSOR
    assert envs[3]["lr"] == SCALAR and envs[4]["lr"] == TENSOR
    assert "update" not in envs[4] and envs[5]["update"] == TENSOR
    assert list(envs[3]) == ["w", "g", "m", "lr", "n"]
    assert list(envs[-1]) == ["w", "g", "m", "lr", "n", "update"]
    assert envs[-1] == envs[len(prog.statements)] == dict(envs[-1].items())
    with pytest.raises(KeyError):
        envs[0]["n"]
    with pytest.raises(IndexError):
        envs[len(envs)]
