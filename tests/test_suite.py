"""Scoring candidates on a suite (``evosearch.search.suite``): ``evaluate_many`` with batched training
gives every candidate its one-at-a-time result, and trains together only where that pays. (Whole
searches with ``[executor] batched`` on Ray: test_ray_search.py.)"""

from __future__ import annotations

from dataclasses import replace

import tasks
import tasks.base
import tasks.batched
from evosearch import reference
from evosearch.search.suite import SuiteEvaluator, SuiteSpec

ADAMW = reference.load("adamw")
TASK = "quadratic"


def test_batched_evaluation_trains_together_only_where_it_pays(monkeypatch):
    made_up = {TASK: {0: [10.0, 1.0, 1e-3]}}
    items = [(i, ADAMW, None) for i in range(3)]
    batches = []
    monkeypatch.setattr(tasks.base.Task, "evaluate_batch", lambda self, programs, **kw: batches.append(
        len(programs)) or [self.evaluate(p, **{k: v for k, v in kw.items() if k != "exact"}) for p in programs])
    for answer, expected in ((False, []), (True, [3])):
        batches.clear()
        monkeypatch.setattr(tasks.batched, "pays", lambda task, size: answer)
        SuiteEvaluator(SuiteSpec((TASK,), seeds=(0,), baselines=made_up, batched=True)).evaluate_many(items)
        assert batches == expected


def test_batched_evaluation_of_mixed_sizes_is_each_alone(monkeypatch):
    """An in-process call may mix proxy and large (funnel) candidates: each size is trained together,
    and every result is the one-at-a-time result, size label included."""
    batches, evaluate_batch = [], tasks.base.Task.evaluate_batch
    monkeypatch.setattr(tasks.base.Task, "evaluate_batch", lambda self, programs, **kw: batches.append(
        (self.size, len(programs))) or evaluate_batch(self, programs, **kw))
    made_up = {TASK: {0: [10.0, 1.0, 1e-3]}}         # fitness is (10 - val loss) / 9: no tuning needed
    spec = SuiteSpec((TASK,), seeds=(0,), baselines=made_up, large_baselines=made_up, batched="always")
    items = [(0, ADAMW, None), (1, reference.load("lion"), "large"), (2, reference.load("signum"), "proxy"),
             (3, ADAMW, "large"), (4, reference.load("sgd"), None)]
    together = SuiteEvaluator(spec).evaluate_many(items)
    assert sorted(batches) == [("large", 2), ("proxy", 3)]

    def without_times(metrics: dict) -> dict:
        return {key: {m: v for m, v in d.items() if m != "wall_time"} for key, d in metrics.items()}
    alone = SuiteEvaluator(replace(spec, batched=False))
    for item, e in zip(items, together):
        a = alone.evaluate(*item)
        assert (e.candidate_id, e.fitness, e.failure, e.size) == (a.candidate_id, a.fitness, a.failure, a.size)
        assert without_times(e.metrics) == without_times(a.metrics)


def test_executors_score_a_suite_at_its_own_size_when_it_is_not_proxy(evosearch_cache):
    """``[tasks] size = "large"`` (or any size): the candidates the driver sends are trained at that
    size, with and without early stopping; only the funnel names another size. (A search on the
    digits_vit "ladder" size was once trained at the proxy size, against baselines tuned there.)"""
    import ray

    from evosearch.search.early_stop import EarlyStop
    from evosearch.search.evolution import Candidate
    from evosearch.search.executors import InProcessExecutor, RayExecutor, init_ray
    made_up = {TASK: {0: [10.0, 1.0, 1e-3]}}
    steps = tasks.get(TASK, "large").steps
    candidate = Candidate(0, ADAMW, None, "", "", "")
    started = not ray.is_initialized()
    init_ray(None, 1)
    try:
        for rule in (EarlyStop(), EarlyStop(enabled=True)):
            spec = SuiteSpec((TASK,), size="large", seeds=(0,), baselines=made_up, early_stop=rule)
            for executor in (InProcessExecutor(spec), RayExecutor(spec, workers=1)):
                executor.submit([candidate])
                results = []
                while not results:
                    results = executor.poll(timeout=5.0)
                executor.shutdown()
                (e,) = results
                assert e.size == "proxy"          # (the label of the suite's own size)
                assert e.metrics[f"{TASK}/0"]["steps"] == steps, type(executor).__name__
    finally:
        if started:
            ray.shutdown()


def test_approximate_batching_trains_together_where_a_batched_step_is_not_bit_for_bit(evosearch_cache, monkeypatch):
    """``batched = "approximate"`` trains a call's candidates together also on a model whose batched
    step is only approximately the one-model step (convolutions here; on a GPU, nearly every model),
    where ``"always"`` trains them one at a time."""
    alone_runs, evaluate = [], tasks.base.Task.evaluate
    monkeypatch.setattr(tasks.base.Task, "evaluate", lambda self, *a, **kw: alone_runs.append(1) or
                        evaluate(self, *a, **kw))
    made_up = {"digits_cnn": {0: [10.0, 1.0, 1e-3]}}
    items = [(0, ADAMW, None), (1, reference.load("lion"), None)]
    spec = SuiteSpec(("digits_cnn",), seeds=(0,), baselines=made_up, batched="approximate")
    together = SuiteEvaluator(spec).evaluate_many(items)
    assert alone_runs == []                               # one batched training of both
    alone = SuiteEvaluator(replace(spec, batched="always")).evaluate_many(items)
    assert len(alone_runs) == 2                           # "always" is exact: one at a time here
    assert tasks.batched._BATCHING[(tasks.batched._setup(tasks.get("digits_cnn")), 2)] == "inexact"
    for a, b in zip(together, alone):
        assert a.failure is None and abs(a.fitness - b.fitness) < 1e-3
