"""Scoring one candidate on a suite of proxy tasks (what executor workers run).

Suite fitness = the mean over tasks of the mean over seeds of each task's fitness (see
``tasks.base``: 1.0 = tuned AdamW). A failure on any task is reported (``task: reason``) and that
task scores the failure fitness; the candidate still gets a suite fitness. The same suite at the
funnel's larger task size (``funnel.py``) scores meta-validation.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from . import early_stop
from .early_stop import EarlyStop

if TYPE_CHECKING:
    from evosearch.lang.program import Program

# ``tasks`` (torch, data) is imported where a suite is scored, not here: the config and the command
# line import this module to name a suite, and start faster without it.


DEVICE = "device"     # the metrics key of where a candidate trained: {"name": devices.describe, "kind"}


@dataclass(frozen=True)
class Evaluation:
    """What an executor returns for one candidate: its suite fitness, per-task fitness and metrics,
    why it failed (or None), where and how long it trained."""
    candidate_id: int
    fitness: float
    task_fitness: dict
    metrics: dict
    failure: str | None
    worker: str
    seconds: float
    size: str = "proxy"        # the task size it was scored at: the funnel's size for meta-validation
    warnings: tuple[str, ...] = ()   # what Python warned while it trained (for the driver's log)


@dataclass(frozen=True)
class SuiteSpec:
    """The tasks, size, seeds and ``lr`` input that score a candidate, with the tuned-AdamW baselines
    the driver computed (so that workers never tune them): ``{task: {seed: [initial loss, best
    loss, best lr]}}`` at ``size``, and at the funnel's size in ``large_baselines``."""
    tasks: tuple[str, ...] = ("digits_mlp",)
    size: str = "proxy"
    seeds: tuple[int, ...] = (0,)
    lr: float = 1.0
    time_limit: float | None = None        # per task evaluation; None: each task's default
    batched: bool | str = False            # evaluate_many trains its candidates together where
                                           # that saves time (tasks.batched.pays), or "always", or
                                           # "approximate": always, also where not bit for bit
    baselines: dict = field(default_factory=dict)
    large_baselines: dict = field(default_factory=dict)
    early_stop: EarlyStop = field(default_factory=EarlyStop)   # enabled: proxy evaluations are
                                           # trained in stages and read at its checkpoints
    data_dir: str = ""                     # where tasks that read files find them ("": $EVOSEARCH_DATA)
    modules: tuple[str, ...] = ()          # the researcher's task modules the tasks come from, loaded
                                           # first (tasks.external: by path, or shipped to a cluster)
    device: str = "cpu"                    # where tasks train ("auto", "cpu", "cuda": tasks.devices)
    device_kind: str = ""                  # the kind the baselines were tuned on, which every worker
                                           # must train on ("": not checked)
    deterministic: bool = False            # torch's deterministic algorithms on a GPU (devices.make_deterministic)


