"""The proxy-task interface: a small training problem that scores an optimizer.

A task knows nothing of programs beyond "an optimizer class to train with": ``Task.train`` takes a
``torch.optim.Optimizer`` factory; ``Task.evaluate(prog)`` turns a program into one (flat-buffer
mode, the fast path) and scores it against the task's tuned AdamW baseline.

Fitness (documented in the README, "Tasks"): with L0 the validation loss of the untrained model and
L* that of AdamW tuned over a learning-rate grid (same seed, same budget),

    fitness = (L0 - L) / (L0 - L*)

so 1.0 matches tuned AdamW, more is better, 0 is no progress; it is clipped below at -1.0, and every
failure (NaN/inf, parameters or loss diverging, an exception, the time limit) scores exactly -1.0.
"""

from __future__ import annotations

import abc
import ast
import hashlib
import inspect
import json
import math
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from evosearch.optim.factory import to_optimizer

from . import devices
from .batched import evaluate_batch
from .results import FAILURE_FITNESS, EvalResult
from .training import Minibatches, TrainingFailure, TrainingRun, fork_rng, torch_threads

BASELINE_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
BASELINE_WEIGHT_DECAY = 0.01
BASELINE_VERSION = 3   # bump when the training loop changes, to invalidate cached baselines


@dataclass(frozen=True)
class Baseline:
    """Tuned AdamW on a task and seed: the untrained model's loss, the best loss and its lr."""
    initial_loss: float
    best_loss: float
    best_lr: float
    losses: dict            # lr -> validation loss (inf where training failed)


