"""Proxy tasks: small, real training problems that score an optimizer in about a second.

Every module in this package that defines ``Task`` subclasses registers them with ``register``;
adding a task means adding a module here, nothing in the engine changes.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import FAILURE_FITNESS, Baseline, EvalResult, Task, TrainingFailure

_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    if not cls.name or cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"task name {cls.name!r} is empty or registered twice")
    if "proxy" not in cls.sizes:
        raise ValueError(f"task {cls.name!r} must define a 'proxy' size")
    _REGISTRY[cls.name] = cls
    return cls


for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name not in ("base", "suite"):
        importlib.import_module(f"{__name__}.{_mod.name}")


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str, size: str = "proxy") -> Task:
    if name not in _REGISTRY:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(names())}")
    return _REGISTRY[name](size)


__all__ = ["FAILURE_FITNESS", "Baseline", "EvalResult", "Task", "TrainingFailure", "get", "names",
           "register"]
