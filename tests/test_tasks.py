"""The proxy tasks (``tasks``, ``tasks.base``; README, "Tasks"): the interface and the registry,
evaluation speed and reproducibility, fitness, and the cache of tuned-AdamW baselines. The training
loop's checks (failures) are tested in test_training.py.

Baselines (tuned AdamW, 8 learning rates per task) are cached under ``$EVOSEARCH_CACHE``; every test
here uses the session's temporary cache (``evosearch_cache`` in conftest.py), so each task's baseline
is trained once per test run and the user's own cache is never read or written. Tests of the cache
itself use a tiny task registered here, whose baseline trains in milliseconds.
"""

from __future__ import annotations

import json
import math
import time

import pytest
import torch
from torch import nn

import tasks
from evosearch import reference
from tasks import FAILURE_FITNESS, Task

BUILTIN = tasks.names()            # before this module registers its own task
# tasks that read data sets from disk train in tests/test_images.py, on files written there
BUNDLED = [name for name in BUILTIN if not tasks.get(name).reads_files]
# A proxy evaluation should take about 1.5 s. Evaluation runs on one thread, so its CPU time is its
# wall time on an idle machine, and unlike wall time it does not grow when other processes share the
# cores: the bound is on CPU time, with a margin; wall time gets only a loose bound.
EVAL_CPU_SECONDS_LIMIT = 3.0
EVAL_WALL_SECONDS_LIMIT = 15.0
EVAL_SECONDS: dict[str, tuple[float, float]] = {}  # name -> (cpu, wall), for the report at the end


@pytest.fixture(scope="module", autouse=True)
def baseline_cache(evosearch_cache):
    """The session's temporary cache (tests/conftest.py), for every test of this module."""
    return evosearch_cache


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    if EVAL_SECONDS:
        print("\nproxy evaluation of the AdamW warm start (baseline cached), seconds:")
        for name in sorted(EVAL_SECONDS):
            cpu, wall = EVAL_SECONDS[name]
            print(f"  {name:14s} cpu {cpu:.2f}  wall {wall:.2f}")


ADAMW = reference.load("adamw")
SGD = reference.load("sgd")


# ---- A task defined outside the package: registering it is all it takes ----

class TinyRegression(Task):
    """Linear regression, 4 features, 40 steps: a whole baseline trains in milliseconds."""

    name = "test_tiny_regression"
    description = "4-feature linear regression (defined in tests/test_tasks.py)"
    classification = False
    sizes = {"proxy": dict(steps=40, batch_size=16), "large": dict(steps=400, batch_size=16)}

    def make_data(self):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(256, 4, generator=gen)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
        return x[:192], y[:192], x[192:], y[192:]

    def make_model(self):
        return nn.Sequential(nn.Linear(4, 1), nn.Flatten(0))

    def loss(self, out, y):
        return nn.functional.mse_loss(out, y)


@pytest.fixture(scope="module")
def tiny():
    tasks.register(TinyRegression)
    yield TinyRegression.name
    # there is no public unregister; keep other test modules' view of tasks.names() unchanged
    tasks._REGISTRY.pop(TinyRegression.name, None)


# ---- The interface ----

def test_at_least_six_tasks_each_with_proxy_and_large_sizes():
    assert len(BUILTIN) >= 6, BUILTIN
    for name in BUILTIN:
        assert set(tasks.get(name).sizes) >= {"proxy", "large"}, name
        assert tasks.get(name).description, f"{name} has no description"
        assert repr(tasks.get(name, size="large")) == f"tasks.get({name!r}, size='large')"


def compute(task: Task) -> int:
    """Training compute, up to a constant: steps x batch x parameters (a dense forward and backward
    pass costs about 6 FLOPs per parameter per example)."""
    params = sum(p.numel() for p in task.make_model().parameters())
    return task.steps * task.batch_size * params


@pytest.mark.parametrize("name", BUILTIN)
def test_large_size_has_ten_times_the_compute(name):
    proxy, large = tasks.get(name), tasks.get(name, size="large")
    ratio = compute(large) / compute(proxy)
    assert ratio >= 10.0, f"{name}: large is only {ratio:.1f}x the proxy's compute"
    assert large.time_limit > proxy.time_limit


def test_unknown_task_or_size_is_a_key_error_naming_it():
    with pytest.raises(KeyError, match="no_such_task"):
        tasks.get("no_such_task")
    with pytest.raises(KeyError, match="gigantic"):
        tasks.get("digits_mlp", size="gigantic")


def test_register_rejects_a_second_task_of_the_same_name_and_a_task_without_proxy_size():
    class Impostor(TinyRegression):
        name = BUILTIN[0]

    class NoProxy(TinyRegression):
        name = "test_no_proxy"
        sizes = {"large": dict(steps=10, batch_size=4)}

    class Nameless(TinyRegression):
        name = ""

    for cls in (Impostor, NoProxy, Nameless):
        with pytest.raises(ValueError):
            tasks.register(cls)
    assert set(tasks.names()) - {TinyRegression.name} == set(BUILTIN)