class Task(abc.ABC):
    """Subclasses set ``name``, ``sizes`` (size -> dict of settings, each with ``steps`` and
    ``batch_size``) and implement ``make_data``, ``make_model`` and optionally ``loss`` and
    ``metrics``. ``make_data`` returns (x_train, y_train, x_val, y_val) tensors."""

    name: str = ""
    description: str = ""
    sizes: dict[str, dict] = {}
    time_limit: float = 20.0     # seconds per evaluation at proxy size (x steps ratio at other sizes)
    classification: bool = True
    reads_files: bool = False    # its data comes from files in ``data_dir`` (nothing bundled or generated)

    def __init__(self, size: str = "proxy", data_dir: str | os.PathLike | None = None):
        if size not in self.sizes:
            raise KeyError(f"task {self.name!r} has no size {size!r}; sizes: {', '.join(self.sizes)}")
        self.size = size
        # where a task that reads files from disk finds them: the config's [tasks] data_dir, else
        # $EVOSEARCH_DATA (tasks with bundled or generated data ignore it)
        data_dir = data_dir or os.environ.get("EVOSEARCH_DATA")
        self.data_dir = Path(data_dir).expanduser() if data_dir else None
        self.config = dict(self.sizes[size])
        self.steps = int(self.config["steps"])
        self.batch_size = int(self.config["batch_size"])
        self._data = None
        self.device = torch.device("cpu")     # where it trains (``to``)
        self._model_code: str | None = None
        # Baselines handed over by a search driver (so cluster workers never retune them).
        self.known_baselines: dict[int, Baseline] = {}
        scale = self.steps / self.sizes["proxy"]["steps"]
        self.time_limit = float(self.config.get("time_limit", type(self).time_limit * max(1.0, scale) * 4
                                                 if size != "proxy" else type(self).time_limit))

    def __repr__(self) -> str:
        return f"tasks.get({self.name!r}, size={self.size!r})"

    # -- to be provided by each task ---------------------------------------------------------
    @abc.abstractmethod
    def make_data(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_train, y_train, x_val, y_val); the same for every seed (the seed varies init and batches)."""

    @abc.abstractmethod
    def make_model(self) -> torch.nn.Module:
        """A fresh model; called after ``torch.manual_seed(seed)``."""

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training and validation loss (cross-entropy unless the task says otherwise)."""
        return torch.nn.functional.cross_entropy(out, y)

    def metrics(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
        """Validation loss (and accuracy for classification) of ``model`` on ``x``, ``y``."""
        out = model(x)
        result = {"val_loss": float(self.loss(out, y))}
        if self.classification:
            result["val_accuracy"] = float((out.argmax(-1) == y).float().mean())
        return result

    # -- shared machinery ----------------------------------------------------------------------
    def to(self, device) -> "Task":
        """Train on ``device`` from now on (a torch device or its name; the CPU by default): the
        data go there once made, each model after its initialisation on the CPU (so that a seed
        gives the same initial weights on every device; on a GPU, products and convolutions in
        float32, ``devices.prepare``). Returns the task."""
        device = torch.device(device)
        if device != self.device:
            self.device, self._data = device, None
            devices.prepare(device)         # float32 on a GPU too (no TF32)
        return self

    @property
    def data(self):
        """(x_train, y_train, x_val, y_val), made once, on the task's device."""
        if self._data is None:
            self._data = tuple(t.to(self.device) for t in self.make_data())
        return self._data

    def model(self, seed: int) -> torch.nn.Module:
        """A fresh model of ``seed`` on the task's device (``make_model`` after
        ``torch.manual_seed(seed)``; the caller's random state moves, as ``manual_seed`` moves it)."""
        torch.manual_seed(seed)
        return self.make_model().to(self.device)

    def key(self) -> str:
        """Identifies the task's exact setup, for the baseline cache."""
        # The code of the task's classes is part of the key: editing a model or its data must not
        # reuse a stale baseline (editing their comments or docstrings keeps it).
        source = "".join(_code(c) for c in type(self).__mro__ if issubclass(c, Task) and c is not Task)
        parts = [type(self).__module__, self.name, self.size, self.config, BASELINE_VERSION,
                 BASELINE_LRS, BASELINE_WEIGHT_DECAY, torch.__version__, source]
        model = self.model_code()
        if model:        # the model's own classes, wherever they are defined (a shared ViT module)
            parts.append(["model", model])
        identity = self.data_identity()
        if identity is not None:     # only tasks that read files: the others keep their keys
            parts.append(identity)
        if self.device.type != "cpu":   # another device kind, other losses (CPU keys stay as they were)
            parts.append(["device", devices.kind(self.device), "float32"])
        text = json.dumps(parts, sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def model_code(self) -> str:
        """The code of the classes the task's model is built of, torch's own left out (they are
        covered by its version): part of ``key``, so that editing a model class imported from
        another module retunes the baseline too. Made once per task, from a model built on the
        side (the caller's random state is left alone)."""
        if self._model_code is None:
            with torch.random.fork_rng(devices=[]):
                classes = dict.fromkeys(type(m) for m in self.make_model().modules())
            self._model_code = "".join(_code(c) for c in classes if not c.__module__.startswith("torch."))
        return self._model_code

    def data_identity(self):
        """What identifies the files a task reads from disk (part of ``key``, so other data never
        reuses a baseline); None for tasks whose data ships with the code or is generated."""
        return None

    def initial_loss(self, seed: int) -> float:
        """The validation loss of the untrained model of ``seed``."""
        with torch_threads(1), torch.no_grad(), fork_rng(self.device):
            return self.metrics(self.model(seed), self.data[2], self.data[3])["val_loss"]

    def sampler(self, seed: int) -> Minibatches:
        """What draws the training minibatches for ``seed`` (``next()`` gives a step's (x, y)); a
        task with its own sampling overrides this, keeping a ``generator`` for checkpoints."""
        return Minibatches(self, seed)

    def minibatches(self, seed: int):
        """The (x, y) training minibatch of each step of ``train``; ``tasks.batched`` trains on the
        same sequence."""
        batches = self.sampler(seed)
        for _ in range(self.steps):
            yield batches.next()

    def train(self, make_optimizer: Callable, seed: int = 0, lr: float = 1.0,
              time_limit: float | None = None) -> dict:
        """Train a fresh model (initialised from ``seed``) with ``make_optimizer(params, lr)``, all
        steps of the loop in ``training.py``. Returns the metrics; raises TrainingFailure when
        training breaks down."""
        run = TrainingRun(self, make_optimizer, seed, lr, time_limit)
        run.advance(self.steps)
        return run.metrics()

    # -- baseline and fitness ------------------------------------------------------------------
    def baseline(self, seed: int = 0) -> Baseline:
        """Tuned AdamW: the best validation loss over ``BASELINE_LRS``, cached on disk per task
        setup and seed (``$EVOSEARCH_CACHE``, default ``~/.cache/evosearch``)."""
        if seed in self.known_baselines:
            return self.known_baselines[seed]
        where = "" if self.device.type == "cpu" else f"-{self.device.type}"
        path = cache_dir() / "baselines" / f"{self.name}-{self.size}{where}-seed{seed}-{self.key()}.json"
        if path.exists():
            try:
                d = json.loads(path.read_text())
                return Baseline(float(d["initial_loss"]), float(d["best_loss"]), float(d["best_lr"]),
                                {float(k): float(v) for k, v in d["losses"].items()})
            except (ValueError, KeyError, TypeError, AttributeError):
                pass  # a corrupt or wrongly shaped cache file is recomputed
        losses = {}
        for lr in BASELINE_LRS:
            try:
                m = self.train(lambda params, lr_: torch.optim.AdamW(
                    params, lr=lr_, weight_decay=BASELINE_WEIGHT_DECAY, foreach=True), seed, lr,
                    time_limit=float("inf"))
                losses[lr] = m["val_loss"]
            except TrainingFailure:
                losses[lr] = float("inf")
        best_lr = min(losses, key=losses.get)
        base = Baseline(self.initial_loss(seed), losses[best_lr], best_lr, losses)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"initial_loss": base.initial_loss, "best_loss": base.best_loss,
                                   "best_lr": base.best_lr, "losses": {str(k): v for k, v in losses.items()}}))
        tmp.replace(path)  # atomic: concurrent workers may compute the same baseline
        return base

    def fitness(self, val_loss: float, seed: int = 0) -> float:
        """``(L0 - L) / (L0 - L*)`` for validation loss ``L`` (see the module docstring), at least
        ``FAILURE_FITNESS``."""
        base = self.baseline(seed)
        gain = base.initial_loss - base.best_loss
        if not gain > 0:
            raise RuntimeError(f"task {self.name}: tuned AdamW made no progress; the task is broken")
        return max(FAILURE_FITNESS, (base.initial_loss - val_loss) / gain)

    def evaluate_optimizer(self, make_optimizer: Callable, seed: int = 0, lr: float = 1.0,
                           time_limit: float | None = None) -> EvalResult:
        """Train with ``make_optimizer(params, lr)`` and score it; a failure scores
        ``FAILURE_FITNESS`` with the reason."""
        try:
            metrics = self.train(make_optimizer, seed, lr, time_limit)
        except TrainingFailure as exc:
            return EvalResult(FAILURE_FITNESS, {}, str(exc))
        except Exception as exc:  # noqa: BLE001 - a candidate's arithmetic must never stop a search
            return EvalResult(FAILURE_FITNESS, {}, f"exception during training: {type(exc).__name__}: {exc}")
        return EvalResult(self.fitness(metrics["val_loss"], seed), metrics, None)

    def evaluate(self, prog, seed: int = 0, lr: float = 1.0, time_limit: float | None = None) -> EvalResult:
        """Train with the program (its ``lr`` input is ``lr`` times the schedule; programs carry their
        own learning-rate scale, like the warm start's ``lr * 0.001``) and score it."""
        opt_cls = to_optimizer(prog, flat=True, lr_check=False)   # whether it follows lr is what fitness measures
        return self.evaluate_optimizer(lambda params, lr_: opt_cls(params, lr=lr_), seed, lr, time_limit)

    def start(self, prog, seed: int = 0, lr: float = 1.0, time_limit: float | None = None) -> TrainingRun:
        """The program's training run of ``seed``, not trained yet: ``evaluate`` in stages, for a
        caller that reads it between them (the search's early stopping); ``advance`` it, then
        ``result``. Raises what making the model or the optimizer raises."""
        opt_cls = to_optimizer(prog, flat=True, lr_check=False)
        return TrainingRun(self, lambda params, lr_: opt_cls(params, lr=lr_), seed, lr, time_limit)

    def result(self, run: TrainingRun, seed: int = 0) -> EvalResult:
        """The score of ``run`` (started with ``seed``) where it stands: trained to the end, exactly
        ``evaluate``'s result; stopped before, the fitness and metrics its validation loss gives now,
        with the ``steps`` it took."""
        try:
            if run.done:
                metrics = run.metrics()
            else:
                if run.failure is not None:
                    raise TrainingFailure(run.failure)
                metrics = dict(run.val_metrics(), steps=run.step)
                if not math.isfinite(metrics["val_loss"]):
                    raise TrainingFailure("non-finite validation loss")
        except TrainingFailure as exc:
            return EvalResult(FAILURE_FITNESS, {}, str(exc))
        return EvalResult(self.fitness(metrics["val_loss"], seed), metrics, None)

    def evaluate_batch(self, programs, seed: int = 0, lr: float | list[float] = 1.0,
                       time_limit: float | None = None, exact: bool = True) -> list[EvalResult]:
        """``[self.evaluate(p, seed, lr) for p in programs]``, bit for bit, computed by training the
        models all at once (``tasks.batched``); ``lr`` may be one learning rate per program.
        ``exact=False`` batches also where that is only approximately the same (see ``tasks.batched``)."""
        return evaluate_batch(self, programs, seed, lr, time_limit, exact)


def _code(cls: type) -> str:
    """The code of a class: its syntax tree without docstrings (comments are not in it); its
    qualified name where its source cannot be read (a class made at run time)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return f"{cls.__module__}.{cls.__qualname__}"
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def cache_dir() -> Path:
    """Where tuned baselines are cached: ``$EVOSEARCH_CACHE``, default ``~/.cache/evosearch``."""
    return Path(os.environ.get("EVOSEARCH_CACHE", Path.home() / ".cache" / "evosearch"))
