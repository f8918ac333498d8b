"""Executors: where candidates are trained. They know nothing of evolution.

``RayExecutor`` keeps one actor per CPU (or ``workers``) busy with batches of candidates, each actor
holding its tasks in memory; a dead actor (killed, or on a node that was lost) is replaced and its
candidates are evaluated again on another one. ``InProcessExecutor`` evaluates in the driver process
(debugging, deterministic tests).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import deque
from contextlib import contextmanager
from dataclasses import replace

from evosearch.lang.program import Program

from . import reaper
from .config import ConfigError
from .evolution import Candidate
from .suite import Evaluation, SuiteEvaluator, SuiteSpec


class InProcessExecutor:
    """Evaluates in the driver process, ``batch_size`` candidates per ``poll`` (debugging;
    deterministic: None means ``auto_batch(population)``), trained together where the suite's
    ``batched`` says so."""

    def __init__(self, spec: SuiteSpec, batch_size: int | None = 1, population: int = 100):
        self.evaluator = SuiteEvaluator(spec)
        self.queue: deque[Candidate] = deque()
        self.batch_size = batch_size or self.auto_batch(population)
        self.workers = 1
        self.replaced = 0

    @staticmethod
    def auto_batch(population: int) -> int:
        """The batch size of ``batch_size = "auto"`` in-process: fixed, never timed (that would end
        determinism): ``BatchSizer.MOST``, where batched training gains most on small tasks, and no
        more than a quarter of the population, so that the children of one batch, picked before
        any of them is told, are not a large part of it."""
        return max(1, min(BatchSizer.MOST, population // 4))

    def capacity(self) -> int:
        """How many candidates may be in flight."""
        return self.batch_size

    def in_flight(self) -> int:
        """Candidates submitted and not yet returned."""
        return len(self.queue)

    def submit(self, candidates: list[Candidate], size: str | None = None, bars: tuple | None = None) -> None:
        """Queue candidates for scoring on the suite (at task size ``size``: the funnel's; None, the
        suite's own), with early stopping's ``bars``."""
        self.queue.extend((c, size, bars) for c in candidates)

    def poll(self, timeout: float = 0.0) -> list[Evaluation]:
        """Score the next batch and return its evaluations."""
        batch = [self.queue.popleft() for _ in range(min(self.batch_size, len(self.queue)))]
        return self.evaluator.evaluate_many([(c.id, c.program, size, bars) for c, size, bars in batch])

    def shutdown(self) -> None:
        """Drop what is queued."""
        self.queue.clear()


def _worker_class():
    import ray

    @ray.remote(num_cpus=1, max_restarts=0)
    class EvaluatorWorker:
        def __init__(self, spec: SuiteSpec):
            import torch
            torch.set_num_threads(1)
            self.evaluator = SuiteEvaluator(spec, gpus=len(ray.get_gpu_ids()))
            self.node = ray.get_runtime_context().get_node_id()

        def evaluate(self, batch: list[tuple]) -> list[Evaluation]:
            results = self.evaluator.evaluate_many([(cid, Program.parse(text), *rest) for cid, text, *rest in batch])
            return [replace(e, worker=f"{self.node[:8]}:{e.worker}") for e in results]

        def node_id(self) -> str:
            return self.node

    return EvaluatorWorker


def remote_baselines(spec: SuiteSpec, gpus: float) -> dict:
    """``compute_baselines`` in a Ray task that asks for ``gpus`` GPUs, as a worker does: the
    baselines of a search whose workers train on GPUs, which the driver's machine may lack."""
    import ray

    from .suite import compute_baselines

    default_workers(ray.cluster_resources(), gpus)     # no GPU to give it: an error, not a wait forever

    # in the decorator: a GPU task's process then exits after it (max_calls=1), its CUDA memory freed
    @ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)
    def tune(spec: SuiteSpec) -> dict:
        import torch

        from tasks import devices
        torch.set_num_threads(1)
        device = devices.resolve(spec.device, len(ray.get_gpu_ids()))
        if devices.kind(device) != spec.device_kind:
            raise devices.DeviceError(f"device {spec.device!r} is {device} in this task, not {spec.device_kind}")
        return compute_baselines(spec, echo=lambda _: None, device=device)

    try:
        return ray.get(tune.remote(spec))
    except ray.exceptions.RayTaskError as exc:
        raise WorkerStartError(f"tuning the baselines on a worker failed: {str(exc).strip().splitlines()[-1]}") \
            from None


