"""Static analysis of programs: abstract execution (kinds), liveness, canonical form and hash.

Abstract execution runs a program on kinds instead of values (tensor or scalar) and rejects programs
that cannot run before anything is trained (Chen et al. 2023, Sec. 2.2: "abstract execution").
Liveness is computed across steps: a state variable is live only if the update reads it, directly or
through other live states, at some later step.
"""

from __future__ import annotations

import hashlib
import keyword
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import primitives
from primitives import SCALAR, TENSOR

from .errors import ProgramError
from .program import GRAD, LR, STEP, WEIGHT, Const, Program, Statement, Var

INPUT_KINDS = {WEIGHT: TENSOR, GRAD: TENSOR, LR: SCALAR, STEP: SCALAR}


def kinds(prog: Program, lines: tuple[int, ...] | None = None) -> list[dict[str, str]]:
    """Abstract execution: the kind of every defined variable before each statement and at the
    return (``len(prog.statements) + 1`` environments). Raises ProgramError on the first problem.
    ``lines`` gives the source line of each statement and of the return, for error messages."""
    def _line(n: int) -> int:  # n: 1-based statement number; the return is len(statements) + 1
        return lines[n - 1] if lines else n + 1

    env = {name: INPUT_KINDS.get(name, TENSOR) for name in prog.inputs}
    if len(set(prog.inputs)) != len(prog.inputs):
        raise ProgramError("an input is declared twice")
    envs = []
    for i, s in enumerate(prog.statements, start=1):
        envs.append(dict(env))
        prim = primitives.registry().get(s.op)
        if prim is None:
            raise ProgramError(f"unknown function {s.op!r}", _line(i))
        if len(s.args) != prim.arity:
            raise ProgramError(f"{_fname(prim)} takes {prim.arity} argument"
                               f"{'s' if prim.arity != 1 else ''}, got {len(s.args)}", _line(i))
        arg_kinds = []
        for pos, (a, want) in enumerate(zip(s.args, prim.arg_kinds), start=1):
            if isinstance(a, Var):
                if a.name not in env:
                    raise ProgramError(f"undefined variable {a.name!r}", _line(i))
                k = env[a.name]
            else:
                k = SCALAR
            if want == TENSOR and k != TENSOR:
                raise ProgramError(f"a scalar where a tensor is needed: argument {pos} of {_fname(prim)} "
                                   f"is {'the number ' + str(a) if isinstance(a, Const) else repr(a.name)}",
                                   _line(i))
            arg_kinds.append(k)
        if s.target in primitives.CONSTANTS:
            raise ProgramError(f"{s.target!r} is a constant and cannot be assigned", _line(i))
        env[s.target] = prim.result(tuple(arg_kinds))
    envs.append(dict(env))
    ret = _line(len(prog.statements) + 1)
    want = 1 + len(prog.state_names)
    if len(prog.outputs) != want:
        raise ProgramError(f"return must list the update and the {len(prog.state_names)} state "
                           f"variable(s) {', '.join(prog.state_names) or ''}: expected {want} names, "
                           f"got {len(prog.outputs)}", ret)
    for pos, name in enumerate(prog.outputs):
        if name not in env:
            raise ProgramError(f"undefined variable {name!r} in return", ret)
        if env[name] != TENSOR:
            what = "the update" if pos == 0 else f"the new value of state {prog.state_names[pos - 1]!r}"
            raise ProgramError(f"a scalar where a tensor is needed: {what} ({name!r}) must be a tensor", ret)
    return envs


def _fname(prim) -> str:
    return f"`{prim.infix}`" if prim.infix and prim.infix != "neg" else prim.name


def _is_name(name) -> bool:
    """A name that prints as itself: Python reads keywords differently and NFKC-normalises
    identifiers (``ﬁ`` is ``fi``), so a program holding such a name would not round-trip."""
    return (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)
            and unicodedata.normalize("NFKC", name) == name)


def check(prog: Program, lines: tuple[int, ...] | None = None) -> None:
    """Raise ProgramError unless the program is well-formed and well-kinded."""
    if not _is_name(prog.name):
        raise ProgramError(f"function name {prog.name!r} is not an identifier")
    for name in prog.inputs + tuple(s.target for s in prog.statements) + prog.outputs:
        if not _is_name(name):
            raise ProgramError(f"{name!r} is not a valid variable name")
        if name in primitives.CONSTANTS:
            raise ProgramError(f"{name!r} is a constant and cannot be used as a variable")
    for req in (WEIGHT, GRAD, LR):
        if req not in prog.inputs:
            raise ProgramError(f"the signature must declare the input {req!r}")
    kinds(prog, lines)


# -- liveness ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dataflow:
    """Definitions in SSA form: ``reads[i]`` are the definitions statement i reads; a definition is
    ``("in", name)`` for an input or ``("s", i)`` for statement i. ``returns[k]`` defines output k."""

    reads: tuple[tuple[tuple, ...], ...]
    returns: tuple[tuple, ...]


@lru_cache(maxsize=4096)
def dataflow(prog: Program) -> Dataflow:
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
    flow = dataflow(prog)
    return ("in", name) in _reach(prog, flow, [flow.returns[0]], across_steps=True)


def pruning_reason(prog: Program) -> str | None:
    """Why a well-kinded program is not worth training (None if it is): an update that never reads
    the gradient cannot learn; one that never reads lr ignores the schedule."""
    if not reads_input(prog, GRAD):
        return "the update does not depend on the gradient"
    return None


# -- canonical form ---------------------------------------------------------------------------

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
    return Program(inputs, tuple(statements), outputs)


def canonical_hash(prog: Program) -> str:
    """Equal for programs that differ only in variable names or in statements that cannot affect
    the update."""
    return hashlib.blake2b(str(canonical_form(prog)).encode(), digest_size=16).hexdigest()
