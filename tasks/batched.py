"""Batched evaluation: K candidate programs trained at once on one task, with the results of
training them one at a time.

``evaluate_batch(task, programs)`` returns what ``[task.evaluate(p) for p in programs]`` returns. The
K models share the initialisation (the seed), the minibatches (``Task.minibatches``) and the
learning-rate schedule of ``Task.train``. Their weights are the rows of one (K, N) buffer and their
gradients the rows of another, each row in the layout of ``evosearch.optim.flat`` (the parameters
concatenated in ``model.parameters()`` order). A step is

  * one forward and one backward for all K models: ``torch.func.functional_call`` under ``vmap``
    (a ``nn.Sequential`` of linear layers and elementwise activations runs layer by layer on the
    stack instead, with only the loss under vmap: the same kernels at less overhead), then the
    backward of the summed losses (d sum / d loss_k is exactly 1, so row k receives model k's
    gradient, accumulated into the zeroed buffer as in ``FlatProgramOptimizer``);
  * each candidate's program on its own row, as ``FlatProgramOptimizer.step`` runs it on a model's
    flat buffer: the same kernels on the same N contiguous values.

Bit-for-bit results. The products inside the K models are batched with the operand order of the
one-model kernels (``tasks.batched_forward``), and whether that makes a task's batched step exact
is checked once per task and batch size, at random weights, against the one-model step
(``_batchable``). Where it is not (convolutions, attention), ``exact=True`` (the default) evaluates
one program at a time, and ``exact=False`` batches anyway: fitness then agrees only approximately
(1e-5 at working learning rates in our runs, up to 1e-2 in chaotic ones). The training-loss values
of cross-entropy tasks (``train_loss``, ``loss_curve``) may differ in the last bit, since vmap
averages the per-example losses in another order; the weights, and so fitness and the validation
metrics, do not.

Failures follow ``Task.train`` candidate by candidate (``loss_failure``, ``weight_failure``, an
exception in the update rule): a failed candidate leaves the batch, the others go on untouched. The
time limit is the batch's: ``len(programs)`` times the per-evaluation limit.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch

from evosearch.lang import reference
from evosearch.optim import hyperparams
from evosearch.optim.compiled import CompiledProgram
from evosearch.optim.factory import to_optimizer

from .batched_forward import batched_loss as _batched_loss
from .devices import sync_every
from .results import FAILURE_FITNESS, EvalResult
from .training import checks_weights, fork_rng, loss_failure, lr_factor, torch_threads, weight_failure

if TYPE_CHECKING:
    from .base import Task


def evaluate_batch(task: Task, programs: Sequence, seed: int = 0, lr: float | Sequence[float] = 1.0,
                   time_limit: float | None = None, exact: bool = True) -> list[EvalResult]:
    """Train one model per program, all at once, and score each: ``result[i]`` is
    ``task.evaluate(programs[i], seed, lr)``. ``lr`` may also be one learning rate per program.
    ``exact=False`` batches tasks whose batched step is not bit-for-bit the one-model step."""
    programs = list(programs)
    lrs = [float(lr)] * len(programs) if isinstance(lr, (int, float)) else [float(v) for v in lr]
    if len(lrs) != len(programs):
        raise ValueError(f"{len(programs)} programs but {len(lrs)} learning rates")
    candidates = [_Candidate.compile(p, r) for p, r in zip(programs, lrs)]
    if len(candidates) == 1:   # nothing to share: the one-model path is faster
        return [task.evaluate(programs[0], seed, lrs[0], time_limit)]
    limit = (task.time_limit if time_limit is None else time_limit) * len(programs)
    outcomes = _train(task, candidates, seed, limit, exact) if candidates else []
    results = []
    for prog, r, outcome in zip(programs, lrs, outcomes):
        if outcome is _ONE_AT_A_TIME:
            results.append(task.evaluate(prog, seed, r, time_limit))
        elif isinstance(outcome, str):
            results.append(EvalResult(FAILURE_FITNESS, {}, outcome))
        else:
            results.append(EvalResult(task.fitness(outcome["val_loss"], seed), outcome, None))
    return results


_ONE_AT_A_TIME = object()   # an outcome: this candidate is to be evaluated on its own


@dataclass
class _Candidate:
    """One program and its optimizer state: what ``FlatProgramOptimizer`` keeps for a param group."""
    compiled: CompiledProgram
    hyper: dict             # the bound literals (betas, weight_decay) at their program values
    lr: float
    per_tensor: bool        # per-tensor reductions run on per-parameter views, as in flat mode
    states: list = field(default_factory=list)
    t: int = 0
    curve: list = field(default_factory=list)
    failure: str | None = None

    @classmethod
    def compile(cls, prog, lr: float) -> "_Candidate":
        spec = hyperparams.infer(prog)
        compiled = CompiledProgram(prog, spec.bindings)
        per_tensor = any(st.prim.reduces == "tensor" for st in compiled.steps)
        return cls(compiled, dict(spec.defaults), lr, per_tensor)

    def step(self, w: torch.Tensor, g: torch.Tensor, layout: "_Layout", lr: float):
        """Run the program on one model's flat weights and gradient; returns (weight tensors,
        updates, state tensors, new states) for the caller to subtract and copy."""
        if not self.states:
            self.states = [torch.zeros_like(w) for _ in self.compiled.program.state_names]
        self.t += 1
        if self.per_tensor:
            ws, gs, states = layout.views(w), layout.views(g), [layout.views(s) for s in self.states]
        else:
            ws, gs, states = [w], [g], [[s] for s in self.states]
        updates, new_states = self.compiled(ws, gs, states, lr, float(self.t), self.hyper, True)
        return ws, updates, [x for s in states for x in s], [x for s in new_states for x in s]


class _Layout:
    """Where each parameter lives in a model's flat vector."""

    def __init__(self, model: torch.nn.Module):
        named = list(model.named_parameters())
        self.params = [p for _, p in named]
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for p in self.params]
        self.sizes = [p.numel() for p in self.params]
        self.numel = sum(self.sizes)

    def flat(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Per-parameter views of flat vectors (..., N), shaped (..., *param.shape)."""
        out, offset, lead = [], 0, flat.shape[:-1]
        for shape, n in zip(self.shapes, self.sizes):
            out.append(flat[..., offset:offset + n].view(*lead, *shape))
            offset += n
        return out


class _Stack:
    """The weights and gradients of the models in training, one row each, and the leaves that the
    batched forward differentiates: views of the weight rows whose ``.grad`` are views of the
    gradient rows, so that the backward accumulates into the zeroed buffer."""

    def __init__(self, weights: torch.Tensor, layout: _Layout):
        self.weights = weights
        self.grads = torch.zeros_like(weights)
        self.leaves = []
        for w, g in zip(layout.views(weights), layout.views(self.grads)):
            leaf = w.detach().requires_grad_()
            leaf.grad = g
            self.leaves.append(leaf)

    def backward(self, batched_loss, xb, yb) -> torch.Tensor:
        """One forward and backward of every row; returns the K losses."""
        self.grads.zero_()
        losses = batched_loss(self.leaves, xb, yb)
        losses.sum().backward()
        return losses.detach()


@contextlib.contextmanager
def _training(device: torch.device):
    """One thread, the caller's random state left alone, and quiet about what batching implies:
    the leaves view rows of a (K, N) buffer (autograd warns that their strides are unusual), and
    vmap falls back to a loop for some operations (it warns of the cost)."""
    with torch_threads(1), fork_rng(device), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout")
        warnings.filterwarnings("ignore", message="There is a performance drop because we have not")
        yield


def _train(task: Task, candidates: list[_Candidate], seed: int, limit: float, exact: bool) -> list:
    """Per candidate: the metrics of ``Task.train``, why it failed, or ``_ONE_AT_A_TIME``."""
    with _training(task.device):
        model = task.model(seed)
        with torch.no_grad():
            loss0 = task.metrics(model, task.data[2], task.data[3])["val_loss"]
        layout = _Layout(model)
        batched_loss = _batched_loss(task, model, layout)
        active = list(range(len(candidates)))      # the candidate on each row
        if not _batchable(task, model, layout, batched_loss, len(active), exact):
            return [_ONE_AT_A_TIME] * len(candidates)
        stack = _Stack(layout.flat().expand(len(active), layout.numel).clone(), layout)
        start = time.perf_counter()
        every = sync_every(task.device)
        unread: list[torch.Tensor] = []      # the (K,) losses of steps not read back yet
        for step, (xb, yb) in enumerate(task.minibatches(seed)):
            unread.append(stack.backward(batched_loss, xb, yb))
            if len(unread) >= every or checks_weights(step, task.steps):
                _read_losses(candidates, active, unread, loss0, step)
                unread = []
            _update(candidates, active, stack, layout, lr_factor(step, task.steps))
            if checks_weights(step, task.steps):
                _check_weights(candidates, active, stack, step)
            if time.perf_counter() - start > limit:
                for k in active:
                    candidates[k].failure = candidates[k].failure or (
                        f"time limit of {limit:.3g} s exceeded at step {step}")
            rows = [row for row, k in enumerate(active) if candidates[k].failure is None]
            if len(rows) < len(active):   # drop failed models: they would cost as much as the others
                if unread:                # (the losses not read yet are those of these rows)
                    _read_losses(candidates, active, unread, loss0, step)
                    unread = []
                    rows = [row for row, k in enumerate(active) if candidates[k].failure is None]
                active = [active[row] for row in rows]
                if not active:
                    break
                if not _batchable(task, model, layout, batched_loss, len(active), exact):
                    for k in active:
                        candidates[k].failure = _ONE_AT_A_TIME
                    active = []
                    break
                stack = _Stack(stack.weights[rows].clone(), layout)
        finals = dict(zip(active, stack.weights))
        wall = time.perf_counter() - start
        return [c.failure if c.failure is not None
                else _metrics(task, model, layout, finals[k], c, loss0, wall / len(candidates))
                for k, c in enumerate(candidates)]


def _read_losses(candidates, active, unread: list[torch.Tensor], loss0: float, step: int) -> None:
    """The losses of the steps up to ``step`` into each live candidate's curve, read from the
    device at once, with ``Task.train``'s loss check at each step."""
    first = step - len(unread) + 1
    for offset, losses in enumerate(torch.stack(unread).tolist()):
        for k, value in zip(active, losses):
            c = candidates[k]
            c.curve.append(value)
            c.failure = c.failure or loss_failure(c.curve, loss0, first + offset)


@torch.no_grad()
def _update(candidates, active, stack: _Stack, layout: _Layout, factor: float) -> None:
    """Each live candidate's program on its row; then, as ``FlatProgramOptimizer.step`` does,
    w -= update and the states take their new values (one multi-tensor call for all rows).

    (Stepping the K programs in lockstep, with the statements they share joined into one
    multi-tensor call, saved 2-4% of a batched evaluation: on CPU a ``_foreach_*`` call still runs
    its kernel tensor by tensor, and the Python bookkeeping ate the rest. It was removed.)"""
    weights, updates, olds, news = [], [], [], []
    for row, k in enumerate(active):
        c = candidates[k]
        if c.failure is not None:
            continue
        try:
            w, u, old, new = c.step(stack.weights[row], stack.grads[row], layout, c.lr * factor)
        except Exception as exc:  # noqa: BLE001 - a candidate's arithmetic must not stop the batch
            c.failure = f"exception during training: {type(exc).__name__}: {exc}"
            continue
        weights += w
        updates += u
        olds += old
        news += new
    if weights:
        torch._foreach_sub_(weights, updates)
    if olds:
        torch._foreach_copy_(olds, news)


@torch.no_grad()
def _check_weights(candidates, active, stack: _Stack, step: int) -> None:
    """``Task.train``'s check row by row: Python's ``max`` over the per-parameter maxima of |w|
    (so that a NaN is caught exactly where ``Task.train`` catches it)."""
    per_param = torch.stack([leaf.abs().flatten(1).amax(1) for leaf in stack.leaves], 1).tolist()
    for row, k in enumerate(active):
        c = candidates[k]
        c.failure = c.failure or weight_failure(max(per_param[row]), step)


@torch.no_grad()
def _metrics(task: Task, model, layout: _Layout, weights, c: _Candidate, loss0: float, wall: float):
    """``Task.train``'s final metrics, from the real model loaded with the candidate's weights."""
    torch.nn.utils.vector_to_parameters(weights, layout.params)
    metrics = task.metrics(model, task.data[2], task.data[3])
    if not math.isfinite(metrics["val_loss"]):
        return "non-finite validation loss"
    metrics.update(train_loss=c.curve[-1], initial_val_loss=loss0,
                   loss_curve=c.curve[:: max(1, len(c.curve) // 50)], steps=task.steps, wall_time=wall)
    return metrics


_BATCHING: dict[tuple, str] = {}   # (task setup, K) -> "exact", "inexact" or "unbatchable"


def _batchable(task: Task, model, layout: _Layout, batched_loss, size: int, exact: bool) -> bool:
    """Whether to train ``size`` models of ``task`` at once: vmap must run the model, and with
    ``exact`` a batched step must give each model bit for bit the gradient that ``Task.train``
    computes for it alone. Checked once per task setup and batch size, at random weights on the
    first minibatch."""
    key = (_setup(task), size)
    if key not in _BATCHING:
        _BATCHING[key] = _compare(task, model, layout, batched_loss, size)
    return _BATCHING[key] == "exact" or (_BATCHING[key] == "inexact" and not exact)


_PAYS: dict[tuple, bool] = {}      # (task setup, K) -> whether batching K models saves time


def pays(task: Task, size: int, margin: float = 0.9) -> bool:
    """Whether training ``size`` models of ``task`` at once is worth it: one batched training step
    of ``size`` AdamW-program models (forward, backward, update) takes less than ``margin`` times
    ``size`` one-model steps (the least of three timings each, after a first step; measured once
    per task setup and size). Small models gain several times; where products bound the step
    (large batches) batching saves nothing. Results never depend on the answer, only time does:
    this is for callers that may choose (the search's ``[executor] batched``)."""
    key = (_setup(task), size)
    if key not in _PAYS:
        prog = reference.load("adamw")
        with _training(task.device):
            model = task.model(0)
            layout = _Layout(model)
            batched_loss = _batched_loss(task, model, layout)
            xb, yb = next(task.minibatches(0))
            candidates = [_Candidate.compile(prog, 1.0) for _ in range(size)]
            stack = _Stack(layout.flat().expand(size, layout.numel).clone(), layout)
            optimizers = []
            for _ in range(size):
                one = task.model(0)
                optimizers.append((one, to_optimizer(prog, flat=True)(one.parameters(), lr=1.0)))

            def together():
                stack.backward(batched_loss, xb, yb)
                _update(candidates, range(size), stack, layout, 1.0)

            def alone():
                for one, opt in optimizers:
                    opt.zero_grad()
                    task.loss(one(xb), yb).backward()
                    opt.step()
            try:
                _PAYS[key] = _least_time(together, task.device) < margin * _least_time(alone, task.device)
            except Exception:  # noqa: BLE001 - vmap cannot run the model: evaluate_batch falls back
                _PAYS[key] = False
    return _PAYS[key]


def _least_time(fn, device: torch.device, repeats: int = 3) -> float:
    """The least time of ``fn`` over ``repeats`` calls: CPU time on the CPU (what another process
    on the machine does not change), wall time to the device's end of the work on a GPU."""
    cuda = device.type == "cuda"
    clock = time.perf_counter if cuda else time.process_time
    fn()      # first calls allocate
    best = float("inf")
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize(device)
        t0 = clock()
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        best = min(best, clock() - t0)
    return best


def _setup(task: Task) -> tuple:
    return (type(task).__module__, type(task).__qualname__, task.size, repr(sorted(task.config.items())),
            task.device.type)


def _compare(task: Task, model, layout: _Layout, batched_loss, size: int) -> str:
    """One batched step against ``size`` one-model steps, on the real model."""
    xb, yb = next(task.minibatches(0))
    base = layout.flat()
    noise = torch.randn(size, layout.numel, generator=torch.Generator().manual_seed(1)).to(base.device)
    weights = base + 0.1 * noise
    stack = _Stack(weights.clone(), layout)
    try:
        stack.backward(batched_loss, xb, yb)
    except Exception:  # noqa: BLE001 - an operation without a batching rule, random layers, ...
        return "unbatchable"
    grad = torch.zeros(layout.numel, device=base.device)
    same = True
    for k in range(size):   # the one-model step, on flat buffers as FlatProgramOptimizer has them
        grad.zero_()
        for p, w, g in zip(layout.params, layout.views(weights[k].clone()), layout.views(grad)):
            p.data, p.grad = w, g
        task.loss(model(xb), yb).backward()
        same = same and torch.equal(grad, stack.grads[k])
    for p, w in zip(layout.params, layout.views(base)):
        p.data, p.grad = w, None
    return "exact" if same else "inexact"
