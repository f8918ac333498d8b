"""The program IR's pieces: variables, literals and statements, immutable, each with its text form.

A program (``program.Program``) is straight-line code: each statement applies one primitive to
variables and literals (``docs/design.md``, "The program language").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import primitives

from .errors import ProgramError

# Inputs with a fixed meaning; every other input is an optimizer state variable.
WEIGHT, GRAD, LR, STEP = "w", "g", "lr", "t"
SPECIAL_INPUTS = (WEIGHT, GRAD, LR, STEP)


@dataclass(frozen=True)
class Var:
    """A variable read by a statement."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Const:
    """A literal argument; ``name`` is set for the named constants ``pi``, ``e`` and ``eps``."""

    value: float
    name: str | None = None  # "pi", "e" or "eps" for the named constants

    def __str__(self) -> str:
        return self.name if self.name else repr(float(self.value))


Operand = Union[Var, Const]


def const(value: float) -> Const:
    """A literal from a number: finite, and -0.0 made 0.0; else ProgramError."""
    try:
        value = float(value)
    except OverflowError:
        raise ProgramError("literal is too large to be a float") from None
    if not math.isfinite(value):
        raise ProgramError(f"literal {value!r} is not finite")
    return Const(value + 0.0)  # -0.0 -> 0.0: the two compare equal, so they must mean the same


@dataclass(frozen=True)
class Statement:
    """``target = op(args)``: one primitive applied to variables and literals."""

    target: str
    op: str                  # a primitive name
    args: tuple[Operand, ...]

    @property
    def primitive(self) -> primitives.Primitive:
        """The registered primitive ``op`` names."""
        return primitives.get(self.op)

    def reads(self) -> tuple[str, ...]:
        """The names of the variables the statement reads, in argument order."""
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
