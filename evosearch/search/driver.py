"""The search driver: evolution + executor + run store, as an asynchronous steady-state loop.

``run_search`` opens the run folder, settles the config (a fresh run, or the saved one on
``--resume``), restores evolution from the last snapshot, prepares the suite with its tuned-AdamW
baselines, and loops: ``ask`` as many children as the executor has free slots, collect the
evaluations that finished, ``tell`` them, send the funnel's picks to the large tasks, and commit
results with a fresh snapshot in one transaction (``store.py``). Everything the search does to the
outside world (Ray, SQLite, the clock, the progress line, signals) happens here; evolution,
mutation and analysis stay pure.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

from evosearch.lang.errors import ProgramError
from evosearch.lang.program import Program

from . import early_stop
from . import funnel as funnels
from .config import ConfigError, SearchConfig, load_task_modules
from .describe import Describer
from .evolution import Candidate, RegularizedEvolution
from .loading import load_program
from .lock import RunFolderLock
from .readings import readings_text, task_readings
from .store import DamagedRunError, RunStore
from .suite import SuiteSpec, compute_baselines

COMMIT_INTERVAL = 0.5   # seconds between commits of results and snapshot
WORKER_LOG = "workers.log"   # in the run folder: worker warnings and deaths, one line each


@dataclass
class SearchOutcome:
    """How a search session ended: its counts (trained, served from the cache, pruned, failed by the
    numeric screen, generated), best candidate, seconds (over all sessions of the run) and why it
    stopped ("max_evals", "time_limit" or "interrupted")."""
    folder: Path
    evaluations: int
    cache_hits: int
    rejected: int
    screened: int
    generated: int
    best_id: int | None
    best_fitness: float | None
    seconds: float
    stopped_by: str


def make_executor(cfg: SearchConfig, suite: SuiteSpec):
    """The executor the config asks for: in-process, or Ray actors (starting or joining Ray)."""
    if cfg.in_process:
        from .executors import InProcessExecutor
        return InProcessExecutor(suite, batch_size=cfg.batch(), population=cfg.population_size)
    from .executors import RayExecutor, init_ray
    init_ray(cfg.address or None, cfg.workers or None, modules=cfg.task_modules)
    return RayExecutor(suite, workers=cfg.workers or None, batch_size=cfg.batch(),
                       population=cfg.population_size, gpus_per_worker=cfg.gpus_per_worker)


def run_search(cfg: SearchConfig, folder: str | Path, resume: bool = False, progress=None,
               executor=None) -> SearchOutcome:
    """Run a search into the run folder ``folder``, or continue the one there (``resume``: its
    saved config, with this ``cfg``'s budget and executor settings). ``progress`` shows the search
    live (``progress.Progress``); ``executor`` replaces the one the config asks for."""
    folder = Path(folder)
    if resume and not (folder / "run.sqlite").is_file():
        raise ConfigError(f"{folder} holds no run to resume")
    with RunFolderLock(folder, create=not resume):    # before the store is touched: a second driver changes nothing
        warm = None if resume else _warm_start(cfg)       # a bad warm start leaves no store behind
        store = RunStore(folder, create=not resume)
        try:
            cfg = _settle_config(store, cfg, resume, folder)
            load_task_modules(cfg)                       # a resumed run's modules, by their saved paths
            evo = _evolution(store, cfg, warm)
            store.set_meta("config", cfg.to_dict())      # once the run is known to start or continue
            suite = _suite(store, cfg, progress.log if progress else print)
            session = _Session(cfg, store, evo, executor or make_executor(cfg, suite), progress,
                               suite.baselines)
            session.resubmit_lost()
            session.loop()
            return session.outcome(folder)
        finally:
            store.close()


def _settle_config(store: RunStore, cfg: SearchConfig, resume: bool, folder: Path) -> SearchConfig:
    """The run's config: the saved one with this session's budget and executor on ``resume``, else
    ``cfg`` in a folder that holds no run yet."""
    if resume:
        saved = store.get_meta("config")
        if saved is None:
            raise ConfigError(f"{folder} holds no run to resume")
        cfg = replace(SearchConfig.from_dict(saved), max_evals=cfg.max_evals, time_limit=cfg.time_limit,
                      workers=cfg.workers, address=cfg.address, in_process=cfg.in_process,
                      gpus_per_worker=cfg.gpus_per_worker)
    elif store.counts()["evaluations"] or store.last_snapshot():
        raise ConfigError(f"{folder} already holds a run: pass --resume to continue it, "
                          f"or choose another --out")
    else:    # a config made in Python may name task modules relative to the working folder
        cfg = replace(cfg, task_modules=tuple(str(Path(m).resolve()) for m in cfg.task_modules))
    return cfg


def _warm_start(cfg: SearchConfig) -> Program:
    try:
        return load_program(cfg.warm_start)
    except ProgramError as exc:
        raise ConfigError(f"[search] warm_start: {exc}") from None


def _evolution(store: RunStore, cfg: SearchConfig, warm: Program | None) -> RegularizedEvolution:
    """Evolution from the warm start ``warm`` of a new run, or, where ``warm`` is None, restored
    from the run's last snapshot (which holds its warm start) with the fitness cache rebuilt from the
    recorded candidates. A snapshot that cannot be restored is an error, never a fresh start."""
    snap = None if warm is not None else store.last_snapshot()
    if warm is None and snap is None:          # a run stopped before its first commit: nothing recorded
        warm = _warm_start(cfg)
    if snap is not None:
        try:
            warm = Candidate.from_dict(snap["warm_start"]).program
        except (ProgramError, KeyError, TypeError) as exc:
            raise DamagedRunError(f"{store.path}: the last population snapshot has no readable warm start "
                                  f"({type(exc).__name__}: {exc})") from None
    evo = RegularizedEvolution(warm, cfg.evolution(), seed=cfg.seed)
    if snap is not None:
        try:
            evo.restore(snap)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DamagedRunError(f"{store.path}: the last population snapshot cannot be restored "
                                  f"({type(exc).__name__}: {exc})") from None
        evo.seed_cache(store.cache_entries())
    return evo


def _suite(store: RunStore, cfg: SearchConfig, echo) -> SuiteSpec:
    """The config's suite with its tuned-AdamW baselines, and the funnel size's when the funnel is
    on: computed once per run (the task cache makes that fast) and kept in the store, so that a
    resumed run scores against the same numbers."""
    kind = _device_kind(cfg)
    suite = replace(cfg.suite(), device_kind=kind)
    baselines, large = store.baselines()
    saved = store.get_meta("device_kind") or "cpu"      # runs before devices trained on the CPU
    if baselines is not None and saved != kind:
        raise ConfigError(f"this run's baselines were tuned on {saved} and this session would train on {kind} "
                          f"([executor] device = {cfg.device!r}, gpus_per_worker = {cfg.gpus_per_worker:g}"
                          f"{', in-process' if cfg.in_process else ''}): a search never mixes device kinds, "
                          f"whose losses differ")
    store.set_meta("device_kind", kind)
    if baselines is None:
        baselines = _baselines(cfg, suite, echo)
        store.set_baselines(baselines, large)
    if cfg.funnel and large is None:
        echo("funnel selection: tuning AdamW on the large task sizes")
        large = _baselines(cfg, replace(suite, size=funnels.SIZE), echo)
        store.set_baselines(baselines, large)
    return replace(suite, baselines=baselines, large_baselines=large or {})


def _device_kind(cfg: SearchConfig) -> str:
    """The device kind the run's candidates train on (``devices.expected_kind``); ConfigError where
    the config cannot train there."""
    from tasks import devices
    try:
        return devices.expected_kind(cfg.device, cfg.gpus_per_worker, cfg.in_process)
    except devices.DeviceError as exc:
        raise ConfigError(f"[executor] {exc}") from None


def _baselines(cfg: SearchConfig, suite: SuiteSpec, echo) -> dict:
    """Tuned AdamW on the suite, on the device kind its candidates train on: in the driver, unless
    the workers train on GPUs the driver need not have (then in a Ray task given a worker's GPUs)."""
    from tasks import devices
    if suite.device_kind == "cpu":
        return compute_baselines(suite, echo=echo, device="cpu")
    if cfg.in_process:
        return compute_baselines(suite, echo=echo, device=devices.resolve(cfg.device))
    from .executors import init_ray, remote_baselines
    init_ray(cfg.address or None, cfg.workers or None, modules=cfg.task_modules)
    echo(f"tuning AdamW on a worker's GPU ({cfg.gpus_per_worker:g} GPU)")
    return remote_baselines(suite, cfg.gpus_per_worker)


def _population_readings(store: RunStore, ids) -> dict[int, tuple]:
    """Early stopping's readings of recorded candidates ``ids`` (the population a resumed run starts
    from), from the store; a candidate served from the cache has its source's."""
    out = {}
    for cid in dict.fromkeys(ids):
        row = store.candidate(cid)
        if row and row["status"] == "cached" and row["cached_from"] is not None:
            row = store.candidate(row["cached_from"])
        if row and row["status"] == "evaluated" and not row["failure"] and row["metrics"]:
            out[cid] = early_stop.readings(json.loads(row["metrics"]))
    return out


class _Session:
    """One driver session over an open run: the loop, what it has yet to commit, and the closing."""

    def __init__(self, cfg: SearchConfig, store: RunStore, evo: RegularizedEvolution, executor, progress,
                 baselines: dict):
        self.cfg, self.store, self.evo, self.executor, self.progress = cfg, store, evo, executor, progress
        self.baselines = baselines
        self.funnel = cfg.funnel_settings()
        self.warm_fitness = store.get_meta("warm_start_fitness")
        self.previous_elapsed = store.get_meta("elapsed", 0.0)
        self.start = time.time()
        self.stopped_by: str | None = None
        self.done: list = []                     # (candidate, evaluation) not yet committed
        self.held: list = []                     # cache hits not yet committed
        self.screened: list = []                 # children the numeric screen failed, not yet committed
        self.late_large: dict[int, float] = {}   # funnel scores of candidates not yet recorded
        self.last_commit = 0.0
        self.best_seen = evo.best.fitness if evo.best else None
        self.replaced = 0                        # worker actors replaced so far (reported as they die)
        self.said: set[str] = set()              # worker warnings already shown
        self.describer = Describer()
        hof = store.hall_of_fame(cfg.hall_of_fame)
        self.describer.known.update(store.descriptions(e["canonical_hash"] for e in hof))
        self.readings: dict[int, tuple] = {}      # early stopping: candidate id -> partial fitness readings
        if cfg.early_stop.enabled:
            self.readings = _population_readings(store, [m.candidate.id for m in evo.population])

    def _submit(self, children: list[Candidate]) -> None:
        """Send children out, with early stopping's bars from the population as it is now."""
        if not self.cfg.early_stop.enabled:
            self.executor.submit(children)
            return
        bars = self.cfg.early_stop.bars([self.readings.get(m.candidate.id, ()) for m in self.evo.population])
        self.executor.submit(children, bars=bars)

    def elapsed(self) -> float:
        return self.previous_elapsed + time.time() - self.start

    def resubmit_lost(self) -> None:
        """What the previous driver had sent out when it stopped: pending candidates, and funnel
        evaluations whose score never came back."""
        if self.evo.pending:
            self._submit(list(self.evo.pending.values()))
        if self.funnel.enabled and self.warm_fitness is not None:
            lost = self.funnel.missing(self.store.evaluated(), self.evo.warm_start.id, self.warm_fitness)
            self.executor.submit([Candidate(i, Program.parse(t), None, "", "", "") for i, t in lost],
                                 size=funnels.SIZE)

    def loop(self) -> None:
        """Until the budget is spent or Ctrl-C: keep the executor full, record what comes back."""
        def on_signal(signum, frame):
            self.stopped_by = "interrupted"
        old_handler = signal.signal(signal.SIGINT, on_signal)
        try:
            while not self._should_stop():
                free = self.executor.capacity() - self.executor.in_flight()
                remaining = self.cfg.max_evals - self.evo.counters.evaluated - len(self.evo.pending)
                if free > 0 and remaining > 0:
                    children = self.evo.ask(min(free, remaining))
                    if children:
                        self._submit(children)
                results = self.executor.poll(timeout=0.2)
                self._record(results)
                if time.time() - self.last_commit >= COMMIT_INTERVAL:
                    self._commit()
                if self.progress:
                    self.progress.update(self.evo, self.executor, self.elapsed())
                if not results and not self.executor.in_flight() and not self.evo.pending and not free:
                    time.sleep(0.05)
        finally:
            try:
                self._close()
            finally:
                signal.signal(signal.SIGINT, old_handler)   # (a second Ctrl-C cannot cut the close short)

    def _should_stop(self) -> bool:
        if self.stopped_by:
            return True
        if self.evo.counters.evaluated >= self.cfg.max_evals:
            self.stopped_by = "max_evals"
        elif self.cfg.time_limit and self.elapsed() >= self.cfg.time_limit:
            self.stopped_by = "time_limit"
        return self.stopped_by is not None

    def _record(self, results) -> None:
        """Tell evolution the proxy results, hold them for the next commit, and send the funnel's
        picks to the large tasks; funnel scores wait until their candidate is recorded."""
        evo = self.evo
        self._report_workers(results)
        for r in results:
            if r.size != "proxy":
                self.late_large[r.candidate_id] = r.fitness
                continue
            candidate = evo.pending[r.candidate_id]
            is_record = evo.best is None or r.fitness > evo.best.fitness
            evo.tell(r.candidate_id, r.fitness)
            note = getattr(self.progress, "note_best", None)     # an optional part of the progress protocol
            if is_record and note:
                note(r.candidate_id, readings_text(task_readings(r.metrics, self.baselines)))
            self.done.append((candidate, r))
            if self.cfg.early_stop.enabled and r.failure is None:
                self.readings[r.candidate_id] = early_stop.readings(r.metrics)
            is_warm = candidate.id == evo.warm_start.id
            if is_warm:
                self.warm_fitness = r.fitness
                self.store.set_meta("warm_start_fitness", r.fitness)
            if self.funnel.wants(r.fitness, r.failure, self.warm_fitness, is_warm, is_record):
                self.executor.submit([candidate], size=funnels.SIZE)
        hits = evo.take_cache_hits()
        if self.cfg.early_stop.enabled:
            for h in hits:
                self.readings[h.candidate.id] = self._readings_of(h.source_id)
        self.held.extend(hits)
        self.screened.extend(evo.take_screened())

    def _readings_of(self, candidate_id: int) -> tuple:
        """Early stopping's readings of a candidate told before (this session or, from the store, an
        earlier one); empty when it failed or has none."""
        if candidate_id not in self.readings:
            self.readings[candidate_id] = _population_readings(self.store, [candidate_id]).get(candidate_id, ())
        return self.readings[candidate_id]

    def _report_workers(self, results) -> None:
        """Warnings raised in the workers, and workers that died, on the terminal (each distinct
        message once per session) and in ``RUN/workers.log`` (every occurrence)."""
        lines = [f"{r.worker} (candidate {r.candidate_id}): {w}" for r in results for w in r.warnings]
        replaced = getattr(self.executor, "replaced", 0)
        if replaced > self.replaced:
            lines.append(f"{replaced - self.replaced} worker(s) died and were replaced; their candidates are "
                         f"trained again")
            self.replaced = replaced
        if not lines:
            return
        with open(self.store.folder / WORKER_LOG, "a") as log:
            log.writelines(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n" for line in lines)
        for line in lines:
            message = line.split(": ", 1)[-1]
            if message not in self.said:
                self.said.add(message)
                (self.progress.log if self.progress else print)(f"worker: {line}")

    def _commit(self) -> None:
        """Finished candidates and a snapshot in one transaction, at most every ``COMMIT_INTERVAL``
        seconds (a snapshot serialises the whole population: a driver killed in between loses only
        those seconds of results, which resume re-evaluates); then funnel scores, and the hall of
        fame when it changed."""
        if self.done or self.held or self.screened:
            self.store.set_meta("elapsed", self.elapsed())
            self.store.commit_step(self.done, self.held, self.evo.snapshot(), self.screened)
            self.done, self.held, self.screened = [], [], []
        self.last_commit = time.time()
        applied = [c for c in self.late_large if self.store.set_large_fitness(c, self.late_large[c])]
        for cid in applied:
            del self.late_large[cid]
        best = self.evo.best
        improved = best is not None and (self.best_seen is None or best.fitness > self.best_seen)
        if improved or applied or self.describer.fresh():
            self.best_seen = best.fitness if best else None
            self.store.put_descriptions(self.describer.known)
            self.store.write_hall_of_fame(self.cfg.hall_of_fame, self._describe)

    def _describe(self, entry: dict) -> dict:
        return self.describer.get(entry["canonical_hash"], entry["program"])

    def _close(self) -> None:
        """Commit everything with the descriptions made so far (without waiting for more: see
        ``Describer.stop``), release the executor."""
        store = self.store
        self.describer.stop()
        try:
            store.set_meta("elapsed", self.elapsed())
            store.commit_step(self.done, self.held + self.evo.take_cache_hits(), self.evo.snapshot(),
                              self.screened + self.evo.take_screened())
            for cid, value in self.late_large.items():
                store.set_large_fitness(cid, value)
            known = dict(self.describer.known)
            store.put_descriptions(known)
            store.write_hall_of_fame(self.cfg.hall_of_fame, lambda entry: known.get(entry["canonical_hash"], {}))
            store.set_meta("counters", self.evo.counters.to_dict())
        finally:
            self.executor.shutdown()       # the actors go even when the store cannot take the close

    def outcome(self, folder: Path) -> SearchOutcome:
        c, best = self.evo.counters, self.evo.best
        return SearchOutcome(folder, c.evaluated, c.cache_hits, c.rejected, c.screened, c.generated,
                             best.candidate.id if best else None, best.fitness if best else None,
                             self.store.get_meta("elapsed", 0.0), self.stopped_by)   # as `show` reports it
