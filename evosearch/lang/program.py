"""The program: an update rule as an immutable value with a text form and a JSON form.

``str(prog)`` gives back the text form and ``Program.parse(str(prog)) == prog``. The methods are
conveniences over the modules below this one (parser, abstract execution, canonical form,
fingerprint), which take any program and never import this module at run time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import primitives

from . import canonical
from . import fingerprint as fingerprinting
from .errors import ProgramError
from .ir import SPECIAL_INPUTS, STEP, Const, Operand, Statement, Var, const
from .kinds import check
from .limits import MAX_BYTES, check_bytes
from .parse import parse_text


@dataclass(frozen=True)
class Program:
    """An update rule: ``def name(inputs): statements; return outputs``.

    ``outputs[0]`` is the update (the optimizer does ``w = w - update``); ``outputs[1:]`` are the new
    values of the state variables, in the order the signature lists them.
    """

    inputs: tuple[str, ...]
    statements: tuple[Statement, ...]
    outputs: tuple[str, ...]
    name: str = "train"

    def __hash__(self) -> int:
        # Computed once per program: the analyses' caches hash the same program many times, and a
        # hash walks every statement and operand (a fifth of the search driver's time). Kept out
        # of pickles (``__getstate__``): string hashes differ from process to process.
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.inputs, self.statements, self.outputs, self.name))
            object.__setattr__(self, "_hash", h)
        return h

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)

    # -- construction -------------------------------------------------------------------------
    @staticmethod
    def parse(text: str | bytes) -> "Program":
        """Parse and check a program text; raises ProgramError (never anything else) on bad input."""
        name, inputs, statements, outputs, lines = parse_text(text)
        prog = Program(inputs, statements, outputs, name)
        check(prog, lines)
        return prog

    @staticmethod
    def load(path: str | Path) -> "Program":
        """Read and parse a program file; errors name the file. A file over the size limit is
        read no further than the limit."""
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_BYTES + 1)
                size = max(len(data), os.fstat(f.fileno()).st_size)
        except OSError as exc:
            raise ProgramError(f"cannot read program file {str(path)!r}: {exc.strerror or exc}") from None
        try:
            check_bytes(size)
            return Program.parse(data)
        except ProgramError as exc:
            raise ProgramError(exc.reason, exc.line, source=str(path)) from None

    # -- structure ----------------------------------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        """The optimizer state variables: every input but ``w``, ``g``, ``lr`` and ``t``."""
        return tuple(n for n in self.inputs if n not in SPECIAL_INPUTS)

    @property
    def uses_step(self) -> bool:
        """Whether the program declares the step count ``t`` as an input."""
        return STEP in self.inputs

    def __str__(self) -> str:
        lines = [f"def {self.name}({', '.join(self.inputs)}):"]
        lines += [f"    {s}" for s in self.statements]
        lines.append(f"    return {', '.join(self.outputs)}")
        return "\n".join(lines) + "\n"

    def __len__(self) -> int:
        return len(self.statements)

    # -- analysis shortcuts -------------------------------------------------------------------
    def canonical_hash(self) -> str:
        """Equal for programs that differ only in variable names or dead code (``canonical.py``)."""
        return canonical.canonical_hash(self)

    def fingerprint(self) -> str:
        """Equal for programs that compute the same updates (``fingerprint.py``)."""
        return fingerprinting.fingerprint(self)

    # -- serialisation ------------------------------------------------------------------------
    def to_json(self) -> str:
        """The JSON form (``to_dict`` as text), as the run store keeps it."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_dict(self) -> dict:
        """Plain data: the statements as [target, op, [args]] with {"var": name} or {"const": value}."""
        def arg(a: Operand):
            if isinstance(a, Var):
                return {"var": a.name}
            return {"const": a.name} if a.name else {"const": a.value}
        return {
            "format": "evosearch.program/1",
            "name": self.name,
            "inputs": list(self.inputs),
            "statements": [[s.target, s.op, [arg(a) for a in s.args]] for s in self.statements],
            "outputs": list(self.outputs),
        }

    @staticmethod
    def from_json(text: str | dict) -> "Program":
        """Rebuild a program from ``to_json``; the result is checked like a parsed text."""
        try:
            data = json.loads(text) if isinstance(text, (str, bytes)) else text
            stmts = []
            for target, op, args in data["statements"]:
                ops = []
                for a in args:
                    if "var" in a:
                        ops.append(Var(str(a["var"])))
                    elif isinstance(a["const"], str):
                        ops.append(Const(primitives.CONSTANTS[a["const"]], a["const"]))
                    else:
                        ops.append(const(a["const"]))
                stmts.append(Statement(str(target), str(op), tuple(ops)))
            prog = Program(tuple(map(str, data["inputs"])), tuple(stmts),
                           tuple(map(str, data["outputs"])), str(data.get("name", "train")))
        except ProgramError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
            raise ProgramError(f"malformed program JSON: {exc!r}") from None
        check(prog)
        return prog
