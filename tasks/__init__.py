"""Proxy tasks: small, real training problems that score an optimizer in about a second.

Every module in this package that defines ``Task`` subclasses registers them with ``register``;
adding a task means adding a module here, nothing in the engine changes.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Baseline, Task
from .results import FAILURE_FITNESS, EvalResult
from .training import TrainingFailure, TrainingRun

_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a ``Task`` subclass available by its ``name``."""
    if not cls.name or cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"task name {cls.name!r} is empty or registered twice")
    if "proxy" not in cls.sizes:
        raise ValueError(f"task {cls.name!r} must define a 'proxy' size")
    _REGISTRY[cls.name] = cls
    return cls


_MACHINERY = ("base", "results", "training", "batched", "batched_forward")   # modules that define no task

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name not in _MACHINERY:
        importlib.import_module(f"{__name__}.{_mod.name}")


def names() -> list[str]:
    """The registered task names, sorted."""
    return sorted(_REGISTRY)


def sizes(name: str) -> list[str]:
    """The sizes a registered task can be trained at ("proxy" first); KeyError for an unknown task."""
    return list(_REGISTRY[name].sizes)


def get(name: str, size: str = "proxy") -> Task:
    """A fresh task of that name at that size; KeyError naming the known ones."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(names())}")
    return _REGISTRY[name](size)


__all__ = ["FAILURE_FITNESS", "Baseline", "EvalResult", "Task", "TrainingFailure", "TrainingRun", "get",
           "names", "register", "sizes"]
