"""evosearch: discover deep-learning optimizers by evolving symbolic update-rule programs.

The public API (``docs/design.md``, "Public API"): ``Program`` and its pieces, ``ProgramError``,
``to_optimizer``, ``simplify``, ``match`` and the shipped ``reference`` programs. The engine's
layers are subpackages: ``lang`` (the program language), ``symbolic`` (sympy forms, simplification,
family matching), ``optim`` (programs on torch, export), ``search`` (evolution, evaluation, Ray,
the run store) and ``tune``; ``cli`` is the command line.

The names are loaded when first used (PEP 562), so that ``import evosearch`` and the command line
start without torch and sympy until a command needs them.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "Const": ("evosearch.lang.ir", "Const"),
    "Program": ("evosearch.lang.program", "Program"),
    "ProgramError": ("evosearch.lang.errors", "ProgramError"),
    "Statement": ("evosearch.lang.ir", "Statement"),
    "Var": ("evosearch.lang.ir", "Var"),
    "match": ("evosearch.symbolic.match", "match"),
    "reference": ("evosearch.lang.reference", None),
    "simplify": ("evosearch.symbolic.exact", "simplify"),
    "to_optimizer": ("evosearch.optim.factory", "to_optimizer"),
}

__all__ = sorted(_PUBLIC)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'evosearch' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = importlib.import_module(module)
    value = getattr(value, attribute) if attribute else value
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
