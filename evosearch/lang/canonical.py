"""Canonical form and hash: programs equal under renaming, dead code and the order of commutative
arguments get the same text, and so the same hash (the search's first, cheapest cache key)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING

from .ir import GRAD, LR, STEP, WEIGHT, Statement, Var
from .liveness import dataflow, live_statements, live_states, reads_input

if TYPE_CHECKING:
    from .program import Program


def canonical_form(prog: Program) -> Program:
    """The program with dead statements and dead states removed and every variable renamed by
    order of first use (inputs keep their fixed names; states become s0, s1, ...; statement
    results v0, v1, ...). Arguments of commutative primitives are sorted."""
    flow = dataflow(prog)
    live = live_statements(prog)
    states = live_states(prog)
    state_name: dict[str, str] = {}

    def name_of(d: tuple) -> str:
        if d[0] == "s":
            return f"v{new_index[d[1]]}"
        if d[1] in prog.state_names:
            if d[1] not in state_name:
                state_name[d[1]] = f"s{len(state_name)}"
            return state_name[d[1]]
        return d[1]

    new_index = {i: k for k, i in enumerate(live)}
    statements = []
    for i in live:
        s = prog.statements[i]
        defs = iter(flow.reads[i])
        args = [Var(name_of(next(defs))) if isinstance(a, Var) else a for a in s.args]
        if s.primitive.commutative:
            args.sort(key=str)
        statements.append(Statement(f"v{new_index[i]}", s.op, tuple(args)))
    outs = dict(zip(prog.state_names, flow.returns[1:]))
    update = name_of(flow.returns[0])
    for s in states:        # states read nowhere but in the return still get a name
        name_of(("in", s))
    order = sorted(states, key=lambda s: int(state_name[s][1:]))
    outputs = (update,) + tuple(name_of(outs[s]) for s in order)
    inputs = (WEIGHT, GRAD) + tuple(state_name[s] for s in order) + (LR,)
    if reads_input(prog, STEP):
        inputs += (STEP,)
    return replace(prog, inputs=inputs, statements=tuple(statements), outputs=outputs, name="train")


@lru_cache(maxsize=4096)
def canonical_hash(prog: Program) -> str:
    """Equal for programs that differ only in variable names or in statements that cannot affect
    the update."""
    return hashlib.blake2b(str(canonical_form(prog)).encode(), digest_size=16).hexdigest()
