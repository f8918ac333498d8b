"""The training loop: one fresh model trained on a task with one optimizer, resumable.

``Task.train`` runs it to the end in one go; ``evosearch tune`` runs it in chunks and checkpoints it
between them (PBT's exploit copies one run's state into another). Both are this code, so they train
identically: a run cut into chunks, saved and loaded, ends with the weights of one uninterrupted run.

Each step: the learning rate ``lr`` times the cosine schedule (``lr_factor``), the minibatch the
task's sampler draws (``Task.sampler``, ``Minibatches`` by default), forward, the loss checks
(``loss_failure``), backward, the optimizer's step, and every ``WEIGHT_CHECK_EVERY`` steps the
weight check (``weight_failure``); the time limit counts training time over all chunks. On a GPU
the losses are read back to the host every ``devices.sync_every`` steps (each step on the CPU), so
a failure is caught a few steps late there and reported at the step where it happened.
``tasks.batched`` trains K models at once with the same schedule, sampler and checks.

Randomness: the model is initialised from ``torch.manual_seed(seed)``; whatever the model draws
while training (dropout) continues from there in a random state the run keeps for itself (and in
its checkpoints), so a run never moves the caller's random state and the caller's never moves it.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch

from . import devices

if TYPE_CHECKING:
    from .base import Task

WEIGHT_CHECK_EVERY = 10   # steps between checks of the largest |w| (and at the last step)
DIVERGENCE_WINDOW = 50    # losses whose median the divergence check compares with the start
SAMPLER_SEED_OFFSET = 7919   # the minibatch sampler is seeded with seed + this: apart from the init
CHECKPOINT_FILE = "training_state.pt"


class TrainingFailure(Exception):
    """Training stopped early; ``str(exc)`` says why."""


@contextmanager
def torch_threads(n: int):
    """Evaluate with a fixed thread count: results are then bit-for-bit reproducible."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def lr_factor(step: int, steps: int) -> float:
    """Cosine decay from 1 to 0.1 over training (the same schedule for candidates and baselines)."""
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * step / steps))


