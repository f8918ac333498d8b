"""The primitive library: every function an evosearch program may call.

Each module in this package registers primitives on import; adding a primitive means adding (or
extending) one module here — every module is imported below, nothing in the engine changes.
"""

from __future__ import annotations

import importlib
import math
import pkgutil

from .base import ANY, CLAMP, DIV_EPS, SCALAR, TENSOR, Primitive, register, registry

# The paper's three constants. `eps` is the guard's epsilon.
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "eps": DIV_EPS}

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

INFIX: dict[str, Primitive] = {p.infix: p for p in registry().values() if p.infix}


def get(name: str) -> Primitive:
    """The primitive called ``name``; KeyError if there is none."""
    return registry()[name]


def names() -> list[str]:
    """Every registered primitive's name, sorted."""
    return sorted(registry())


__all__ = ["ANY", "CLAMP", "CONSTANTS", "DIV_EPS", "INFIX", "SCALAR", "TENSOR", "Primitive", "get",
           "names", "register", "registry"]
