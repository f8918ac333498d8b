"""Exact simplification of programs (``simplify``): each step is checked by running the program before and
after it on random problems and comparing the update trajectories (at most 1e-6 relative, which
allows for the 1e-8 guards); a step that fails the check is not taken.

Steps: (1) dead statements and dead state variables are removed (exact by construction); (2) the
symbolic form (sympy) is simplified modulo the guards (``algebra.py``: sign rules, constant
folding, like terms, merged state recurrences); (3) a short program is rebuilt from the simplified
expressions (``sympy.cse``, ``rebuild.py``), and kept if it is no longer than what step (1)
gave.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from evosearch.lang.errors import ProgramError
from evosearch.lang.kinds import check
from evosearch.lang.liveness import live_statements, live_states
from evosearch.lang.program import Program

from .algebra import _float_tidy, simplify_expression
from .forms import expressions
from .rebuild import Unsupported, rebuild
from .verify import max_relative_difference

RTOL = 1e-6


@dataclass(frozen=True)
class Simplification:
    """A simplified program, what each step did, and its simplified symbolic form."""
    program: Program
    steps: tuple[str, ...]             # what each step removed or rewrote
    expressions: dict | None = None    # the simplified symbolic form ({"update": ..., state: ...})


def remove_dead_code(prog: Program) -> Simplification:
    """The program without dead statements and dead state variables (exact by construction)."""
    live = set(live_statements(prog))
    states = live_states(prog)
    steps = [f"removed dead statement `{s}`" for i, s in enumerate(prog.statements) if i not in live]
    dropped = [s for s in prog.state_names if s not in states]
    steps += [f"removed dead state variable {s!r} (the update never reads it)" for s in dropped]
    inputs = tuple(n for n in prog.inputs if n not in dropped)
    outputs = (prog.outputs[0],) + tuple(o for s, o in zip(prog.state_names, prog.outputs[1:]) if s in states)
    statements = tuple(s for i, s in enumerate(prog.statements) if i in live)
    return Simplification(Program(inputs, statements, outputs, prog.name), tuple(steps))


def simplified_expressions(prog: Program) -> dict[str, sp.Expr]:
    """The simplified symbolic form of ``prog``: ``{"update": expr, state: expr}``."""
    return _simplified_forms(prog)[0]


def _simplified_forms(prog: Program) -> tuple[dict[str, sp.Expr], dict[str, sp.Expr]]:
    """(with the update's scale factored out, without): factoring reads better but can hide a
    state's moving average inside the update from cse (lr*(0.1 g + 0.9 m) -> 0.9 lr*(0.11 g + m))."""
    symbols = [sp.Symbol(n, real=True) for n in prog.inputs]
    plain = {key: simplify_expression(expr, symbols) for key, expr in expressions(prog).items()}
    factored = dict(plain, update=_float_tidy(_factor_scale(sp.factor_terms(plain["update"]))))
    return factored, plain


def _factor_scale(e: sp.Expr) -> sp.Expr:
    """Pull the largest numeric coefficient out of a sum (``lr*(9.2e-5*w + 2e-4*sign(.))`` ->
    ``2e-4*lr*(0.46*w + sign(.))``), so that a learning-rate scale reads as one factor."""
    def pull(add: sp.Add) -> sp.Expr:
        coeffs = [t.as_coeff_Mul()[0] for t in add.args]
        if not all(c.is_number for c in coeffs):
            return add
        big = max(coeffs, key=lambda c: abs(float(c)))
        if big == 1 or big == 0:
            return add
        return sp.Mul(big, sp.expand(add / big), evaluate=False)
    if e.is_Add:
        return pull(e)
    if e.is_Mul:
        return sp.Mul(*[pull(f) if f.is_Add else f for f in e.args])
    return e


def simplify_steps(prog: Program) -> Simplification:
    """Simplify ``prog`` by the steps of the module docstring, each verified numerically; what each
    step did is in ``steps``."""
    dead = remove_dead_code(prog)
    current, steps = dead.program, list(dead.steps)
    try:
        exprs, plain = _simplified_forms(current)
    except Exception as exc:  # noqa: BLE001 - sympy may fail on exotic programs; keep what we have
        return Simplification(current, tuple(steps + [f"symbolic step skipped: {type(exc).__name__}"]))
    rebuilt, failure = None, None
    for form in (exprs, plain) if plain != exprs else (exprs,):
        try:
            candidate = rebuild(current, form)
            check(candidate)
        except (Unsupported, ProgramError) as exc:
            failure = failure or exc
            continue
        if rebuilt is None or len(candidate.statements) < len(rebuilt.statements):
            rebuilt = candidate
    if rebuilt is None:
        steps.append(f"kept the program as is: {failure}")
        return Simplification(current, tuple(steps), exprs)
    diff = max_relative_difference(current, rebuilt)
    if diff > RTOL:
        steps.append(f"algebraic rewrite rejected: trajectories differ by {diff:.2g} relative")
        return Simplification(current, tuple(steps), exprs)
    if len(rebuilt.statements) > len(current.statements):
        steps.append(f"kept the program: the rebuilt form has {len(rebuilt.statements)} statements, "
                     f"not fewer than {len(current.statements)}")
        return Simplification(current, tuple(steps), exprs)
    math = "; ".join(f"{k} = {sp.sstr(v, full_prec=False)}" for k, v in exprs.items())
    steps.append(f"rewrote algebraically ({len(current.statements)} -> {len(rebuilt.statements)} statements, "
                 f"trajectories agree to {diff:.1g}): {math}")
    return Simplification(rebuilt, tuple(steps), exprs)


def simplify(prog: Program) -> Program:
    """An equivalent, shorter program (see the module docstring)."""
    return simplify_steps(prog).program