class WorkerStartError(ConfigError):
    """A worker actor whose constructor raised (its tasks cannot be loaded there: a task module or
    package missing on a node, data that cannot be made): replacing it would fail the same way, so
    the search stops (saved, resumable) with the reason."""


_embedded: dict = {}     # the embedded Ray this process last started: {"node": its node id, "cpus": its CPUs}


def init_ray(address: str | None = None, num_cpus: int | None = None, modules=()) -> None:
    """Join the cluster at ``address`` (or $RAY_ADDRESS), else start an embedded local Ray. On a
    cluster the researcher's task ``modules`` (absolute paths) travel to every node in the job's
    ``runtime_env`` (``py_modules``: one package, ``tasks.external.stage``); an embedded Ray's
    workers run on this machine and load them by path, without a runtime_env to set up.

    A Ray already running in this process is used as it is, except an embedded one started here
    with fewer CPUs than ``num_cpus`` (an earlier search's, with fewer workers): that one is
    started again with ``num_cpus``, since a worker it cannot place would never train."""
    import ray
    if ray.is_initialized():
        ours = _embedded.get("node") == ray.get_runtime_context().get_node_id()
        if not (ours and num_cpus and not address and _embedded["cpus"] < num_cpus):
            return
        ray.shutdown()
    _embedded.clear()
    address = address or os.environ.get("RAY_ADDRESS")
    # Workers' own output (anything they print, beyond the warnings each evaluation returns) reaches
    # the driver's terminal; Ray's start-up messages stay below WARNING.
    quiet = dict(logging_level=logging.WARNING, log_to_driver=True, configure_logging=True)
    # Forwarded worker output would otherwise make Ray replace builtins.print in the driver (its
    # tqdm support), after which Ray Tune cannot pickle a callback that holds print
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    if address and modules:
        from tasks.external import stage
        with tempfile.TemporaryDirectory(prefix="evosearch-task-modules-") as scratch:
            package = stage(modules, scratch)    # ray.init uploads it to the cluster (content-addressed)
            ray.init(address=address, runtime_env={"py_modules": [str(package)]}, **quiet)
    elif address:
        ray.init(address=address, **quiet)
    else:
        # An embedded cluster keeps Ray's default, token authentication, without Ray's warning on
        # every start that the default is on (setting RAY_AUTH_MODE=token from here instead breaks
        # the start: Ray has read its configuration when it was imported)
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        # "local": without it Ray joins the last cluster started on this machine (ray start, or a
        # test's Cluster, via /tmp/ray/ray_current_cluster) and then refuses num_cpus.
        reaper.watch()        # first: what the driver starts from here on is Ray's, and goes with it
        cpus = num_cpus or os.cpu_count() or 1
        with _loopback_only(ray):
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
        _embedded.update(node=ray.get_runtime_context().get_node_id(), cpus=cpus)


@contextmanager
def _loopback_only(ray):
    """An embedded Ray that listens on 127.0.0.1 alone: nobody asked to share this run. Ray binds
    its servers to the node's address, which it takes to be the machine's outward address unless
    clusters are switched off, as Ray does by default on macOS and Windows
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``; a setting read when Ray is imported, so it is set on
    the imported module, for this start only: a later ``ray.init(address=...)`` joins clusters as
    usual)."""
    from ray._private import ray_constants
    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


