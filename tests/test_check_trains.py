"""What abstract execution accepts, training runs (``evosearch.lang.kinds``; docs/design.md, "The
program language", Kinds): a program that passes ``check`` never raises when an optimizer made from
it steps, on parameters of any shape: a 0-d one, a one-element one, a matrix. Values may overflow
(a diverged run is scored as a failure); exceptions may not (one lost 3 of 300 candidates of a search).
"""

from __future__ import annotations

import random
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from programs import checked_walk
from torch import nn

from evosearch import Program, reference, to_optimizer
from evosearch.search.mutation import MutationConfig

SHAPES = ((), (1,), (3, 4), (5,))


def _train(prog: Program, steps: int = 3) -> None:
    """A few steps of every optimizer path a program trains on: multi-tensor and per-tensor
    ``ProgramOptimizer``, and the flat buffers that tasks train with."""
    for flat, foreach in ((False, True), (False, False), (True, True), (True, False)):
        gen = torch.Generator().manual_seed(0)
        params = [nn.Parameter(torch.randn(s, generator=gen)) for s in SHAPES]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = to_optimizer(prog, flat=flat, lr_check=False)(params, lr=0.01, foreach=foreach)
        for _ in range(steps):
            for p in params:
                grad = torch.randn(p.shape, generator=gen)
                if p.grad is None:
                    p.grad = grad
                else:
                    p.grad.copy_(grad)       # the flat optimizer's gradients are views of its buffer
            opt.step()


def test_a_moving_average_of_a_reduction():
    """`v = interp(global_norm(g), v, 0.9)` passed check and failed in training: the interp wrote
    the tensor v into the 0-d tensor that the reduction gives."""
    for reduction in ("global_norm(g)", "norm(g)", "dot(g, w)", "cosine_sim(g, m)"):
        _train(Program.parse(f"""def train(w, g, m, v, lr):
    n = {reduction}
    v = interp(n, v, 0.9)
    m = interp(g, m, 0.9)
    m = interp(m, n, 0.5)
    u = m * v
    u = u * lr
    return u, m, v
"""))


# Half the walks insert and change to these only: reductions, and the primitives that take a tensor or
# a scalar in each argument, where a reduction's one number per tensor meets whole tensors.
MIXING = ("norm", "dot", "cosine_sim", "global_norm", "clip_by_global_norm", "interp", "max", "min", "clip",
          "power", "divide", "multiply", "add", "subtract", "negative", "sqrt", "cube", "sign", "exp")


@st.composite
def mutants(draw):
    """A reference program after a random walk of the search's own mutations, each step kept
    only if it passes check (as the search keeps children)."""
    prog = reference.load(draw(st.sampled_from(reference.names())))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    config = MutationConfig(primitives=MIXING if draw(st.booleans()) else ())
    for prog, _ in checked_walk(prog, rng, config, draw(st.integers(1, 16))):
        pass
    return prog


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutants())
def test_mutants_that_pass_check_train_without_exceptions(prog):
    try:
        _train(prog)
    except Exception as exc:  # noqa: BLE001 - any exception is the failure
        pytest.fail(f"{type(exc).__name__}: {exc}\n{prog}")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutants(), min_size=4, max_size=4))
def test_mutants_that_pass_check_train_on_a_real_task_one_at_a_time_and_batched(programs):
    """The same on a real task, through the code that scores candidates in a search: training on
    iris_mlp (51 full-batch steps), each program alone and the four trained together (``evaluate_batch``); a
    failure is allowed (a diverged run), an exception during training is not."""
    import tasks
    task = tasks.get("iris_mlp")
    alone = [task.evaluate(p, seed=0, lr=1.0) for p in programs]
    together = task.evaluate_batch(programs, seed=0, lr=1.0)
    for prog, r in zip(programs * 2, alone + together):
        assert not (r.failure or "").startswith("exception"), f"{r.failure}\n{prog}"
