"""Task modules from outside this package: the researcher's own files and package folders (a search
config's ``[tasks] modules``) and installed packages that declare an ``evosearch.tasks`` entry
point. Either kind registers its tasks with ``tasks.register``, exactly as the built-in modules do.

A file or folder is imported by its path under ``evosearch_user_tasks.<its name>``: one stable name
per module, whatever folder it sits in (the baseline cache keys a task by its module and code), and
apart from every other module, so a researcher's ``data.py`` never shadows another ``data``. On a
Ray cluster the nodes have no copy of those files: ``stage`` builds the package that Ray's
``runtime_env`` carries to them (``search/executors.py``), and a worker imports the modules from
that package under the same names.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import shutil
import sys
import types
from pathlib import Path

PACKAGE = "evosearch_user_tasks"     # the parent of every module loaded by path, and the package shipped
GROUP = "evosearch.tasks"            # the entry-point group of installed task packages
_SOURCE = "__evosearch_source__"     # on a loaded module: the path it was loaded from


class TaskModuleError(ValueError):
    """A task module that cannot be loaded: the message names the file (or entry point) and why."""


def module_name(path: str | Path) -> str:
    """The name a task module at ``path`` (a ``.py`` file or a package folder) is imported under."""
    path = Path(path)
    stem = path.stem if path.suffix == ".py" else path.name
    if not stem.isidentifier():
        raise TaskModuleError(f"task module {str(path)!r}: {stem!r} is not a Python module name")
    return f"{PACKAGE}.{stem}"


def check_path(path: str | Path) -> Path:
    """``path`` as a loadable module: a ``.py`` file or a folder with ``__init__.py``."""
    path = Path(path)
    if path.is_file() and path.suffix == ".py" or path.is_dir() and (path / "__init__.py").is_file():
        module_name(path)
        return path
    if not path.exists():
        raise TaskModuleError(f"task module {str(path)!r} does not exist")
    raise TaskModuleError(f"task module {str(path)!r} is neither a .py file nor a package folder "
                          f"(a folder with __init__.py)")


def load_modules(paths, registry: dict) -> None:
    """Import each task module (absolute paths, as a config keeps them) once; a module of the same
    name loaded from another path before is replaced, its tasks forgotten. A module that fails
    leaves nothing behind. TaskModuleError names the file and the exception."""
    for path in paths:
        shipped = _shipped()
        name = module_name(path if shipped else check_path(path))
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, _SOURCE, None) == str(path):
            continue
        _forget(name, registry)
        try:
            module = importlib.import_module(name) if shipped else _import_file(Path(path), name)
        except BaseException as exc:   # noqa: BLE001 - the researcher's code may raise anything, SystemExit too
            _forget(name, registry)
            raise TaskModuleError(f"cannot import task module {str(path)!r}: {type(exc).__name__}: {exc}") from exc
        setattr(module, _SOURCE, str(path))


def _shipped() -> bool:
    """Whether this process has the package Ray's ``runtime_env`` brought (a worker on a cluster)."""
    parent = sys.modules.get(PACKAGE)
    if parent is not None:
        return bool(getattr(parent, "SHIPPED", False))
    return importlib.util.find_spec(PACKAGE) is not None


def _import_file(path: Path, name: str) -> types.ModuleType:
    if PACKAGE not in sys.modules:               # the parent: a namespace of nothing but the loaded modules
        parent = types.ModuleType(PACKAGE, "task modules loaded by path (tasks.external)")
        parent.__path__ = []
        sys.modules[PACKAGE] = parent
    package = path.is_dir()
    spec = importlib.util.spec_from_file_location(name, path / "__init__.py" if package else path,
                                                  submodule_search_locations=[str(path)] if package else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    setattr(sys.modules[PACKAGE], name.rsplit(".", 1)[1], module)
    return module


def _forget(name: str, registry: dict) -> None:
    """Drop module ``name``, its submodules and the tasks they registered."""
    for task, cls in list(registry.items()):
        if cls.__module__ == name or cls.__module__.startswith(name + "."):
            del registry[task]
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def stage(paths, folder: str | Path) -> Path:
    """Copy the task modules into ``folder/evosearch_user_tasks``, the package that Ray ships to
    every node (``runtime_env`` ``py_modules``); returns the package folder."""
    root = Path(folder) / PACKAGE
    root.mkdir(parents=True)
    (root / "__init__.py").write_text('"""Task modules shipped to Ray workers by evosearch (tasks.external)."""\n'
                                      "SHIPPED = True\n")
    for path in map(Path, paths):
        if path.is_dir():
            shutil.copytree(path, root / path.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, root / path.name)
    return root


_entry_points_loaded = False


def load_entry_points(register) -> None:
    """Load, once per process, every installed entry point of the group ``evosearch.tasks``: a module
    (importing it registers its tasks) or a ``Task`` subclass (given to ``register``).
    TaskModuleError names the entry point and the exception."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in importlib.metadata.entry_points(group=GROUP):
        try:
            loaded = ep.load()
            if isinstance(loaded, type):
                register(loaded)
        except BaseException as exc:   # noqa: BLE001 - an installed package's code may raise anything
            raise TaskModuleError(f"cannot load task entry point {ep.name} = {ep.value!r} (group {GROUP}): "
                                  f"{type(exc).__name__}: {exc}") from exc
