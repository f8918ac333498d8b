"""Symbolic form of a program: sympy expressions for the update and each new state value in terms
of the inputs (w, g, lr, t and the old state values). The guards are dropped
(``docs/design.md``, "The program language")."""

from __future__ import annotations

import sympy as sp

from evosearch.lang.ir import Const
from evosearch.lang.liveness import needed_statements
from evosearch.lang.program import Program


def expressions(prog: Program) -> dict[str, sp.Expr]:
    """``{"update": expr, "<state>": expr, ...}``; states are the values after one step."""
    env = {name: sp.Symbol(name, real=True) for name in prog.inputs}
    for i in needed_statements(prog):
        s = prog.statements[i]
        args = [(sp.Symbol(a.name) if a.name else sp.Float(a.value, 15)) if isinstance(a, Const)
                else env[a.name] for a in s.args]
        if any(isinstance(a, Const) and a.name == "pi" for a in s.args):
            args = [sp.pi if isinstance(a, Const) and a.name == "pi" else x for a, x in zip(s.args, args)]
        if any(isinstance(a, Const) and a.name == "e" for a in s.args):
            args = [sp.E if isinstance(a, Const) and a.name == "e" else x for a, x in zip(s.args, args)]
        env[s.target] = s.primitive.sympy(*args)
    out = {"update": env[prog.outputs[0]]}
    for name, value in zip(prog.state_names, prog.outputs[1:]):
        out[name] = env[value]
    return out


MATH_TEXT_STATEMENTS = 200     # beyond this many live statements, no one-line form (it would be
                               # unreadable, and sympy recurses as deep as the program is long)


def math_text(prog: Program) -> str:
    """One line per output, e.g. ``update = lr*(0.01*w + sign(0.1*g + 0.9*m))``; for a program of
    over ``MATH_TEXT_STATEMENTS`` live statements, a line that says so instead."""
    live = len(needed_statements(prog))
    if live > MATH_TEXT_STATEMENTS:
        return f"({live} live statements: too many to write as one expression)"
    lines = []
    for name, expr in expressions(prog).items():
        lines.append(f"{name} = {sp.sstr(expr, full_prec=False)}" if name == "update"
                     else f"{name} <- {sp.sstr(expr, full_prec=False)}")
    return "\n".join(lines)
