"""Simplification of programs. So far the exact structural steps: dead statements and dead state
variables are removed (the algebraic steps of issue 5 build on this).

Both steps are exact by construction: liveness (analysis.py) keeps every statement that can reach the
update at this step or a later one, so the update trajectory is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from .analysis import live_states, live_statements
from .program import Program


@dataclass(frozen=True)
class Simplification:
    program: Program
    steps: tuple[str, ...]        # what each step removed or rewrote


def remove_dead_code(prog: Program) -> Simplification:
    live = set(live_statements(prog))
    states = live_states(prog)
    steps = [f"removed dead statement `{s}`" for i, s in enumerate(prog.statements) if i not in live]
    dropped = [s for s in prog.state_names if s not in states]
    steps += [f"removed dead state variable {s!r} (the update never reads it)" for s in dropped]
    inputs = tuple(n for n in prog.inputs if n not in dropped)
    outputs = (prog.outputs[0],) + tuple(o for s, o in zip(prog.state_names, prog.outputs[1:]) if s in states)
    statements = tuple(s for i, s in enumerate(prog.statements) if i in live)
    return Simplification(Program(inputs, statements, outputs, prog.name), tuple(steps))


def simplify_steps(prog: Program) -> Simplification:
    return remove_dead_code(prog)


def simplify(prog: Program) -> Program:
    """An equivalent program without dead code (same update trajectory)."""
    return simplify_steps(prog).program