def loss_failure(curve: list[float], loss0: float, step: int) -> str | None:
    """Why training must stop at ``step``, whose training loss is ``curve[-1]``, or None."""
    value = curve[-1]
    if not math.isfinite(value):
        return f"non-finite training loss at step {step}"
    # diverged: the median of the last (up to) 50 losses, robust to heavy-tailed spikes, is far
    # above the starting loss. Only once there are 10: a single noisy minibatch (heavy_tail's
    # Student-t targets) once failed some seeds at step 0, before any update, whatever the
    # optimizer; and a window of 10 failed heavy_tail's 2,000-step large size at step 946 for
    # every learning rate (the untrained model's windowed median reaches 29 there, 9.8 with 50).
    if len(curve) < 10:
        return None
    window = sorted(curve[-DIVERGENCE_WINDOW:])
    recent = window[len(window) // 2]
    if recent > 10.0 * max(loss0, 1e-3) + 10.0:
        return (f"training loss diverged at step {step} (median of the last {len(window)}: {recent:.3g}, "
                f"initial {loss0:.3g})")
    return None


def weight_failure(biggest: float, step: int) -> str | None:
    """Why training must stop, given the largest |w| after ``step``, or None."""
    if not math.isfinite(biggest):
        return f"non-finite parameters at step {step}"
    if biggest > 1e4:
        return f"parameters blew up at step {step} (max |w| = {biggest:.3g})"
    return None


def checks_weights(step: int, steps: int) -> bool:
    """Whether the weight check runs after ``step`` (every ``WEIGHT_CHECK_EVERY`` and the last)."""
    return step % WEIGHT_CHECK_EVERY == WEIGHT_CHECK_EVERY - 1 or step == steps - 1


def fork_rng(device: torch.device):
    """``torch.random.fork_rng`` of the CPU and, on a GPU, of that GPU only (not every GPU the
    process can see: a worker training on the CPU need not start CUDA on a GPU node)."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


def _rng_state(device: torch.device):
    """The random state a run keeps for itself: the CPU generator's, and on a GPU also the GPU's
    (dropout draws there)."""
    if device.type == "cuda":
        return torch.get_rng_state(), torch.cuda.get_rng_state(device)
    return torch.get_rng_state()


def _set_rng_state(state, device: torch.device) -> None:
    # (random states are CPU byte tensors; a checkpoint loaded onto the GPU brings them back here)
    if device.type == "cuda":
        torch.set_rng_state(state[0].cpu())
        torch.cuda.set_rng_state(state[1].cpu(), device)
    else:
        torch.set_rng_state(state)


class Minibatches:
    """The training minibatch of each step (``Task.sampler``'s default): indices drawn uniformly with
    replacement by a generator seeded with ``seed + SAMPLER_SEED_OFFSET``; the whole set when it is
    no larger than a batch. A sampler's ``generator`` state is what a checkpoint keeps of it. The
    generator is the CPU's on every device: a seed draws the same minibatches wherever it trains."""

    def __init__(self, task: Task, seed: int):
        self.x, self.y = task.data[0], task.data[1]
        self.batch_size = task.batch_size
        self.generator = torch.Generator().manual_seed(seed + SAMPLER_SEED_OFFSET)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next step's (x, y)."""
        if self.batch_size >= len(self.x):
            return self.x, self.y
        idx = torch.randint(0, len(self.x), (self.batch_size,), generator=self.generator)
        if self.x.device.type == "cuda":     # pinned, so that the copy does not wait for the GPU
            idx = idx.pin_memory().to(self.x.device, non_blocking=True)
        return self.x[idx], self.y[idx]


class TrainingRun:
    """A fresh model of ``task`` (initialised from ``seed``) trained with
    ``make_optimizer(params, lr)``, ``steps`` at a time (``advance``). ``failure`` says why
    training stopped early (None while it goes on); after a failure the run trains no more, but
    ``step`` still advances, so that a failed run keeps pace with others trained beside it."""

    def __init__(self, task: Task, make_optimizer: Callable, seed: int = 0, lr: float = 1.0,
                 time_limit: float | None = None):
        self.task, self.lr = task, lr
        self.time_limit = task.time_limit if time_limit is None else time_limit
        x_val, y_val = task.data[2], task.data[3]
        self.device = task.device
        with torch_threads(1), fork_rng(self.device):
            self.model = task.model(seed)
            with torch.no_grad():
                self.initial_loss = task.metrics(self.model, x_val, y_val)["val_loss"]
            self.optimizer = make_optimizer(self.model.parameters(), lr)
            self.rng = _rng_state(self.device)
        self.batches = task.sampler(seed)
        # steps between reads of the failure checks back to the host (``devices.sync_every``)
        self.sync_every = devices.sync_every(self.device)
        self.step = 0
        self.curve: list[float] = []          # the training loss of every step
        self.failure: str | None = None
        self.seconds = 0.0                    # training time so far

    @property
    def done(self) -> bool:
        """Whether every step of the task has been taken."""
        return self.step >= self.task.steps

    def advance(self, steps: int) -> None:
        """Train ``steps`` more steps (fewer at the end). A breakdown (``TrainingFailure``) ends
        training and is recorded in ``failure``; any other exception (a program's arithmetic, or a
        bug) is recorded there too and raised, for the caller to judge: ``Task.evaluate`` scores
        it as a failure, a baseline's tuning does not hide it."""
        end = min(self.step + steps, self.task.steps)
        try:
            if self.failure is None and self.step < end:
                with torch_threads(1), fork_rng(self.device):
                    _set_rng_state(self.rng, self.device)
                    try:
                        self._train(end)
                    except TrainingFailure as exc:
                        self.failure = str(exc)
                    except Exception as exc:
                        self.failure = f"exception during training: {type(exc).__name__}: {exc}"
                        raise
                    finally:
                        self.rng = _rng_state(self.device)
        finally:
            self.step = end

    def _train(self, end: int) -> None:
        task, opt, model, total = self.task, self.optimizer, self.model, self.task.steps
        start = time.perf_counter() - self.seconds
        unread: list[torch.Tensor] = []       # losses not yet read back (``sync_every``)
        try:
            for step in range(self.step, end):
                for group in opt.param_groups:
                    group["lr"] = self.lr * lr_factor(step, total)
                xb, yb = self.batches.next()
                opt.zero_grad()
                loss = task.loss(model(xb), yb)
                unread.append(loss.detach())
                weights = checks_weights(step, total)
                if len(unread) >= self.sync_every or weights or step == end - 1:
                    self._read_losses(unread, step)
                    unread = []
                loss.backward()
                opt.step()
                if weights:
                    with torch.no_grad():   # Python's max: a NaN is caught where the batched loop catches it
                        biggest = max(torch.stack([p.detach().abs().max() for p in model.parameters()]).tolist())
                    failure = weight_failure(biggest, step)
                    if failure:
                        raise TrainingFailure(failure)
                if time.perf_counter() - start > self.time_limit:
                    raise TrainingFailure(f"time limit of {self.time_limit:.3g} s exceeded at step {step}")
        finally:
            self.seconds = time.perf_counter() - start

    def _read_losses(self, unread: list[torch.Tensor], step: int) -> None:
        """Append the losses of the steps up to ``step`` to the curve (one read from the device),
        checking each in turn (``loss_failure``): on a GPU a loss that failed a few steps ago is
        caught now, and reported at its own step."""
        first = step - len(unread) + 1
        values = [float(unread[0])] if len(unread) == 1 else torch.stack(unread).tolist()
        for k, value in enumerate(values):
            self.curve.append(value)
            failure = loss_failure(self.curve, self.initial_loss, first + k)
            if failure:
                raise TrainingFailure(failure)

    def val_metrics(self) -> dict:
        """The task's metrics on the validation set now (the random state is left as it is)."""
        with torch.no_grad(), torch_threads(1), fork_rng(self.device):
            _set_rng_state(self.rng, self.device)
            return self.task.metrics(self.model, self.task.data[2], self.task.data[3])

    def val_loss(self) -> float:
        """The validation loss now; inf after a failure or when it is not finite."""
        if self.failure is not None:
            return math.inf
        loss = self.val_metrics()["val_loss"]
        return loss if math.isfinite(loss) else math.inf

    def metrics(self) -> dict:
        """``Task.train``'s result: the validation metrics, the last and a thinned curve of the
        training loss, the initial validation loss, the steps and the time (training and this
        validation). Raises
        TrainingFailure when training failed or the validation loss is not finite."""
        if self.failure is not None:
            raise TrainingFailure(self.failure)
        start = time.perf_counter()
        metrics = self.val_metrics()
        if not math.isfinite(metrics["val_loss"]):
            raise TrainingFailure("non-finite validation loss")
        curve = self.curve
        metrics.update(train_loss=curve[-1], initial_val_loss=self.initial_loss,
                       loss_curve=curve[:: max(1, len(curve) // 50)], steps=self.task.steps,
                       wall_time=self.seconds + time.perf_counter() - start)
        return metrics

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything the run needs to continue exactly: model, optimizer, sampler and random state,
        the step, the loss curve, the failure and the training time."""
        return {"step": self.step, "curve": list(self.curve), "failure": self.failure,
                "initial_loss": self.initial_loss, "seconds": self.seconds,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.batches.generator.get_state(), "torch_rng": self.rng}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (this run's own, or another's: PBT's exploit). The optimizer's
        state (moments, step counts) is loaded; its hyperparameters stay this run's own (``lr``, set
        by the schedule at every step, is the loaded one until then)."""
        own = [{k: v for k, v in group.items() if k not in ("params", "lr")} for group in self.optimizer.param_groups]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group, hyper in zip(self.optimizer.param_groups, own):
            group.update(hyper)
        self.batches.generator.set_state(state["generator"])
        self.rng = state["torch_rng"]
        self.step, self.curve = int(state["step"]), [float(x) for x in state["curve"]]
        self.failure, self.initial_loss = state["failure"], float(state["initial_loss"])
        self.seconds = float(state["seconds"])

    def save(self, directory: str | Path) -> None:
        """Write a checkpoint into ``directory``."""
        torch.save(self.state_dict(), Path(directory) / CHECKPOINT_FILE)

    def load(self, directory: str | Path) -> None:
        """Continue from the checkpoint in ``directory`` (see ``load_state_dict``)."""
        # weights_only: a checkpoint holds tensors and plain values, never code
        self.load_state_dict(torch.load(Path(directory) / CHECKPOINT_FILE, weights_only=True,
                                        map_location=self.device))