class BatchSizer:
    """How many candidates one actor call carries: ``fixed``, or (``fixed`` None) as many as take
    about ``TARGET`` seconds to train, from the running mean of the time charged to each evaluation,
    between 1 and ``most`` (at most ``MOST``). A call costs the driver and Ray about a millisecond or
    two whatever it carries, so a 10 ms task needs calls of tens of candidates for the overhead to
    vanish, and a task of seconds one candidate per call; the cap keeps the candidates in flight
    (workers x 2 x size) from making each tournament's population much older."""

    TARGET = 0.25
    MOST = 16

    def __init__(self, fixed: int | None = None, most: int = MOST):
        self.fixed = fixed
        self.most = max(1, min(self.MOST, most))
        self.mean: float | None = None

    def observe(self, evaluations) -> None:
        """Fold in the seconds charged to finished proxy evaluations (an exponential mean)."""
        for e in evaluations:
            if e.size == "proxy" and e.seconds > 0:
                self.mean = e.seconds if self.mean is None else 0.9 * self.mean + 0.1 * e.seconds

    @property
    def size(self) -> int:
        if self.fixed:
            return self.fixed
        if self.mean is None:
            return 1
        return max(1, min(self.most, round(self.TARGET / self.mean)))


def default_workers(resources: dict, gpus_per_worker: float = 0.0, workers: int | None = None) -> int:
    """``workers``, or one actor per CPU of the cluster, and no more than its GPUs hold at
    ``gpus_per_worker`` each (an actor Ray cannot place would hold its candidates forever):
    ConfigError when not one fits, or when the ``workers`` asked for do not."""
    if workers is not None:
        gpus, cpus = resources.get("GPU", 0), resources.get("CPU", 0)
        if gpus_per_worker and workers * gpus_per_worker > gpus + 1e-9:
            raise ConfigError(f"[executor] workers = {workers} at gpus_per_worker = {gpus_per_worker:g} need "
                              f"{workers * gpus_per_worker:g} GPUs; the cluster has {gpus:g}")
        if workers > cpus + 1e-9:
            raise ConfigError(f"[executor] workers = {workers} need {workers} CPUs (one each); the cluster "
                              f"has {cpus:g}")
        return workers
    workers = max(1, int(resources.get("CPU", 1)))
    if gpus_per_worker:
        gpus = resources.get("GPU", 0)
        fit = int(gpus / gpus_per_worker + 1e-9)
        if fit < 1:
            raise ConfigError(f"[executor] gpus_per_worker = {gpus_per_worker:g}, but the cluster has "
                              f"{gpus:g} GPUs: no worker fits")
        workers = min(workers, fit)
    return workers


