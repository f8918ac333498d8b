"""The program IR: immutable statements and programs with a text form and a JSON form.

A program is straight-line code (DESIGN.md, "The program language"): each statement applies one
primitive to variables and literals. ``str(prog)`` gives back the text form and
``Program.parse(str(prog)) == prog``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import primitives

from .errors import ProgramError

# Inputs with a fixed meaning; every other input is an optimizer state variable.
WEIGHT, GRAD, LR, STEP = "w", "g", "lr", "t"
SPECIAL_INPUTS = (WEIGHT, GRAD, LR, STEP)


@dataclass(frozen=True)
class Var:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Const:
    value: float
    name: str | None = None  # "pi", "e" or "eps" for the named constants

    def __str__(self) -> str:
        return self.name if self.name else repr(float(self.value))


Operand = Union[Var, Const]


def const(value: float) -> Const:
    try:
        value = float(value)
    except OverflowError:
        raise ProgramError("literal is too large to be a float") from None
    if not math.isfinite(value):
        raise ProgramError(f"literal {value!r} is not finite")
    return Const(value + 0.0)  # -0.0 -> 0.0: the two compare equal, so they must mean the same


@dataclass(frozen=True)
class Statement:
    target: str
    op: str                  # a primitive name
    args: tuple[Operand, ...]

    @property
    def primitive(self) -> primitives.Primitive:
        return primitives.get(self.op)

    def reads(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if isinstance(a, Var))

    def __str__(self) -> str:
        prim = primitives.registry().get(self.op)
        infix = prim.infix if prim else None
        if infix == "neg":
            return f"{self.target} = -{_operand_text(self.args[0])}"
        if infix:
            return f"{self.target} = {_operand_text(self.args[0])} {infix} {_operand_text(self.args[1])}"
        return f"{self.target} = {self.op}({', '.join(str(a) for a in self.args)})"


def _operand_text(a: Operand) -> str:
    text = str(a)
    return f"({text})" if isinstance(a, Const) and a.value < 0 and not a.name else text


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

    # -- construction -------------------------------------------------------------------------
    @staticmethod
    def parse(text: str | bytes) -> "Program":
        """Parse and check a program text; raises ProgramError (never anything else) on bad input."""
        from .parse import parse_program
        return parse_program(text)

    @staticmethod
    def load(path: str | Path) -> "Program":
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ProgramError(f"cannot read program file {str(path)!r}: {exc.strerror or exc}") from None
        try:
            return Program.parse(data)
        except ProgramError as exc:
            raise ProgramError(exc.reason, exc.line, source=str(path)) from None

    # -- structure ----------------------------------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.inputs if n not in SPECIAL_INPUTS)

    @property
    def uses_step(self) -> bool:
        return STEP in self.inputs

    def __str__(self) -> str:
        lines = [f"def {self.name}({', '.join(self.inputs)}):"]
        lines += [f"    {s}" for s in self.statements]
        lines.append(f"    return {', '.join(self.outputs)}")
        return "\n".join(lines) + "\n"

    def __len__(self) -> int:
        return len(self.statements)

    # -- analysis shortcuts (see analysis.py) --------------------------------------------------
    def canonical_hash(self) -> str:
        from .analysis import canonical_hash
        return canonical_hash(self)

    def fingerprint(self) -> str:
        from .fingerprint import fingerprint
        return fingerprint(self)

    # -- serialisation ------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_dict(self) -> dict:
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
        from .analysis import check
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
