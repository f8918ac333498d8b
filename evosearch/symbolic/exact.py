"""Exact simplification of programs (``simplify``): each step is checked by running the program before and
after it on random problems and comparing the update trajectories (at most 1e-6 relative, which
allows for the 1e-8 guards); a step that fails the check is not taken.

Steps: (1) dead statements and dead state variables are removed (exact by construction); (2) the
symbolic form (sympy) is simplified modulo the guards (``algebra.py``: sign rules, constant
folding, like terms, merged state recurrences); (3) a short program is rebuilt from the simplified
expressions (``sympy.cse``, ``rebuild.py``), and kept if it is no longer than what step (1)
gave; (4) a statement whose value is constant on the verification problems to within the
tolerance is read as a literal where the program stays equivalent (a searched program's factor
``power(1.00000001, t)``); a literal to a variable power that is not constant there is reported, so
that a factor that only looks constant in training (``power(0.50019, sqrt_v)``) is explained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from evosearch.lang.errors import ProgramError
from evosearch.lang.kinds import check
from evosearch.lang.ir import STEP, Const, Statement, Var
from evosearch.lang.liveness import dataflow, live_statements, live_states
from evosearch.lang.program import Program

from .algebra import _float_tidy, simplify_expression
from .forms import expressions
from .rebuild import Unsupported, rebuild
from .verify import max_relative_difference, values_along

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
        return Simplification(_fold_constant_values(current, steps), tuple(steps), exprs)
    diff = max_relative_difference(current, rebuilt)
    if diff > RTOL:
        steps.append(f"algebraic rewrite rejected: trajectories differ by {diff:.2g} relative")
        return Simplification(_fold_constant_values(current, steps), tuple(steps), exprs)
    if len(rebuilt.statements) > len(current.statements):
        steps.append(f"kept the program: the rebuilt form has {len(rebuilt.statements)} statements, "
                     f"not fewer than {len(current.statements)}")
        return Simplification(_fold_constant_values(current, steps), tuple(steps), exprs)
    math = "; ".join(f"{k} = {sp.sstr(v, full_prec=False)}" for k, v in exprs.items())
    steps.append(f"rewrote algebraically ({len(current.statements)} -> {len(rebuilt.statements)} statements, "
                 f"trajectories agree to {diff:.1g}): {math}")
    return Simplification(_fold_constant_values(rebuilt, steps), tuple(steps), exprs)


NEAR_CONSTANT = 1e-2    # a value whose spread is below this (relative) is a candidate to fold


def _fold_constant_values(prog: Program, steps: list[str]) -> Program:
    """Statements whose value is nearly constant on the verification problems (a searched
    program's ``k = power(0.50019, sqrt_v)``): the statements that read the value read its mean as
    a literal instead, where the program then stays equivalent (trajectories agree to ``RTOL``);
    otherwise a step says why the statement stays."""
    traces = [t for seed in (0, 1, 2) for t in values_along(prog, seed)]
    flow = dataflow(prog)
    for i in live_statements(prog):
        try:
            values = np.concatenate([np.ravel(np.asarray(t[i], dtype=float)) for t in traces])
        except (KeyError, TypeError, ValueError):
            continue
        mean, low, high = float(np.mean(values)), float(np.min(values)), float(np.max(values))
        s = prog.statements[i]
        if not (np.all(np.isfinite(values)) and mean != 0 and high - low <= NEAR_CONSTANT * abs(mean)):
            if (s.op == "power" and isinstance(s.args[0], Const) and s.args[1] != Var(STEP)   # not beta ** t
                    and np.all(np.isfinite(values))):
                # a literal to a variable power reads as a constant factor where the exponent is small
                steps.append(f"kept `{s}`: not a constant, it lies between {low:.6g} and {high:.6g} on the "
                             f"verification problems (near {s.args[0]} ** 0 = 1 only where the exponent is small)")
            continue
        if not any(isinstance(a, Var) for a in s.args):
            continue                      # already a constant expression of literals
        readers = [k for k, reads in enumerate(flow.reads) if ("s", i) in reads]
        folded = _read_as_literal(prog, flow, i, round(mean, 12))
        if folded is None or ("s", i) in flow.returns:
            steps.append(f"kept `{s}`: nearly constant (between {low:.6g} and {high:.6g}) but an output "
                         f"or a tensor argument needs it as a variable")
            continue
        try:
            check(folded)
        except ProgramError as exc:
            steps.append(f"kept `{s}`: nearly constant (between {low:.6g} and {high:.6g}), but {exc.reason}")
            continue
        folded = remove_dead_code(folded).program
        diff = max_relative_difference(prog, folded)
        if diff > RTOL:
            steps.append(f"kept `{s}`: nearly constant (between {low:.6g} and {high:.6g} on the verification "
                         f"problems) but not constant: reading it as {mean:.6g} changes the updates by "
                         f"{diff:.2g}, more than {RTOL:g}")
            continue
        steps.append(f"folded `{s}` into the literal {round(mean, 12):.12g} in {len(readers)} statement(s) "
                     f"(it lies between {low:.6g} and {high:.6g}; trajectories agree to {diff:.1g})")
        return _fold_constant_values(folded, steps)       # indices changed: look again
    return prog


def _read_as_literal(prog: Program, flow, i: int, value: float) -> Program | None:
    """``prog`` with every read of statement i's value replaced by the literal (None if none)."""
    statements = list(prog.statements)
    changed = False
    for k, s in enumerate(prog.statements):
        defs = iter(flow.reads[k])
        args = []
        for a in s.args:
            if isinstance(a, Var) and next(defs) == ("s", i):
                args.append(Const(value + 0.0))
                changed = True
            else:
                args.append(a)
        statements[k] = Statement(s.target, s.op, tuple(args))
    return Program(prog.inputs, tuple(statements), prog.outputs, prog.name) if changed else None


def simplify(prog: Program) -> Program:
    """An equivalent, shorter program (see the module docstring)."""
    return simplify_steps(prog).program