class RayExecutor:
    """Ray actors, one per CPU (or ``workers``), each holding a ``SuiteEvaluator``; ``depth``
    batches of ``batch_size`` candidates in flight per actor (None: sized by ``BatchSizer``, with
    no more in flight than ``population``). A dead actor is replaced and its batch sent again; a
    replacement gets work once it has started, so that while it waits for a CPU (its node was lost
    and the others are busy) the live actors train everything."""

    def __init__(self, spec: SuiteSpec, workers: int | None = None, batch_size: int | None = None,
                 depth: int = 2, population: int = 100, gpus_per_worker: float = 0.0):
        import ray
        self.ray = ray
        workers = default_workers(ray.cluster_resources(), gpus_per_worker, workers)
        self.spec = spec
        self.depth = depth
        self.cls = _worker_class().options(num_gpus=gpus_per_worker) if gpus_per_worker else _worker_class()
        self.actors = [self.cls.remote(spec) for _ in range(workers)]
        self.workers = workers
        self.sizer = BatchSizer(batch_size, most=population // (workers * depth))
        self.inflight: dict = {}            # ObjectRef -> (actor index, batch of candidates)
        self.load = [0] * workers
        self.pending: deque[Candidate] = deque()
        self.ready = [True] * workers       # the first actors take work at once (Ray queues it)
        self.starting: dict = {}            # ObjectRef of a replacement's first call -> (index, actor)
        self.replaced = 0

    @property
    def batch_size(self) -> int:
        """Candidates per actor call now."""
        return self.sizer.size

    def capacity(self) -> int:
        """How many candidates may be in flight."""
        return self.workers * self.depth * self.batch_size

    def in_flight(self) -> int:
        """Candidates submitted and not yet returned."""
        return sum(len(b) for _, _, b in self.inflight.values()) + len(self.pending)

    def submit(self, candidates: list[Candidate], size: str | None = None, bars: tuple | None = None) -> None:
        """Queue candidates for scoring on the suite (at task size ``size``: the funnel's; None, the
        suite's own), with early stopping's ``bars``, and send what the actors can take."""
        self.pending.extend((c, size, bars) for c in candidates)
        self._dispatch()

    def _dispatch(self) -> None:
        while self.pending:
            ready = [k for k in range(self.workers) if self.ready[k]]
            if not ready:
                return
            i = min(ready, key=lambda k: self.load[k])
            if self.load[i] >= self.depth:
                return
            batch = [self.pending.popleft() for _ in range(min(self.batch_size, len(self.pending)))]
            ref = self.actors[i].evaluate.remote([(c.id, str(c.program), size, bars) for c, size, bars in batch])
            self.inflight[ref] = (i, self.actors[i], batch)
            self.load[i] += 1

    def poll(self, timeout: float = 0.5) -> list[Evaluation]:
        """The evaluations that finished within ``timeout`` seconds (a dead actor's batch is queued
        again)."""
        waiting = list(self.inflight) + list(self.starting)
        if not waiting:
            return []
        ready, _ = self.ray.wait(waiting, num_returns=1, timeout=timeout)
        if ready:
            more, _ = self.ray.wait(waiting, num_returns=len(waiting), timeout=0)
            ready = list(dict.fromkeys(ready + more))
        out: list[Evaluation] = []
        for ref in ready:
            if ref in self.starting:
                self._started(ref)
                continue
            i, actor, batch = self.inflight.pop(ref)
            self.load[i] -= 1
            try:
                done = self.ray.get(ref)
                self.sizer.observe(done)
                out.extend(done)
            except self._lost as exc:
                # The worker died, or its node did: replace it (once) and evaluate its candidates again.
                self._check_start(exc)
                if self.actors[i] is actor:
                    self._replace(i)
                self.pending.extendleft(reversed(batch))
        self._dispatch()
        return out

    @property
    def _lost(self) -> tuple:
        """What a call raises when its actor or its result is gone: the actor died (killed, out of
        memory, its node removed or dead: ``ActorDiedError``), is unreachable (``ActorUnavailableError``;
        it has no restarts, so it is given up on), its worker process or node died, or the result was
        lost with the node's object store."""
        e = self.ray.exceptions
        return (e.RayActorError, e.WorkerCrashedError, e.NodeDiedError, e.ObjectLostError)

    @staticmethod
    def _check_start(exc: Exception) -> None:
        if getattr(exc, "actor_init_failed", False):
            raise WorkerStartError(f"a worker could not start: {str(exc).strip().splitlines()[-1]}") from exc

    def _started(self, ref) -> None:
        """A replacement's first call came back: it takes work from now on (or, lost before it
        started, it is replaced in turn)."""
        i, actor = self.starting.pop(ref)
        if self.actors[i] is not actor:
            return
        try:
            self.ray.get(ref)
            self.ready[i] = True
        except self._lost as exc:
            self._check_start(exc)
            self._replace(i)

    def _replace(self, i: int) -> None:
        try:
            self.ray.kill(self.actors[i])
        except Exception:  # noqa: BLE001 - it is already dead
            pass
        actor = self.actors[i] = self.cls.remote(self.spec)
        self.ready[i] = False
        self.starting[actor.node_id.remote()] = (i, actor)
        self.replaced += 1

    def shutdown(self) -> None:
        """Kill the actors."""
        for a in self.actors:
            try:
                self.ray.kill(a)
            except Exception:  # noqa: BLE001
                pass
        self.actors = []
        self.starting.clear()
