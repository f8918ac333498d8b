"""Batched evaluation (``tasks.batched``) against ``Task.evaluate`` one program at a time: the same
fitness bit for bit, failures confined to the candidate that fails, and a fall-back to one at a time
where a model cannot be batched exactly.

Fitness here is minus the validation loss (``scored_by_val_loss``): the real fitness is a fixed
function of it, and the tuned baseline it needs would cost minutes on a cold cache. The programs run
at learning rates ten times their working ones where that keeps them training: chaotic runs, in which
a last-bit difference in one gradient grows to 1e-3..1e-2 in fitness (what plain vmap gave).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import tasks
from evosearch import Program, reference
from evosearch.optim.compiled import CompiledProgram
from tasks.base import Task
from tasks.batched import evaluate_batch, pays
from tasks.batched_forward import sequential

PROGRAMS = [("adamw", 10.0), ("lion", 1e-3), ("signum", 1e-2), ("sgd_momentum", 0.01)]

# Ways to break down, each of which must fail alone: ascending the gradient (the loss diverges), weights
# that jump to 1e29 (the loss is no longer finite), weights set to 2e4 by the update of step 9 (t = 10,
# where t ** 60 * 1e-60 reaches 1), which only the check of the weights after that step sees.
ASCENT = Program.parse("def train(w, g, lr):\n    update = g * -1.0\n    return update\n")
JUMP = Program.parse("def train(w, g, lr):\n    update = w * -1e30\n    return update\n")
BLOW_UP = Program.parse("def train(w, g, lr, t):\n    s = power(t, 60.0)\n    s = s * 1e-60\n"
                        "    d = w - 20000.0\n    update = d * s\n    return update\n")
# Per-tensor and global reductions: these programs run on per-parameter views / the whole row.
NORMALISED = Program.parse(
    "def train(w, g, lr):\n    n = norm(g)\n    update = g / n\n    update = update * lr\n    return update\n")
CLIPPED = Program.parse(
    "def train(w, g, m, lr):\n    m = interp(g, m, 0.9)\n    c = clip_by_global_norm(m, 0.1)\n"
    "    update = c * lr\n    return update, m\n")


def scored_by_val_loss(task: Task, monkeypatch) -> None:
    monkeypatch.setattr(task, "fitness", lambda val_loss, seed=0: -val_loss)


def count_one_at_a_time(task: Task, monkeypatch) -> list:
    """Record the programs that ``evaluate_batch`` hands to ``task.evaluate``."""
    calls, evaluate = [], task.evaluate

    def recorded(prog, *args, **kwargs):
        calls.append(prog)
        return evaluate(prog, *args, **kwargs)
    monkeypatch.setattr(task, "evaluate", recorded)
    return calls


def assert_same(alone, batched, exact_losses: bool = True) -> None:
    assert len(alone) == len(batched)
    for a, b in zip(alone, batched):
        assert b.failure == a.failure
        assert b.fitness == a.fitness
        if a.failure is None:
            assert b.metrics["val_loss"] == a.metrics["val_loss"]
            assert b.metrics.get("val_accuracy") == a.metrics.get("val_accuracy")
            # cross-entropy: vmap averages the per-example losses in another order
            tolerance = 0 if exact_losses else 1e-6
            assert b.metrics["train_loss"] == pytest.approx(a.metrics["train_loss"], rel=tolerance, abs=0)


@pytest.mark.parametrize("name", ["heavy_tail", "quadratic", "digits_mlp", "large_batch"])
def test_batched_fitness_is_one_at_a_time_bit_for_bit(name, monkeypatch):
    task = tasks.get(name)
    scored_by_val_loss(task, monkeypatch)
    programs = [reference.load(n) for n, _ in PROGRAMS]
    lrs = [lr for _, lr in PROGRAMS]
    alone = [task.evaluate(p, 0, lr) for p, lr in zip(programs, lrs)]
    fallbacks = count_one_at_a_time(task, monkeypatch)
    batched = evaluate_batch(task, programs, 0, lrs)
    assert fallbacks == []
    assert_same(alone, batched, exact_losses=not task.classification)


def test_a_failing_candidate_fails_alone(monkeypatch):
    """Breakdowns of four kinds (divergence, non-finite loss, weights too large, an exception in the
    update rule) leave the batch one by one; the others finish exactly as they would alone."""
    task = tasks.get("heavy_tail")
    scored_by_val_loss(task, monkeypatch)
    raising = reference.load("rmsprop")
    call = CompiledProgram.__call__

    def flaky(self, w, g, states, lr, t=None, hyper=None, foreach=True):
        if self.program == raising and t == 7.0:
            raise FloatingPointError("boom")
        return call(self, w, g, states, lr, t, hyper, foreach)
    monkeypatch.setattr(CompiledProgram, "__call__", flaky)
    programs = [reference.load("adamw"), ASCENT, reference.load("lion"), JUMP, raising,
                reference.load("signum"), BLOW_UP, NORMALISED, CLIPPED]
    lrs = [1.0, 1.0, 1e-3, 1.0, 1e-3, 1e-2, 1.0, 1e-2, 0.1]
    alone = [task.evaluate(p, 0, lr) for p, lr in zip(programs, lrs)]
    assert [r.failure is not None for r in alone] == [False, True, False, True, True, False, True, False, False]
    assert "diverged" in alone[1].failure and "non-finite" in alone[3].failure
    assert alone[4].failure == "exception during training: FloatingPointError: boom"
    assert alone[6].failure.startswith("parameters blew up at step 9")
    fallbacks = count_one_at_a_time(task, monkeypatch)
    assert_same(alone, evaluate_batch(task, programs, 0, lrs))
    assert fallbacks == []


def test_learning_rates_and_the_task_method(monkeypatch):
    task = tasks.get("quadratic")
    scored_by_val_loss(task, monkeypatch)
    programs = [reference.load("sgd"), reference.load("sgd")]
    rng = torch.random.get_rng_state()
    same = task.evaluate_batch(programs, lr=[0.1, 0.1])
    assert same[0] == same[1]
    assert torch.equal(torch.random.get_rng_state(), rng)   # the caller's random state is left alone
    assert_same(task.evaluate_batch(programs, lr=[0.1, 0.3]),
                [task.evaluate(programs[0], 0, 0.1), task.evaluate(programs[1], 0, 0.3)])
    assert evaluate_batch(task, []) == []
    with pytest.raises(ValueError, match="learning rates"):
        evaluate_batch(task, programs, lr=[0.1])


class _Blobs(Task):
    """Two Gaussian blobs: a tiny test task (not registered)."""
    name = "test_blobs"
    sizes = {"proxy": dict(steps=25, batch_size=32)}

    def make_data(self):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(256, 1, 6, 6, generator=gen)
        y = (x.mean((1, 2, 3)) > 0).long()
        x = x + y.view(-1, 1, 1, 1) * 0.5
        return x[:192], y[:192], x[192:], y[192:]


class _DropoutNet(_Blobs):
    def make_model(self):
        return nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


class _ConvNet(_Blobs):
    def make_model(self):
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))


def test_a_model_vmap_cannot_run_is_evaluated_one_at_a_time(monkeypatch):
    task = _DropoutNet()    # random layers: vmap refuses them
    scored_by_val_loss(task, monkeypatch)
    programs = [reference.load("adamw"), reference.load("signum"), reference.load("sgd")]
    lrs = [1.0, 1e-3, 0.1]
    alone = [task.evaluate(p, 0, lr) for p, lr in zip(programs, lrs)]
    fallbacks = count_one_at_a_time(task, monkeypatch)
    for exact in (True, False):
        assert_same(alone, evaluate_batch(task, programs, 0, lrs, exact=exact))
    assert len(fallbacks) == 2 * len(programs)


def test_a_model_batched_inexactly_is_batched_only_when_allowed(monkeypatch):
    task = _ConvNet()       # vmap batches convolutions with other kernels than the one-model path
    scored_by_val_loss(task, monkeypatch)
    programs = [reference.load("adamw"), reference.load("signum"), reference.load("sgd")]
    lrs = [1.0, 1e-3, 0.1]
    alone = [task.evaluate(p, 0, lr) for p, lr in zip(programs, lrs)]
    fallbacks = count_one_at_a_time(task, monkeypatch)
    assert_same(alone, evaluate_batch(task, programs, 0, lrs))
    assert len(fallbacks) == len(programs)
    approximate = evaluate_batch(task, programs, 0, lrs, exact=False)
    assert len(fallbacks) == len(programs)
    for a, b in zip(alone, approximate):
        assert b.failure is None and b.fitness == pytest.approx(a.fitness, abs=1e-5)


class _FlatMLP(_Blobs):
    """Images flattened from dimension 1, a layer without bias, a GELU: the layer-by-layer path."""
    def make_model(self):
        return nn.Sequential(nn.Flatten(), nn.Linear(36, 12, bias=False), nn.GELU(), nn.Linear(12, 2))


def test_sequential_models_run_layer_by_layer_bit_for_bit(monkeypatch):
    assert sequential(_FlatMLP().make_model()) is not None
    assert sequential(tasks.get("heavy_tail").make_model()) is not None
    assert sequential(_DropoutNet().make_model()) is None     # random: vmap decides (and refuses)
    assert sequential(_ConvNet().make_model()) is None
    act = nn.ReLU()       # used twice: named_children would list it once
    assert sequential(nn.Sequential(nn.Linear(4, 4), act, nn.Linear(4, 4), act)) is None
    hooked = nn.Sequential(nn.Linear(4, 2))
    hooked[0].register_forward_hook(lambda module, args, out: out * 2)
    assert sequential(hooked) is None
    task = _FlatMLP()
    scored_by_val_loss(task, monkeypatch)
    programs = [reference.load("adamw"), reference.load("signum"), reference.load("sgd"), NORMALISED]
    lrs = [10.0, 1e-2, 0.3, 1e-2]
    alone = [task.evaluate(p, 0, lr) for p, lr in zip(programs, lrs)]
    fallbacks = count_one_at_a_time(task, monkeypatch)
    assert_same(alone, evaluate_batch(task, programs, 0, lrs), exact_losses=False)
    assert fallbacks == []


def test_batching_pays_on_a_small_model_and_never_where_vmap_cannot_run():
    # heavy_tail's step is overhead: 16 models at once cost ~4x less than one by one (a wide margin
    # for a timing); the dropout model cannot run under vmap at all
    assert pays(tasks.get("heavy_tail"), 16)
    assert not pays(_DropoutNet(), 4)
