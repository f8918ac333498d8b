"""Liveness across steps, on the program's dataflow in SSA form.

A statement is live if its value can reach the update at this step or a later one (through the
state variables); a state variable is live only if the update reads it, directly or through other
live states. Dead code and dead states are what canonical forms and simplification remove.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from .ir import GRAD

if TYPE_CHECKING:
    from .program import Program


@dataclass(frozen=True)
class Dataflow:
    """Definitions in SSA form: ``reads[i]`` are the definitions statement i reads; a definition is
    ``("in", name)`` for an input or ``("s", i)`` for statement i. ``returns[k]`` defines output k."""

    reads: tuple[tuple[tuple, ...], ...]
    returns: tuple[tuple, ...]


@lru_cache(maxsize=4096)
def dataflow(prog: Program) -> Dataflow:
    """Which definition each statement argument and each output reads."""
    env = {name: ("in", name) for name in prog.inputs}
    reads = []
    for i, s in enumerate(prog.statements):
        reads.append(tuple(env[n] for n in s.reads()))
        env[s.target] = ("s", i)
    return Dataflow(tuple(reads), tuple(env[n] for n in prog.outputs))


def _reach(prog: Program, flow: Dataflow, roots: list[tuple], across_steps: bool) -> set:
    state_out = dict(zip(prog.state_names, flow.returns[1:]))
    seen, stack = set(), list(roots)
    while stack:
        d = stack.pop()
        if d in seen:
            continue
        seen.add(d)
        if d[0] == "s":
            stack.extend(flow.reads[d[1]])
        elif across_steps and d[1] in state_out:
            stack.append(state_out[d[1]])
    return seen


@lru_cache(maxsize=4096)
def live_statements(prog: Program) -> tuple[int, ...]:
    """Indices of the statements that can affect the update, at this step or any later one.
    Dead: statements whose value never reaches an output, values overwritten before they are read,
    and whole state variables whose value never reaches the update."""
    flow = dataflow(prog)
    seen = _reach(prog, flow, [flow.returns[0]], across_steps=True)
    return tuple(i for i in range(len(prog.statements)) if ("s", i) in seen)


@lru_cache(maxsize=4096)
def live_states(prog: Program) -> tuple[str, ...]:
    """The state variables whose old value can reach the update (at some later step)."""
    flow = dataflow(prog)
    seen = _reach(prog, flow, [flow.returns[0]], across_steps=True)
    return tuple(s for s in prog.state_names if ("in", s) in seen)


@lru_cache(maxsize=4096)
def needed_statements(prog: Program) -> tuple[int, ...]:
    """Statements needed to compute every output of one step (what an executor must run)."""
    flow = dataflow(prog)
    seen = _reach(prog, flow, list(flow.returns), across_steps=False)
    return tuple(i for i in range(len(prog.statements)) if ("s", i) in seen)


def reads_input(prog: Program, name: str) -> bool:
    """Whether the input ``name`` can reach the update, at this step or a later one."""
    flow = dataflow(prog)
    return ("in", name) in _reach(prog, flow, [flow.returns[0]], across_steps=True)


@lru_cache(maxsize=4096)
def pruning_reason(prog: Program) -> str | None:
    """Why a well-kinded program is not worth training (None if it is): an update that never reads
    the gradient cannot learn; one that never reads lr ignores the schedule."""
    if not reads_input(prog, GRAD):
        return "the update does not depend on the gradient"
    return None