def test_a_task_registered_outside_the_package_is_evaluated_like_the_others(tiny):
    assert tiny in tasks.names()
    task = tasks.get(tiny)
    assert tasks.get(tiny, size="large").steps == 400
    result = task.evaluate(SGD, seed=0, lr=0.1)
    assert result.failure is None
    assert 0.5 < result.fitness <= 1.5
    assert set(result.metrics) >= {"val_loss", "train_loss", "loss_curve", "steps", "wall_time"}
    assert "val_accuracy" not in result.metrics          # a regression task
    # and a program scores against its baseline like on any other task: worse lr, lower fitness
    assert task.evaluate(SGD, seed=0, lr=0.01).fitness < result.fitness


# ---- Every task: the warm start's metrics, speed and reproducibility ----

@pytest.mark.parametrize("name", BUNDLED)
def test_proxy_evaluation_of_the_warm_start(name):
    task = tasks.get(name)
    task.baseline(seed=0)                 # trained once per run; not part of an evaluation's cost
    start, start_cpu = time.perf_counter(), time.process_time()
    result = task.evaluate(ADAMW, seed=0)
    cpu, seconds = time.process_time() - start_cpu, time.perf_counter() - start
    EVAL_SECONDS[name] = (cpu, seconds)

    assert result.failure is None, result.failure
    assert cpu <= EVAL_CPU_SECONDS_LIMIT, f"{name}: evaluation took {cpu:.2f} s of CPU"
    assert seconds <= EVAL_WALL_SECONDS_LIMIT, f"{name}: evaluation took {seconds:.2f} s"
    m = result.metrics
    expected = {"val_loss", "train_loss", "loss_curve", "steps", "wall_time"}
    assert set(m) >= expected, f"{name}: missing {expected - set(m)}"
    assert m["steps"] == task.steps
    assert 0.0 < m["wall_time"] <= seconds
    assert math.isfinite(m["val_loss"]) and math.isfinite(m["train_loss"])
    assert 1 <= len(m["loss_curve"]) <= task.steps
    assert all(math.isfinite(x) for x in m["loss_curve"])
    if task.classification:
        assert 0.0 <= m["val_accuracy"] <= 1.0
    else:
        assert "val_accuracy" not in m
    # The warm start is AdamW at lr 1e-3: it must make real progress on every task, though tuned
    # AdamW (fitness 1.0 by definition) may do better.
    assert 0.5 < result.fitness < 1.5, f"{name}: warm start fitness {result.fitness}"

    again = task.evaluate(ADAMW, seed=0)
    assert again.fitness == result.fitness                     # bit for bit
    assert again.metrics["loss_curve"] == m["loss_curve"]


# ---- Fitness ----

def test_same_program_and_seed_give_the_same_fitness_whatever_the_thread_count(digits, adamw_on_digits):
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        again = digits.evaluate(ADAMW, seed=0)
    finally:
        torch.set_num_threads(old)
    assert again.fitness == adamw_on_digits.fitness
    assert again.metrics["val_loss"] == adamw_on_digits.metrics["val_loss"]
    assert torch.get_num_threads() == old


def test_seed_changes_the_run(tiny):
    task = tasks.get(tiny)
    a, b = task.evaluate(SGD, seed=0, lr=0.1), task.evaluate(SGD, seed=1, lr=0.1)
    assert a.metrics["loss_curve"] != b.metrics["loss_curve"]


def test_tuned_adamw_scores_one(digits):
    base = digits.baseline(seed=0)
    assert base.best_lr in base.losses and base.losses[base.best_lr] == base.best_loss
    assert base.best_loss == min(base.losses.values()) < base.initial_loss
    result = digits.evaluate_optimizer(
        lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=0.01, foreach=True),
        seed=0, lr=base.best_lr)
    assert result.failure is None
    assert result.fitness == pytest.approx(1.0, abs=1e-6)
    # the scale: 0 is the untrained model, 1 tuned AdamW, and it is clipped at the failure score
    assert digits.fitness(base.initial_loss) == 0.0
    assert digits.fitness(base.best_loss) == 1.0
    assert all(digits.fitness(loss) <= 1.0 for loss in base.losses.values() if math.isfinite(loss))
    assert digits.fitness(1e6) == FAILURE_FITNESS


def test_a_better_optimizer_scores_higher(digits, adamw_on_digits):
    barely_moving = digits.evaluate(SGD, seed=0, lr=1e-4)
    assert barely_moving.failure is None
    assert adamw_on_digits.fitness > 0.8
    assert abs(barely_moving.fitness) < 0.2
    assert adamw_on_digits.fitness > barely_moving.fitness + 0.5


# ---- The baseline cache ----

