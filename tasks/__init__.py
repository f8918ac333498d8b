"""Proxy tasks: small, real training problems that score an optimizer in about a second.

Every module in this package that defines ``Task`` subclasses registers them with ``register``;
adding a task means adding a module here, nothing in the engine changes. A researcher's own task
modules outside the package register the same way (``external.py``: files a config names, and
installed ``evosearch.tasks`` entry points).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from . import external
from .base import Baseline, Task
from .external import TaskModuleError
from .results import FAILURE_FITNESS, EvalResult
from .training import TrainingFailure, TrainingRun

_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a ``Task`` subclass available by its ``name``."""
    if not cls.name:
        raise ValueError(f"task class {cls.__qualname__} has an empty name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"task {cls.name!r} is defined twice: in {_where(_REGISTRY[cls.name])} and in {_where(cls)}")
    if "proxy" not in cls.sizes:
        raise ValueError(f"task {cls.name!r} must define a 'proxy' size")
    _REGISTRY[cls.name] = cls
    return cls


def _where(cls: type) -> str:
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return f"{cls.__module__} ({path})" if path else cls.__module__


# modules that define no task
_MACHINERY = ("base", "results", "training", "batched", "batched_forward", "external", "devices")

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name not in _MACHINERY:
        importlib.import_module(f"{__name__}.{_mod.name}")


def load_modules(paths) -> None:
    """Import the researcher's task modules: ``.py`` files or package folders, by absolute path
    (``external.py``); each once. TaskModuleError names the file and what went wrong."""
    external.load_modules(paths, _REGISTRY)


def names() -> list[str]:
    """The registered task names (with the installed entry points'), sorted."""
    external.load_entry_points(register)
    return sorted(_REGISTRY)


def sizes(name: str) -> list[str]:
    """The sizes a registered task can be trained at ("proxy" first); KeyError for an unknown task."""
    external.load_entry_points(register)
    return list(_REGISTRY[name].sizes)


def get(name: str, size: str = "proxy", data_dir=None, device="cpu") -> Task:
    """A fresh task of that name at that size; KeyError naming the known ones. ``data_dir``: where
    a task that reads files finds them (default ``$EVOSEARCH_DATA``; the others ignore it);
    ``device``: where it trains (a torch device, ``Task.to``)."""
    external.load_entry_points(register)
    if name not in _REGISTRY:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(names())}")
    task = _REGISTRY[name](size) if data_dir is None else _REGISTRY[name](size, data_dir)
    return task.to(device)


__all__ = ["FAILURE_FITNESS", "Baseline", "EvalResult", "Task", "TaskModuleError", "TrainingFailure",
           "TrainingRun", "get", "load_modules", "names", "register", "sizes"]