class SuiteEvaluator:
    """Loads the tasks once (data, baselines) on the spec's device and scores programs on them.
    ``gpus``: how many GPUs Ray gave this worker (None: not a Ray worker)."""

    def __init__(self, spec: SuiteSpec, gpus: int | None = None):
        import tasks
        from tasks import devices
        from tasks.base import Baseline
        self.spec, self.gpus = spec, gpus
        self.device = devices.resolve(spec.device, gpus)
        if spec.device_kind and devices.kind(self.device) != spec.device_kind:
            raise devices.DeviceError(
                f"this search trains on {spec.device_kind} (its baselines were tuned there), but device "
                f"{spec.device!r} is {self.device} in this worker: a search never mixes device kinds, whose "
                f"losses differ ([executor] device and gpus_per_worker)")
        devices.prepare(self.device, spec.deterministic)
        self.where = {"name": devices.describe(self.device), "kind": devices.kind(self.device)}
        tasks.load_modules(spec.modules)
        self.tasks = {name: tasks.get(name, spec.size, spec.data_dir or None, device=self.device)
                      for name in spec.tasks}
        for name, task in self.tasks.items():
            for seed, (initial, best, best_lr) in spec.baselines.get(name, {}).items():
                task.known_baselines[int(seed)] = Baseline(initial, best, best_lr, {})
            _ = task.data
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._sizes: dict[str, SuiteEvaluator] = {}

    def for_size(self, size: str) -> "SuiteEvaluator":
        """The evaluator of the same suite at another task size (the funnel's), made once."""
        if size == self.spec.size:
            return self
        if size not in self._sizes:
            self._sizes[size] = SuiteEvaluator(replace(self.spec, size=size, baselines=self.spec.large_baselines,
                                                       large_baselines={}), self.gpus)
        return self._sizes[size]

    def evaluate_many(self, items: list[tuple]) -> list[Evaluation]:
        """``[self.evaluate(*item) for item in items]``, items ``(id, program, size)`` or ``(id,
        program, size, bars)``. With ``spec.batched`` the candidates of one size are trained
        together on each task and seed where that saves time (``tasks.batched``: the same results
        bit for bit, at a fraction of the cost on small models; ``pays`` measures it once per task
        and number of candidates, unless ``spec.batched`` is "always"); each is charged an equal
        share of the time. With early stopping, proxy evaluations are staged, one at a time."""
        if not self.spec.batched or len(items) < 2 or self.spec.early_stop.enabled:
            return [self.evaluate(*item) for item in items]
        out: list[Evaluation | None] = [None] * len(items)
        sizes: dict[str, list[int]] = {}
        for i, (_, _, size, *_) in enumerate(items):
            sizes.setdefault(size or self.spec.size, []).append(i)
        for size, where in sizes.items():
            evaluations = self.for_size(size)._evaluate_together([items[i][0] for i in where],
                                                                 [items[i][1] for i in where])
            for i, e in zip(where, evaluations):
                out[i] = replace(e, size=size if size != self.spec.size else "proxy")
        return out

    def _evaluate_together(self, ids: list[int], programs: list[Program]) -> list[Evaluation]:
        """Score programs on the suite (trained together per task and seed where ``spec.batched``
        allows it); each is charged an equal share of the time."""
        from tasks.batched import pays
        start = time.perf_counter()
        per_task = [{} for _ in programs]
        metrics = [{} for _ in programs]
        failures = [[] for _ in programs]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")        # each distinct warning once per call
            self._score(programs, per_task, metrics, failures, pays)
        seconds = (time.perf_counter() - start) / len(programs)
        said = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
        return [Evaluation(cid, sum(pt.values()) / len(pt), pt, {**m, DEVICE: self.where},
                           "; ".join(f) or None, self.worker, seconds,
                           warnings=said if k == 0 else ())          # a call's warnings, told once
                for k, (cid, pt, m, f) in enumerate(zip(ids, per_task, metrics, failures))]

    def _score(self, programs, per_task, metrics, failures, pays) -> None:
        for name, task in self.tasks.items():
            scores = [[] for _ in programs]
            together = len(programs) > 1 and (self.spec.batched in ("always", "approximate") or (
                bool(self.spec.batched) and pays(task, len(programs))))
            exact = self.spec.batched != "approximate"
            for seed in self.spec.seeds:
                results = (task.evaluate_batch(programs, seed=seed, lr=self.spec.lr, time_limit=self.spec.time_limit,
                                               exact=exact)
                           if together else
                           [task.evaluate(p, seed=seed, lr=self.spec.lr, time_limit=self.spec.time_limit)
                            for p in programs])
                for k, r in enumerate(results):
                    scores[k].append(r.fitness)
                    if r.failure:
                        failures[k].append(f"{name} (seed {seed}): {r.failure}")
                    else:
                        metrics[k][f"{name}/{seed}"] = {a: v for a, v in r.metrics.items() if a != "loss_curve"}
            for k, s in enumerate(scores):
                per_task[k][name] = sum(s) / len(s)

    def evaluate(self, candidate_id: int, program: Program, size: str | None = None,
                 bars: tuple | None = None) -> Evaluation:
        """Score one program on the suite, at ``size`` when given (the funnel's); with early stopping
        (the suite's own size only), stopped at the first checkpoint where it is below its bar (``bars``, one
        per checkpoint, None: no stop there)."""
        if size and size != self.spec.size:
            return replace(self.for_size(size).evaluate(candidate_id, program), size=size)
        if self.spec.early_stop.enabled:
            return self._evaluate_staged(candidate_id, program, bars or ())
        return self._evaluate_together([candidate_id], [program])[0]

    def _evaluate_staged(self, candidate_id: int, program: Program, bars: tuple) -> Evaluation:
        """Train every task and seed up to each checkpoint in turn, read the partial suite fitness,
        stop where it is below the bar (``early_stop.py``); a run trained to the end scores exactly
        as ``Task.evaluate``."""
        rule, spec = self.spec.early_stop, self.spec
        start = time.perf_counter()
        runs: dict[tuple[str, int], object] = {}
        broken: dict[tuple[str, int], str] = {}
        partials: list[float] = []
        stop = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            for name, task in self.tasks.items():
                for seed in spec.seeds:
                    try:
                        runs[name, seed] = task.start(program, seed, spec.lr, spec.time_limit)
                    except Exception as exc:  # noqa: BLE001 - as Task.evaluate scores it
                        broken[name, seed] = f"exception during training: {type(exc).__name__}: {exc}"
            for k in range(len(rule.checkpoints) + 1):
                for run in runs.values():
                    try:
                        run.advance(rule.steps(run.task.steps)[k] - run.step)
                    except Exception:  # noqa: BLE001 - recorded in run.failure, scored as a failure
                        pass
                if k == len(rule.checkpoints):
                    break
                partials.append(_mean(_per_task(self._results(runs, broken)).values()))
                bar = bars[k] if k < len(bars) else None
                if early_stop.behind(partials[-1], bar):
                    stop = {"checkpoint": rule.checkpoints[k], "bar": bar, "fitness": partials[-1],
                            "steps": {f"{n}/{s}": run.step for (n, s), run in runs.items()},
                            "reason": f"partial fitness {partials[-1]:.4f} at {rule.checkpoints[k]:g} of training "
                                      f"is below the population's bar {bar:.4f}"}
                    break
            results = self._results(runs, broken)
        per_task = _per_task(results)
        metrics = {f"{n}/{s}": {a: v for a, v in r.metrics.items() if a != "loss_curve"}
                   for (n, s), r in results.items() if not r.failure}
        metrics[early_stop.KEY] = early_stop.record(rule.checkpoints, partials, stop)
        metrics[DEVICE] = self.where
        failure = "; ".join(f"{n} (seed {s}): {r.failure}" for (n, s), r in results.items() if r.failure) or None
        said = tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
        return Evaluation(candidate_id, _mean(per_task.values()), per_task, metrics, failure,
                          self.worker, time.perf_counter() - start, warnings=said)

    def _results(self, runs: dict, broken: dict) -> dict:
        """Each task and seed's result where its run stands, in suite order."""
        from tasks.results import FAILURE_FITNESS, EvalResult
        out = {}
        for name, task in self.tasks.items():
            for seed in self.spec.seeds:
                out[name, seed] = (EvalResult(FAILURE_FITNESS, {}, broken[name, seed]) if (name, seed) in broken
                                   else task.result(runs[name, seed], seed))
        return out


