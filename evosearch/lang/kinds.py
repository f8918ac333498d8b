"""Abstract execution: a program run on kinds instead of values (tensor or scalar), which rejects
programs that cannot run before anything is trained (Chen et al. 2023, Sec. 2.2: "abstract
execution"), and ``check``, the well-formedness test every parsed or mutated program passes.
"""

from __future__ import annotations

import keyword
import unicodedata
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import primitives
from primitives import SCALAR, TENSOR

from .errors import ProgramError
from .ir import GRAD, LR, STEP, WEIGHT, Const, Statement, Var
from .limits import check_statements

if TYPE_CHECKING:
    from .program import Program

INPUT_KINDS = {WEIGHT: TENSOR, GRAD: TENSOR, LR: SCALAR, STEP: SCALAR}


class KindTable(Sequence[Mapping[str, str]]):
    """The kinds of the variables defined before each statement and at the return: entry ``i`` is
    a read-only mapping, name -> kind, of the variables statement ``i`` may read (entry
    ``len(statements)`` is the return's). The table records only each statement's result kind;
    an entry looks a name up among its definitions, so no table is copied per statement (copies
    made analysis quadratic in the program's length: 1.5 GB for 10,000 statements)."""

    def __init__(self, inputs: dict[str, str], targets: tuple[str, ...], results: tuple[str, ...]):
        self.inputs = inputs
        self.targets = targets
        self.results = results            # results[i]: the kind of statement i's value
        self._definitions: dict[str, list[int]] = {}
        for i, target in enumerate(targets):
            self._definitions.setdefault(target, []).append(i)

    def __len__(self) -> int:
        return len(self.targets) + 1

    def __getitem__(self, index: int) -> Mapping[str, str]:
        if not isinstance(index, int):
            raise TypeError(f"a KindTable is indexed by statement number, not {type(index).__name__}")
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"statement {index} of {len(self.targets)}")
        return _Scope(self, index)

    def kind(self, name: str, before: int) -> str:
        """The kind of ``name`` as statement ``before`` reads it; KeyError if it is not defined."""
        defined = self._definitions.get(name)
        if defined:
            k = bisect_left(defined, before)
            if k:
                return self.results[defined[k - 1]]
        return self.inputs[name]


class _Scope(Mapping[str, str]):
    """Entry ``index`` of a KindTable. Iterates like the dict it stands for: the inputs, then the
    statements' targets in the order they are first assigned."""

    def __init__(self, table: KindTable, index: int):
        self._table, self._index = table, index

    def __getitem__(self, name: str) -> str:
        return self._table.kind(name, self._index)

    def __iter__(self) -> Iterator[str]:
        seen = set(self._table.inputs)
        yield from self._table.inputs
        for target in self._table.targets[:self._index]:
            if target not in seen:
                seen.add(target)
                yield target

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))


def kinds(prog: Program, lines: tuple[int, ...] | None = None) -> KindTable:
    """Abstract execution: the kind of every defined variable before each statement and at the
    return (``len(prog.statements) + 1`` entries, see ``KindTable``). Raises ProgramError on the
    first problem. ``lines`` gives the source line of each statement and of the return, for error
    messages. Time and memory linear in the program's length. The tables of recent well-kinded
    programs are kept (the search asks for a tournament winner's again with each child it mutates)."""
    return _kinds(prog, lines) if lines else _recent_kinds(prog)


@lru_cache(maxsize=4096)
def _recent_kinds(prog: Program) -> KindTable:
    return _kinds(prog, None)


def _kinds(prog: Program, lines: tuple[int, ...] | None) -> KindTable:
    def _line(n: int) -> int:  # n: 1-based statement number; the return is len(statements) + 1
        return lines[n - 1] if lines else n + 1

    inputs = {name: INPUT_KINDS.get(name, TENSOR) for name in prog.inputs}
    if len(inputs) != len(prog.inputs):
        raise ProgramError("an input is declared twice")
    env = dict(inputs)
    results = []
    for i, s in enumerate(prog.statements, start=1):
        env[s.target] = statement_kind(s, env, _line(i))
        results.append(env[s.target])
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
    return KindTable(inputs, tuple(s.target for s in prog.statements), tuple(results))


def statement_kind(s: Statement, scope: Mapping[str, str], line: int | None = None) -> str:
    """The kind of statement ``s``'s value when it reads the variables of ``scope`` (name -> kind,
    as a KindTable entry gives them); ProgramError, at ``line``, if it cannot run there."""
    prim = primitives.registry().get(s.op)
    if prim is None:
        raise ProgramError(f"unknown function {s.op!r}", line)
    if len(s.args) != prim.arity:
        raise ProgramError(f"{_fname(prim)} takes {prim.arity} argument"
                           f"{'s' if prim.arity != 1 else ''}, got {len(s.args)}", line)
    arg_kinds = []
    for pos, (a, want) in enumerate(zip(s.args, prim.arg_kinds), start=1):
        if isinstance(a, Var):
            if a.name not in scope:
                raise ProgramError(f"undefined variable {a.name!r}", line)
            k = scope[a.name]
        else:
            k = SCALAR
        if want == TENSOR and k != TENSOR:
            raise ProgramError(f"a scalar where a tensor is needed: argument {pos} of {_fname(prim)} "
                               f"is {'the number ' + str(a) if isinstance(a, Const) else repr(a.name)}", line)
        arg_kinds.append(k)
    if s.target in primitives.CONSTANTS:
        raise ProgramError(f"{s.target!r} is a constant and cannot be assigned", line)
    return prim.result(tuple(arg_kinds))


def _fname(prim) -> str:
    return f"`{prim.infix}`" if prim.infix and prim.infix != "neg" else prim.name


def _is_name(name) -> bool:
    """A name that prints as itself: Python reads keywords differently and NFKC-normalises
    identifiers (``ﬁ`` is ``fi``), so a program holding such a name would not round-trip."""
    return isinstance(name, str) and _prints_as_itself(name)


@lru_cache(maxsize=65536)
def _prints_as_itself(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and unicodedata.normalize("NFKC", name) == name


def check_variable_name(name) -> None:
    """ProgramError unless ``name`` can name a variable."""
    if not _is_name(name):
        raise ProgramError(f"{name!r} is not a valid variable name")
    if name in primitives.CONSTANTS:
        raise ProgramError(f"{name!r} is a constant and cannot be used as a variable")


def check(prog: Program, lines: tuple[int, ...] | None = None) -> None:
    """Raise ProgramError unless the program is well-formed and well-kinded (and within the
    statement limit, checked first: programs built without text, from JSON or by mutation, too)."""
    check_statements(len(prog.statements))
    if not _is_name(prog.name):
        raise ProgramError(f"function name {prog.name!r} is not an identifier")
    for name in prog.inputs + tuple(s.target for s in prog.statements) + prog.outputs:
        check_variable_name(name)
    for req in (WEIGHT, GRAD, LR):
        if req not in prog.inputs:
            raise ProgramError(f"the signature must declare the input {req!r}")
    kinds(prog, lines)
