"""Searches on Ray (``evosearch.search.executors``, docs/design.md "Data flow"): whole searches on
a local Ray and on a two-node Ray cluster, with a worker actor killed mid-run and with a worker node
lost; batched evaluation and early stopping through Ray actors; the executor's automatic batch size
and a worker whose constructor fails. The driver's own life (locks, signals, resume) is tested in
test_driver.py.

Searches train on the ``quadratic`` proxy task (~0.15 s per evaluation) with tiny budgets (helpers in
runs.py). Ray workers import ``tasks`` afresh, so only registered tasks can be used on Ray. The
baseline cache is one temporary folder per test session (``evosearch_cache`` in conftest.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from evosearch import Program, cli
from evosearch.search.driver import run_search
from runs import TASK, ActorNodes, Hook, check_run_store, tiny_config, two_node_cluster


# ---- helpers ------------------------------------------------------------------------------------

def candidate_id(item) -> int:
    """The id of an executor queue item: a Candidate, or a (Candidate, task size) pair."""
    return item.id if hasattr(item, "id") else item[0].id


# ---- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_module():
    import ray
    yield ray
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def local_ray(ray_module, baselines):
    """An embedded local Ray with 2 CPUs (started by the project's own ``init_ray``)."""
    from evosearch.search.executors import init_ray
    init_ray(None, 2)
    assert ray_module.cluster_resources().get("CPU") == 2
    return ray_module


# ---- a small search on a local Ray --------------------------------------------------------------

def test_small_search_on_local_ray(local_ray, tmp_path, capsys):
    folder = tmp_path / "run"
    outcome = run_search(tiny_config(max_evals=12, workers=2), folder, progress=Hook())
    assert outcome.stopped_by == "max_evals" and outcome.evaluations == 12
    for name in ("run.sqlite", "hall_of_fame.json", "best.py"):
        assert (folder / name).is_file()
    rows = check_run_store(folder, outcome)
    evaluated = [r for r in rows if r["status"] == "evaluated"]
    pids = {r["worker"].rsplit(":", 1)[1] for r in evaluated}
    assert len(pids) == 2, "both actors should have trained candidates"
    node = local_ray.get_runtime_context().get_node_id()
    assert all(r["worker"].startswith(node[:8] + ":") for r in evaluated)
    assert all(r["failure"] is not None or json.loads(r["task_fitness"])[TASK] == r["fitness"] for r in evaluated)

    capsys.readouterr()
    assert cli.main(["show", str(folder), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {"evaluations", "cache_hits", "pruned", "best", "hall_of_fame"} <= set(shown)
    assert shown["evaluations"] == 12 and shown["cache_hits"] == outcome.cache_hits
    assert shown["pruned"] == outcome.rejected
    best = max((r for r in evaluated if r["failure"] is None), key=lambda r: (r["fitness"], -r["id"]))
    assert shown["best"]["fitness"] == best["fitness"] == outcome.best_fitness
    assert shown["best"]["program"] == best["program"] == (folder / "best.py").read_text()
    hof = json.loads((folder / "hall_of_fame.json").read_text())
    assert [e["id"] for e in hof] == [e["id"] for e in shown["hall_of_fame"]]
    assert [e["fitness"] for e in hof] == sorted((e["fitness"] for e in hof), reverse=True)


# ---- a worker actor killed mid-run -------------------------------------------------------------

def test_a_killed_worker_is_replaced_and_nothing_is_lost_or_counted_twice(local_ray, no_descriptions, tmp_path):
    state = {}

    def kill_first_actor(evo, executor):
        if state or evo.counters.evaluated < 4:
            return
        victim = executor.actors[0]
        state["in_flight"] = [candidate_id(item) for _, actor, batch in executor.inflight.values()
                              if actor is victim for item in batch]
        state["time"] = time.time()
        local_ray.kill(victim, no_restart=True)

    hook = Hook(kill_first_actor)
    folder = tmp_path / "run"
    outcome = run_search(tiny_config(max_evals=16, workers=2), folder, progress=hook)
    assert state, "the hook never killed an actor"
    assert state["in_flight"], "the killed actor had no work in flight: nothing was tested"
    assert outcome.stopped_by == "max_evals" and outcome.evaluations == 16
    assert hook.executor.replaced >= 1
    rows = check_run_store(folder, outcome)           # ids unique, evaluated rows == counters == 16
    by_id = {r["id"]: r for r in rows}
    assert all(by_id[i]["status"] == "evaluated" for i in state["in_flight"])
    before = {r["worker"] for r in rows if r["status"] == "evaluated" and r["recorded_at"] < state["time"]}
    after = {r["worker"] for r in rows if r["status"] == "evaluated" and r["recorded_at"] > state["time"]}
    assert after - before, "no evaluation came from the replacement actor"


# ---- two Ray nodes -------------------------------------------------------------------------------

def test_search_on_a_two_node_cluster_uses_both_nodes(ray_module, baselines, no_descriptions, tmp_path):
    ray = ray_module
    with two_node_cluster(ray) as (cluster, _):
        actors = ActorNodes(ray)
        folder = tmp_path / "run"
        # workers = 0: one actor per CPU of the whole cluster; --address joins it
        outcome = run_search(tiny_config(max_evals=8, workers=0, address=cluster.address), folder,
                             progress=actors)
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len(nodes) == 2
        assert sorted(actors.nodes) == sorted(nodes)
        assert outcome.stopped_by == "max_evals" and outcome.evaluations == 8
        rows = check_run_store(folder, outcome)
        used = {r["worker"].split(":")[0] for r in rows if r["status"] == "evaluated"}
        assert used == {n[:8] for n in nodes}

        # without an address the default is an embedded Ray, even while another cluster is up on
        # this machine (Ray would otherwise join the cluster recorded in /tmp/ray/ray_current_cluster)
        ray.shutdown()
        from evosearch.search.executors import init_ray
        init_ray(None, 1)
        (own,) = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        assert own not in nodes


def test_a_later_search_with_more_workers_starts_the_embedded_ray_again(ray_module, baselines, no_descriptions,
                                                                        tmp_path, monkeypatch):
    """Two searches in one process: the embedded Ray the first started with one CPU (its one
    worker) is started again with two for the second's two workers, where Ray could not have placed
    the second actor (its batches would have waited forever). A Ray this process did not start
    (``ray.init`` by the user) is used as it is, and workers it cannot hold are an error."""
    from evosearch.search.config import ConfigError
    from evosearch.search.executors import RayExecutor, init_ray
    from evosearch.search.suite import SuiteSpec
    if ray_module.is_initialized():
        ray_module.shutdown()
    first = run_search(tiny_config(max_evals=4, workers=1), tmp_path / "one", progress=Hook())
    assert first.evaluations == 4 and ray_module.cluster_resources().get("CPU") == 1
    second = run_search(tiny_config(max_evals=8, workers=2), tmp_path / "two", progress=Hook())
    assert second.evaluations == 8 and ray_module.cluster_resources().get("CPU") == 2
    check_run_store(tmp_path / "two", second)
    ray_module.shutdown()

    monkeypatch.setenv("RAY_TQDM_PATCH_PRINT", "0")       # as init_ray does (test_devices.py says why)
    ray_module.init(address="local", num_cpus=1, include_dashboard=False)
    node = ray_module.get_runtime_context().get_node_id()
    init_ray(None, 2)
    assert ray_module.get_runtime_context().get_node_id() == node and ray_module.cluster_resources()["CPU"] == 1
    with pytest.raises(ConfigError, match=r"workers = 2 need 2 CPUs \(one each\); the cluster has 1"):
        RayExecutor(SuiteSpec((TASK,)), workers=2)
    ray_module.shutdown()


def test_a_lost_node_loses_nothing(ray_module, baselines, no_descriptions, tmp_path):
    """A worker node removed mid-search: the search finishes its budget on the head node, every
    candidate is recorded once, and those that were in flight on the lost node are trained again
    there. The lost node's actor is replaced, but the replacement waits for a free CPU that never
    comes, and gets no work meanwhile."""
    ray = ray_module
    with two_node_cluster(ray) as (cluster, worker_node):
        state = {}

        def remove_worker_node(evo, executor):
            if "nodes" not in state:
                state["nodes"] = ray.get([a.node_id.remote() for a in executor.actors])
            if "in_flight" in state or evo.counters.evaluated < 4:
                return
            (lost,) = [a for a, n in zip(executor.actors, state["nodes"]) if n == worker_node.node_id]
            in_flight = [candidate_id(item) for _, actor, batch in executor.inflight.values()
                         if actor is lost for item in batch]
            if in_flight:
                state["in_flight"], state["next_id"] = in_flight, evo.next_id
                cluster.remove_node(worker_node)

        folder, hook = tmp_path / "run", Hook(remove_worker_node)
        outcome = run_search(tiny_config(max_evals=16, workers=0, address=cluster.address), folder, progress=hook)
        assert sorted(state["nodes"]) == sorted([cluster.head_node.node_id, worker_node.node_id])
        assert state.get("in_flight"), "the worker node never had work in flight: nothing was tested"
        assert outcome.stopped_by == "max_evals" and outcome.evaluations == 16
        rows = check_run_store(folder, outcome)            # ids unique, evaluated rows == counters == 16
        by_id = {r["id"]: r for r in rows}
        head = cluster.head_node.node_id[:8]
        for i in state["in_flight"]:                       # trained again, on the node that is left
            assert by_id[i]["status"] == "evaluated" and by_id[i]["worker"].startswith(head + ":")
        # every child asked for after the removal was trained on the head node (by id: a result that
        # came back from the lost node just before it went may be committed after)
        later = [r for r in rows if r["status"] == "evaluated" and r["id"] >= state["next_id"]]
        assert later and all(r["worker"].startswith(head + ":") for r in later)
        assert hook.executor.replaced >= 1


# ---- batched evaluation and early stopping on Ray ------------------------------------------------

def test_batched_evaluation_scores_a_search_bit_for_bit(local_ray, baselines, no_descriptions, tmp_path):
    """``[executor] batched``: actors train each call's candidates together (tasks.batched). The
    fitness of every candidate must be what it scores alone, and the run must be recorded as any.
    ("always": whether batching pays, true's criterion, is a timing.)"""
    from evosearch.search.suite import SuiteEvaluator
    cfg = tiny_config(max_evals=16, workers=2, batch_size=4, batched="always")
    outcome = run_search(cfg, tmp_path / "run", progress=Hook())
    rows = check_run_store(tmp_path / "run", outcome)
    evaluated = [r for r in rows if r["status"] == "evaluated"]
    assert len(evaluated) == 16
    # the candidates of one call share its time equally: proof that they were trained together
    assert len({r["seconds"] for r in evaluated}) <= 10
    alone = SuiteEvaluator(replace(cfg.suite(), batched=False))
    for r in evaluated:
        e = alone.evaluate(r["id"], Program.parse(r["program"]))
        assert (r["fitness"], r["failure"]) == (e.fitness, e.failure)


def test_early_stopping_on_ray_sends_each_child_its_bars(local_ray, baselines, no_descriptions, tmp_path):
    """``[early_stop]`` through Ray actors (test_early_stop.py has the rule and the staged training):
    children behind the population's median stop, keep the fitness they reached and say why."""
    from evosearch.search.early_stop import EarlyStop, readings, stopped
    rule = EarlyStop(enabled=True, checkpoints=(0.25, 0.5), quantile=0.5, min_members=3)
    outcome = run_search(tiny_config(max_evals=24, workers=2, early_stop=rule), tmp_path / "run", progress=Hook())
    rows = check_run_store(tmp_path / "run", outcome)
    stops = [(r, stopped(json.loads(r["metrics"]))) for r in rows if r["status"] == "evaluated"]
    stops = [(r, s) for r, s in stops if s]
    assert stops, "a population's median should stop some children"
    for r, s in stops:
        assert r["fitness"] == s["fitness"] == readings(json.loads(r["metrics"]))[-1] < s["bar"]
        assert s["steps"] == {f"{TASK}/0": {0.25: 75, 0.5: 150}[s["checkpoint"]]}


# ---- the executor's batch sizes, and a worker that cannot start ----------------------------------

def test_auto_batches_last_about_a_quarter_second_and_keep_the_population_fresh():
    from evosearch.search.executors import BatchSizer
    from evosearch.search.suite import Evaluation

    def took(seconds, size="proxy"):
        return Evaluation(0, 1.0, {}, {}, None, "w", seconds, size=size)
    tiny, slow, fixed = BatchSizer(most=100), BatchSizer(most=100), BatchSizer(fixed=3)
    assert tiny.size == slow.size == 1                      # nothing measured yet
    tiny.observe([took(0.01)] * 50)
    slow.observe([took(2.0)] * 5 + [took(0.001, size="large")])   # funnel (large) evaluations do not count
    fixed.observe([took(0.01)] * 50)
    assert (tiny.size, slow.size, fixed.size) == (BatchSizer.MOST, 1, 3)
    fresh = BatchSizer(most=7)                              # population 30, 2 workers x 2 calls in flight
    fresh.observe([took(0.01)] * 50)
    assert fresh.size == 7
    medium = BatchSizer(most=100)
    medium.observe([took(0.05)] * 50)
    assert medium.size == 5


def test_a_worker_whose_constructor_fails_stops_the_search_instead_of_being_replaced_forever():
    """An actor that raised in its constructor (its tasks cannot be loaded on its node) would fail
    the same way each time it is replaced: the executor raises, naming the cause (a ConfigError,
    so the command line prints one line)."""
    import ray

    from evosearch.search.config import ConfigError
    from evosearch.search.executors import RayExecutor, WorkerStartError
    died = ray.exceptions.RayActorError(error_msg="creation task failed\nTaskModuleError: no module on this node",
                                        actor_init_failed=True)
    with pytest.raises(WorkerStartError, match="a worker could not start: TaskModuleError: no module on this node"):
        RayExecutor._check_start(died)
    assert issubclass(WorkerStartError, ConfigError)
    RayExecutor._check_start(ray.exceptions.RayActorError(error_msg="its node died"))    # replaced, not raised
