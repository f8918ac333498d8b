"""Helpers for tests that run whole searches and read their run folders (test_driver.py,
test_ray_search.py, test_config.py): a tiny config on the quick ``quadratic`` task, a progress hook,
and readers of ``run.sqlite``. The run folder's layout is described in docs/design.md ("The run
folder")."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from evosearch.search.config import SearchConfig
from evosearch.search.store import RunStore

TASK = "quadratic"

CONFIG = """
[search]
warm_start = "adamw"
seed = 1
time_limit = 120
population_size = 10
tournament_size = 3

[tasks]
names = ["quadratic"]
seeds = [0]

[executor]
batch_size = 2
"""


def candidates(folder: Path) -> list[dict]:
    db = sqlite3.connect(Path(folder) / "run.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM candidates ORDER BY id")]
    finally:
        db.close()


def history_of(rows: list[dict]) -> list[tuple]:
    return [(r["id"], r["status"], r["program"], r["fitness"], r["parent_id"], r["mutation"], r["cached_from"])
            for r in rows]


def tiny_config(**overrides) -> SearchConfig:
    # the time limit only turns a lost candidate (the loop waiting for it forever) into a failure
    cfg = SearchConfig(warm_start="adamw", max_evals=12, population_size=10, tournament_size=3,
                       tasks=(TASK,), task_seeds=(0,), batch_size=2, time_limit=120)
    return replace(cfg, **overrides)


class Hook:
    """A progress object for ``run_search``: ``on_update(evo, executor)`` runs every loop iteration."""

    def __init__(self, on_update=None):
        self.on_update = on_update
        self.executor = None
        self.messages = []

    def log(self, message: str) -> None:
        self.messages.append(message)

    def update(self, evo, executor, elapsed: float) -> None:
        self.executor = executor
        if self.on_update:
            self.on_update(evo, executor)



class ActorNodes(Hook):
    """A Hook that records, at the search's first update, the node of each worker actor
    (``nodes``: node ids, one per actor)."""

    def __init__(self, ray):
        super().__init__(self._ask)
        self.ray, self.nodes = ray, None

    def _ask(self, evo, executor) -> None:
        if self.nodes is None:
            self.nodes = self.ray.get([a.node_id.remote() for a in executor.actors])

def check_run_store(folder: Path, outcome) -> list[dict]:
    """Invariants of every finished run: ids 0..N-1 each recorded once, counts that agree."""
    rows = candidates(folder)
    ids = [r["id"] for r in rows]
    assert ids == list(range(len(ids))), "candidate ids must be unique and without gaps"
    evaluated = [r for r in rows if r["status"] == "evaluated"]
    cached = [r for r in rows if r["status"] == "cached"]
    screened = [r for r in rows if r["status"] == "screened"]
    assert len(evaluated) + len(cached) + len(screened) == len(rows)
    store = RunStore(folder)
    try:
        counters = store.get_meta("counters")
    finally:
        store.close()
    assert len(evaluated) == counters["evaluated"] == outcome.evaluations
    assert len(cached) == counters["cache_hits"] == outcome.cache_hits
    assert counters["generated"] == outcome.generated
    assert counters["rejected"] == outcome.rejected
    assert len(screened) == counters.get("screened", 0) == outcome.screened
    assert all(r["fitness"] == -1.0 and r["failure"].startswith("numeric screen:") for r in screened)
    # every child generated was rejected, screened out, served from the cache or trained (the warm
    # start was not generated)
    assert counters["generated"] == (counters["rejected"] + counters.get("screened", 0) + counters["cache_hits"]
                                     + counters["evaluated"] - 1)
    for r in cached:
        source = rows[r["cached_from"]]
        assert source["status"] in ("evaluated", "screened") and source["fitness"] == r["fitness"]
    return rows


@contextmanager
def two_node_cluster(ray):
    """A ``ray.cluster_utils.Cluster`` of two one-CPU nodes on this machine (any Ray this process
    had is shut down first); yields (cluster, the worker node), and takes Ray and the cluster down
    however the test ends."""
    from ray.cluster_utils import Cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        worker_node = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster, worker_node
    finally:
        ray.shutdown()
        cluster.shutdown()