def test_digits_baseline_is_cached_in_the_cache_folder(digits, adamw_on_digits, baseline_cache):
    files = list((baseline_cache / "baselines").glob("digits_mlp-proxy-seed0-*.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    assert stored["best_loss"] == digits.baseline(0).best_loss


def count_training(monkeypatch) -> list:
    calls = []
    train = Task.train

    def counting(self, *args, **kwargs):
        calls.append(self.name)
        return train(self, *args, **kwargs)

    monkeypatch.setattr(Task, "train", counting)
    return calls


def test_baseline_is_written_once_and_reused(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("EVOSEARCH_CACHE", str(tmp_path))
    calls = count_training(monkeypatch)
    first = tasks.get(tiny).baseline(seed=0)
    assert len(calls) == 8                       # one AdamW run per learning rate of the grid
    files = list((tmp_path / "baselines").glob(f"{tiny}-proxy-seed0-*.json"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("the cached baseline was retrained")

    monkeypatch.setattr(Task, "train", no_training)
    task = tasks.get(tiny)                       # a fresh instance: the cache is on disk, not in memory
    assert task.baseline(seed=0) == first
    assert task.fitness(first.best_loss, seed=0) == 1.0
    assert files[0].stat().st_mtime_ns == mtime
    assert list((tmp_path / "baselines").iterdir()) == files    # no stray temporary files


def test_each_seed_has_its_own_baseline(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("EVOSEARCH_CACHE", str(tmp_path))
    task = tasks.get(tiny)
    assert task.baseline(seed=0) != task.baseline(seed=1)
    assert len(list((tmp_path / "baselines").glob("*.json"))) == 2


TRUNCATED = '{"initial_loss": 18.5, "best_loss": 0.09'
CORRUPT = {
    "empty": "",
    "garbage": "not json at all",
    "truncated": TRUNCATED,
    "binary": b"\xff\xfe\x00\x81",
    "missing keys": '{"initial_loss": 1.0}',
}
# Valid JSON of the wrong shape (these used to escape as TypeError/AttributeError, or load as a
# broken Baseline).
WRONG_SHAPE = {
    "a list": "[]",
    "null": "null",
    "losses a list": '{"initial_loss": 1, "best_loss": 0.5, "best_lr": 0.1, "losses": []}',
    "a string loss": '{"initial_loss": 1, "best_loss": "x", "best_lr": 0.1, "losses": {}}',
}


@pytest.mark.parametrize("content", [
    *[pytest.param(v, id=k) for k, v in CORRUPT.items()],
    *[pytest.param(v, id=k) for k, v in WRONG_SHAPE.items()],
])
def test_a_corrupt_baseline_file_is_recomputed(tiny, tmp_path, monkeypatch, content):
    monkeypatch.setenv("EVOSEARCH_CACHE", str(tmp_path))
    good = tasks.get(tiny).baseline(seed=0)
    (path,) = (tmp_path / "baselines").glob("*.json")
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    calls = count_training(monkeypatch)
    assert tasks.get(tiny).baseline(seed=0) == good
    assert len(calls) == 8
    assert json.loads(path.read_text())["best_loss"] == good.best_loss    # and rewritten


class _Coded(TinyRegression):
    def make_model(self):
        return torch.nn.Linear(3, 1)


class _Documented(TinyRegression):
    """The same code as ``_Coded``, with a docstring and a comment."""

    def make_model(self):
        # a comment
        return torch.nn.Linear(3, 1)


class _Recoded(TinyRegression):
    def make_model(self):
        return torch.nn.Linear(3, 2)


def test_the_baseline_key_follows_the_code_not_its_docstrings():
    from tasks.base import _code
    assert _code(_Coded).replace("_Coded", "X") == _code(_Documented).replace("_Documented", "X")
    assert _code(_Coded).replace("_Coded", "X") != _code(_Recoded).replace("_Recoded", "X")


def test_editing_a_model_class_in_another_module_changes_the_baseline_key(tmp_path, monkeypatch):
    """``Task.key`` hashes the classes the model is built of, wherever they are defined (the ViT
    that digits_vit imports from tasks/vit.py), so that editing one retunes the baseline."""
    import importlib
    import sys as system

    task_source = (
        "import torch\nfrom tasks.base import Task\nfrom edited_model import Net\n\n"
        "class Tiny(Task):\n    name = 'tiny_edit'\n    sizes = {'proxy': dict(steps=2, batch_size=4)}\n"
        "    def make_data(self):\n        x = torch.zeros(8, 3)\n        y = torch.zeros(8, dtype=torch.long)\n"
        "        return x, y, x, y\n    def make_model(self):\n        return Net()\n")
    model_source = ("import torch\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.lin = torch.nn.Linear(3, 2)\n    def forward(self, x):\n        return {}\n")
    (tmp_path / "edited_task.py").write_text(task_source)
    monkeypatch.syspath_prepend(str(tmp_path))
    keys = []
    for body in ("self.lin(x)", "torch.relu(self.lin(x))", "self.lin(x)"):
        (tmp_path / "edited_model.py").write_text(model_source.replace("{}", body))
        for name in ("edited_model", "edited_task"):
            system.modules.pop(name, None)
        keys.append(importlib.import_module("edited_task").Tiny().key())
    assert keys[0] != keys[1] and keys[0] == keys[2]
