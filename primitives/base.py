"""The primitive interface: what a function that programs may call must declare.

A primitive has three forms that must agree wherever its guards are inactive:
  * ``torch``  — used to train with the program (float32, any device);
  * ``numpy``  — float64, used for cheap functional fingerprints;
  * ``sympy``  — used by simplification, which reasons modulo the guards.

Elementwise primitives take single tensors (or Python floats) and broadcast. Reductions declare
``reduces="tensor"`` (over one parameter tensor, result a scalar per tensor) or ``reduces="global"``
(over every parameter tensor the optimizer updates together); their forms take a *list* of arrays,
one per parameter tensor, and return a list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

TENSOR = "tensor"  # a value shaped like the weight
SCALAR = "scalar"  # a number (a literal, lr, t, or a per-tensor reduction)
ANY = "any"        # either; elementwise primitives broadcast

# Guards (docs/design.md, "The program language"): a random program must never crash a worker.
DIV_EPS = 1e-8       # x / y divides by y + copysign(1e-8, y); with y = sqrt(v) >= 0 this is Adam's eps.
CLAMP = 1e30         # non-finite results of singular primitives become +-1e30 (NaN becomes 0).


@dataclass(frozen=True)
class Primitive:
    """A function programs may call, with every form the engine needs (see the module docstring)."""
    name: str
    arg_kinds: tuple[str, ...]
    torch: Callable
    numpy: Callable
    sympy: Callable
    doc: str
    reduces: str | None = None          # None (elementwise), "tensor", or "global"
    result_kind: str | None = None      # None: tensor if any argument is a tensor, else scalar
    infix: str | None = None            # "+", "-", "*", "/" for the binary operators, "neg" for unary minus
    commutative: bool = False
    # For the agreement tests: an interval per argument where the guards are inactive.
    domain: tuple[tuple[float, float], ...] = field(default=())
    # Optional multi-tensor form: takes lists (or floats for scalar args) and returns a list.
    foreach: Callable | None = None
    # Source forms for exported modules (evosearch/optim/export.py): a Python expression template
    # over {0}, {1}, ... that uses only torch and the helpers of evosearch/optim/export_helpers.py; for
    # reductions the arguments are lists. ``foreach_source`` names the torch._foreach_* function.
    source: str | None = None
    foreach_source: str | None = None

    @property
    def arity(self) -> int:
        """The number of arguments."""
        return len(self.arg_kinds)

    def result(self, kinds: tuple[str, ...]) -> str:
        """The kind of the result given the kinds of the arguments (abstract execution)."""
        if self.result_kind is not None:
            return self.result_kind
        return TENSOR if TENSOR in kinds else SCALAR


_REGISTRY: dict[str, Primitive] = {}


def register(prim: Primitive) -> Primitive:
    """Add a primitive to the registry; a second one of the same name is an error."""
    if prim.name in _REGISTRY and _REGISTRY[prim.name] is not prim:
        raise ValueError(f"primitive {prim.name!r} is registered twice")
    if len(prim.domain) not in (0, prim.arity):
        raise ValueError(f"primitive {prim.name!r}: domain must give one interval per argument")
    _REGISTRY[prim.name] = prim
    return prim


def registry() -> dict[str, Primitive]:
    """Every registered primitive by name."""
    return _REGISTRY