def _per_task(results: dict) -> dict[str, float]:
    """Each task's fitness, the mean over its seeds, from ``{(task, seed): EvalResult}``."""
    per_task: dict[str, list[float]] = {}
    for (name, _), r in results.items():
        per_task.setdefault(name, []).append(r.fitness)
    return {name: _mean(v) for name, v in per_task.items()}


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def compute_baselines(spec: SuiteSpec, echo=print, device=None) -> dict:
    """Tuned AdamW baselines for every task and seed of the suite, trained on ``device`` (default:
    where an in-process ``SuiteEvaluator`` of ``spec`` trains; cached on disk per device kind)."""
    import torch

    import tasks
    from tasks import devices
    tasks.load_modules(spec.modules)
    device = devices.resolve(spec.device) if device is None else torch.device(device)
    devices.prepare(device, spec.deterministic)
    out = {}
    for name in spec.tasks:
        task = tasks.get(name, spec.size, spec.data_dir or None, device=device)
        out[name] = {}
        for seed in spec.seeds:
            t0 = time.perf_counter()
            b = task.baseline(seed)
            if time.perf_counter() - t0 > 1:
                echo(f"tuned AdamW on {name} (seed {seed}): lr {b.best_lr:g}, val loss {b.best_loss:.4f}")
            out[name][seed] = [b.initial_loss, b.best_loss, b.best_lr]
    return out
