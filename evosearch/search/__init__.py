"""The search: ``mutation`` and regularized ``evolution`` (pure, ask/tell), the ``suite`` of proxy
tasks that scores a candidate, ``executors`` that train candidates (Ray actors or in-process), the
``funnel`` to larger task sizes, the SQLite run ``store``, the ``config`` file, program ``loading``,
hall-of-fame ``describe``-rs, the ``driver`` loop that ties them together, and what reads a run
back (``report``, ``plot``) or shows it live (``progress``). Above ``tasks``.

The names a script or notebook uses to run a search (README, "Python API"): ``SearchConfig`` and
``load_config``, ``run_search``, ``summary`` (what ``evosearch show --json`` prints) and ``RunStore``.
"""

from .config import SearchConfig, load_config
from .driver import SearchOutcome, run_search
from .report import summary
from .store import RunStore

__all__ = ["RunStore", "SearchConfig", "SearchOutcome", "load_config", "run_search", "summary"]
