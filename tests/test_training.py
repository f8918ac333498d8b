"""The training loop's checks (``tasks.training``; README, "Tasks": failures are results): a
non-finite loss or parameters, a diverging loss, parameters that blow up, an exception in the
optimizer and the time limit each score -1.0 with a failure that says which, and the next
evaluation is unaffected. ``Task.train`` itself raises ``TrainingFailure``."""

from __future__ import annotations

import pytest
import torch

from evosearch import Program, reference, to_optimizer
import tasks
from tasks import FAILURE_FITNESS, TrainingFailure, TrainingRun


@pytest.fixture(scope="module", autouse=True)
def baseline_cache(evosearch_cache):
    """The session's temporary cache (tests/conftest.py), for every test of this module."""
    return evosearch_cache


def program(text: str) -> Program:
    return Program.parse(text.strip() + "\n")


ADAMW = reference.load("adamw")


# Each program trips exactly one of Task.train's checks. Arithmetic `*` is unguarded, so a product of
# two 1e30 literals overflows float32; `t` (the step count) switches an update on at step 10, after
# that step's loss was computed and just before the parameter check that runs every 10 steps.
INF = """
def train(w, g, lr):
    u = g * 1e30
    u = u * 1e30
    return u
"""
NAN = """
def train(w, g, lr):
    u = g * 1e30
    u = u * 1e30
    u = u - u
    return u
"""
ASCENT = """
def train(w, g, lr):
    u = g * -1.0
    u = u * lr
    return u
"""
NONFINITE_AT_STEP_10 = """
def train(w, g, t, lr):
    d = t - 9.5
    s = sign(d)
    s = s + 1.0
    u = g * s
    u = u * 1e30
    u = u * 1e30
    return u
"""
JUMP_AT_STEP_10 = """
def train(w, g, t, lr):
    d = t - 9.5
    s = sign(d)
    s = s + 1.0
    z = w * 0.0
    z = z + 1e5
    u = z * s
    return u
"""


class ExplodingSGD(torch.optim.SGD):
    def step(self, closure=None):
        raise RuntimeError("optimizer step exploded")


def refuse(params, lr):
    raise ValueError("cannot build this optimizer")


FAILURES = {
    "inf update": (lambda task: task.evaluate(program(INF)), "non-finite training loss at step 1"),
    "nan update": (lambda task: task.evaluate(program(NAN)), "non-finite training loss at step 1"),
    "diverging loss": (lambda task: task.evaluate(program(ASCENT)), "training loss diverged"),
    "non-finite parameters": (lambda task: task.evaluate(program(NONFINITE_AT_STEP_10)),
                              "non-finite parameters at step 9"),
    "parameters blow up": (lambda task: task.evaluate(program(JUMP_AT_STEP_10)),
                           "parameters blew up at step 9"),
    "exception in step": (lambda task: task.evaluate_optimizer(lambda p, lr: ExplodingSGD(p, lr=lr)),
                          "exception during training: RuntimeError: optimizer step exploded"),
    "exception in constructor": (lambda task: task.evaluate_optimizer(refuse),
                                 "exception during training: ValueError: cannot build this optimizer"),
    "time limit": (lambda task: task.evaluate(ADAMW, time_limit=0.0), "time limit of 0 s exceeded at step 0"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_failure_is_a_result_and_the_next_evaluation_is_unaffected(digits, adamw_on_digits, case):
    run, message = FAILURES[case]
    threads = torch.get_num_threads()
    result = run(digits)
    assert result.fitness == FAILURE_FITNESS == -1.0
    assert result.failure is not None and message in result.failure, result.failure
    assert torch.get_num_threads() == threads
    after = digits.evaluate(ADAMW, seed=0)
    assert after.failure is None
    assert after.fitness == adamw_on_digits.fitness


def test_a_tiny_time_limit_stops_training_part_way(digits):
    result = digits.evaluate(ADAMW, time_limit=0.02)
    assert result.fitness == FAILURE_FITNESS
    step = int(result.failure.rsplit("step ", 1)[1])
    assert 0 <= step < digits.steps - 1, result.failure


def test_train_itself_raises_training_failure(digits):
    ascent = to_optimizer(program(ASCENT), flat=True)
    with pytest.raises(TrainingFailure, match="diverged"):
        digits.train(lambda params, lr: ascent(params, lr=lr), seed=0, lr=1.0)


def test_an_exception_in_a_step_is_raised_by_train_and_recorded_by_the_run(digits):
    """A bug is not a breakdown: ``Task.train`` raises it as it is (so a baseline's tuning cannot
    cache it as a failed learning rate); the run records it, and ``evaluate_optimizer`` scores it."""
    with pytest.raises(RuntimeError, match="optimizer step exploded"):
        digits.train(lambda p, lr: ExplodingSGD(p, lr=lr), seed=0, lr=0.1)
    run = TrainingRun(digits, lambda p, lr: ExplodingSGD(p, lr=lr), seed=0, lr=0.1)
    with pytest.raises(RuntimeError):
        run.advance(5)
    assert run.failure == "exception during training: RuntimeError: optimizer step exploded"
    assert run.step == 5 and run.val_loss() == float("inf")


def test_tuning_a_baseline_does_not_hide_a_bug(tmp_path, monkeypatch):
    monkeypatch.setenv("EVOSEARCH_CACHE", str(tmp_path))
    monkeypatch.setattr(torch.optim.AdamW, "step", ExplodingSGD.step)
    with pytest.raises(RuntimeError, match="optimizer step exploded"):
        tasks.get("quadratic").baseline(seed=0)
    assert not (tmp_path / "baselines").exists() or not list((tmp_path / "baselines").iterdir())
