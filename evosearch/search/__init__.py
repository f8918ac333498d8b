"""The search: ``mutation`` and regularized ``evolution`` (pure, ask/tell), the ``suite`` of proxy
tasks that scores a candidate, ``executors`` that train candidates (Ray actors or in-process), the
``funnel`` to larger task sizes, the SQLite run ``store``, the ``config`` file, program ``loading``,
hall-of-fame ``describe``-rs, the ``driver`` loop that ties them together, and what reads a run
back (``report``, ``plot``) or shows it live (``progress``). Above ``tasks``.

The names a script or notebook uses to run a search (README, "Python API"): ``SearchConfig`` and
``load_config``, ``run_search``, ``summary`` (what ``evosearch show --json`` prints) and ``RunStore``.
"""

import importlib

_PUBLIC = {"SearchConfig": "config", "load_config": "config", "SearchOutcome": "driver", "run_search": "driver",
           "summary": "report", "RunStore": "store"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    """The names above, loaded when first used (the driver loads the whole engine)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'evosearch.search' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value
