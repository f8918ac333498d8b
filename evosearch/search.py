"""The search driver: evolution + executor + run store, as an asynchronous steady-state loop.

The loop keeps the executor full (``ask`` as many children as it has free slots), collects finished
evaluations as they come, ``tell``s them and commits them with a fresh snapshot in one transaction.
Everything the loop does to the outside world (Ray, SQLite, the clock, the progress line, signals)
happens here; evolution, mutation and analysis stay pure.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import reference
from .config import ConfigError, SearchConfig
from .evaluate import compute_baselines
from .evolution import RegularizedEvolution
from .program import Program
from .store import RunStore

COMMIT_INTERVAL = 0.5   # seconds between commits of results and snapshot


@dataclass
class SearchOutcome:
    folder: Path
    evaluations: int
    cache_hits: int
    rejected: int
    generated: int
    best_id: int | None
    best_fitness: float | None
    seconds: float
    stopped_by: str


def load_warm_start(spec: str) -> Program:
    if Path(spec).is_file():
        return Program.load(spec)
    if spec in reference.names():
        return reference.load(spec)
    raise ConfigError(f"warm_start {spec!r} is neither a program file nor a reference program "
                      f"({', '.join(reference.names())})")


def make_executor(cfg: SearchConfig, suite):
    if cfg.in_process:
        from .executor import InProcessExecutor
        return InProcessExecutor(suite, batch_size=cfg.batch_size)
    from .executor import RayExecutor, init_ray
    init_ray(cfg.address or None, cfg.workers or None)
    return RayExecutor(suite, workers=cfg.workers or None, batch_size=cfg.batch_size)


def run_search(cfg: SearchConfig, folder: str | Path, resume: bool = False, progress=None,
               executor=None) -> SearchOutcome:
    folder = Path(folder)
    store = RunStore(folder)
    stop = {"why": None}
    try:
        if resume:
            saved = store.get_meta("config")
            if saved is None:
                raise ConfigError(f"{folder} holds no run to resume")
            cfg = replace(SearchConfig.from_dict(saved), max_evals=cfg.max_evals, time_limit=cfg.time_limit,
                          workers=cfg.workers, address=cfg.address, in_process=cfg.in_process)
        elif store.counts()["evaluations"] or store.last_snapshot():
            raise ConfigError(f"{folder} already holds a run: pass --resume to continue it, "
                              f"or choose another --out")
        store.set_meta("config", cfg.to_dict())
        warm = load_warm_start(cfg.warm_start)
        evo = RegularizedEvolution(warm, cfg.evolution(), seed=cfg.seed)
        snap = store.last_snapshot() if resume else None
        if snap:
            evo.restore(snap)
            evo.seed_cache(store.cache_entries())
        suite = cfg.suite()
        baselines = store.get_meta("baselines")
        if baselines is None:
            baselines = compute_baselines(suite, echo=progress.log if progress else print)
            store.set_meta("baselines", baselines)
        if cfg.funnel and "@large" not in baselines:
            echo = progress.log if progress else print
            echo("funnel selection: tuning AdamW on the large task sizes")
            baselines["@large"] = compute_baselines(replace(suite, size="large"), echo=echo)
            store.set_meta("baselines", baselines)

        def ints(b):
            return {t: {int(s): v for s, v in per.items()} for t, per in b.items()}
        suite = replace(suite, baselines={**ints({k: v for k, v in baselines.items() if k != "@large"}),
                                          **({"@large": ints(baselines["@large"])} if "@large" in baselines else {})})
        executor = executor or make_executor(cfg, suite)
        if snap and evo.pending:
            executor.submit(list(evo.pending.values()))      # evaluations lost with the old driver
        warm_fitness = store.get_meta("warm_start_fitness")
        if cfg.funnel and warm_fitness is not None:          # funnel evaluations lost with it
            lost = store.funnel_missing(warm_fitness + cfg.funnel_margin, cfg.funnel_new_best)
            from .evolution import Candidate
            executor.submit([Candidate(i, Program.parse(t), None, "", "", "") for i, t in lost], size="large")
        previous_elapsed = store.get_meta("elapsed", 0.0)
        start = time.time()

        describer = Describer()
        describer.known.update(store.descriptions(e["canonical_hash"] for e in store.hall_of_fame(cfg.hall_of_fame)))

        def describe(entry: dict) -> dict:
            return describer.get(entry["canonical_hash"], entry["program"])

        def on_signal(signum, frame):
            stop["why"] = "interrupted"
        old_handler = signal.signal(signal.SIGINT, on_signal)
        best_seen = evo.best.fitness if evo.best else None
        done: list = []
        held: list = []
        late_large: dict[int, float] = {}
        last_commit = 0.0
        try:
            while True:
                elapsed = previous_elapsed + time.time() - start
                if stop["why"]:
                    break
                if evo.counters.evaluated >= cfg.max_evals:
                    stop["why"] = "max_evals"
                    break
                if cfg.time_limit and elapsed >= cfg.time_limit:
                    stop["why"] = "time_limit"
                    break
                free = executor.capacity() - executor.in_flight()
                remaining = cfg.max_evals - evo.counters.evaluated - len(evo.pending)
                if free > 0 and remaining > 0:
                    children = evo.ask(min(free, remaining))
                    if children:
                        executor.submit(children)
                results = executor.poll(timeout=0.2)
                by_id = {}
                for r in results:
                    if r.size != "proxy":          # funnel: a meta-validation score, not a fitness
                        late_large[r.candidate_id] = r.fitness   # written once the candidate is
                        continue
                    candidate = evo.pending[r.candidate_id]
                    record = evo.best is None or r.fitness > evo.best.fitness   # funnel new_best_only
                    evo.tell(r.candidate_id, r.fitness)
                    by_id[r.candidate_id] = (candidate, r)
                    if candidate.id == evo.warm_start.id:
                        warm_fitness = r.fitness
                        store.set_meta("warm_start_fitness", r.fitness)
                    if cfg.funnel and r.failure is None and warm_fitness is not None and (
                            candidate.id == evo.warm_start.id or (r.fitness > warm_fitness + cfg.funnel_margin
                                                                  and (record or not cfg.funnel_new_best))):
                        executor.submit([candidate], size="large")
                # Commit (finished candidates + a snapshot, one transaction) at most every
                # COMMIT_INTERVAL seconds: a snapshot serialises the whole population. A driver
                # killed in between loses only those seconds of results, which resume re-evaluates.
                done.extend(by_id.values())
                hits = evo.take_cache_hits()
                held.extend(hits)
                if time.time() - last_commit >= COMMIT_INTERVAL:
                    if done or held:
                        store.set_meta("elapsed", previous_elapsed + time.time() - start)
                        store.commit_step(done, held, evo.snapshot())
                        done, held = [], []
                    last_commit = time.time()
                    applied = [c for c in late_large if store.set_large_fitness(c, late_large[c])]
                    for cid in applied:
                        del late_large[cid]
                    improved = evo.best is not None and (best_seen is None or evo.best.fitness > best_seen)
                    if improved or applied or describer.fresh():
                        best_seen = evo.best.fitness if evo.best else None
                        store.put_descriptions(describer.known)
                        store.write_hall_of_fame(cfg.hall_of_fame, describe)
                if progress:
                    progress.update(evo, executor, previous_elapsed + time.time() - start)
                if not results and not executor.in_flight() and not evo.pending and not free:
                    time.sleep(0.05)
        finally:
            signal.signal(signal.SIGINT, old_handler)
            store.set_meta("elapsed", previous_elapsed + time.time() - start)
            store.commit_step(done, held + evo.take_cache_hits(), evo.snapshot())
            for cid, value in late_large.items():
                store.set_large_fitness(cid, value)
            store.write_hall_of_fame(cfg.hall_of_fame, describe)     # queues the last descriptions
            describer.finish()
            store.put_descriptions(describer.known)
            store.write_hall_of_fame(cfg.hall_of_fame, describe)
            store.set_meta("counters", evo.counters.to_dict())
            executor.shutdown()
        c = evo.counters
        return SearchOutcome(folder, c.evaluated, c.cache_hits, c.rejected, c.generated,
                             evo.best.candidate.id if evo.best else None,
                             evo.best.fitness if evo.best else None,
                             previous_elapsed + time.time() - start, stop["why"])
    finally:
        store.close()


class Describer:
    """Describes hall-of-fame programs (sympy: up to a second each) on a background thread, so that
    the driver loop never waits for it; the hall of fame shows each description once it is ready.
    During the search it describes at most one program per ``interval`` seconds: on a 2-core machine
    with 2 workers, describing every new best took ~40% of a core from the workers. ``finish``
    describes whatever is left at full speed."""

    def __init__(self, interval: float = 10.0):
        self.interval = interval
        import queue
        import threading
        self.known: dict[str, dict] = {}
        self.queued: set[str] = set()
        self.queue: "queue.Queue" = queue.Queue()
        self._new = False
        self.finishing = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="evosearch-describer")
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            h, text = item
            started = time.time()
            self.known[h] = describe_program(Program.parse(text))
            self._new = True
            while time.time() - started < self.interval and not self.finishing:
                time.sleep(0.05)

    def get(self, canonical_hash: str, program_text: str) -> dict:
        if canonical_hash in self.known:
            return self.known[canonical_hash]
        if canonical_hash not in self.queued:
            self.queued.add(canonical_hash)
            self.queue.put((canonical_hash, program_text))
        return {}

    def fresh(self) -> bool:
        """True once after new descriptions became ready."""
        new, self._new = self._new, False
        return new

    def finish(self) -> None:
        self.finishing = True
        self.queue.put(None)
        self.thread.join()


def describe_program(prog: Program) -> dict:
    """``{"simplified": text, "family": str or None, "constants": {...}}`` for a program."""
    from .match import identify
    from .simplify import simplify
    try:
        small = simplify(prog)
        fam = identify(small)
    except Exception as exc:  # noqa: BLE001 - a description must never stop a search
        return {"simplified": None, "family": None, "constants": {}, "note": f"{type(exc).__name__}: {exc}"}
    return {"simplified": str(small), "family": fam.family if fam else None,
            "constants": fam.constants if fam else {}}


def summary(folder: str | Path) -> dict:
    """What ``evosearch show RUN --json`` prints (keys of DESIGN.md)."""
    store = RunStore(folder)
    try:
        counts = store.counts()
        counters = store.get_meta("counters") or {}
        snap = store.last_snapshot()
        if snap:
            counters = snap["counters"]
        hof = store.hall_of_fame(store.get_meta("config", {}).get("hall_of_fame", 10))
        known = store.descriptions(e["canonical_hash"] for e in hof)
        missing = {e["canonical_hash"]: describe_program(Program.parse(e["program"]))
                   for e in hof if e["canonical_hash"] not in known}
        if missing:
            store.put_descriptions(missing)
            known.update(missing)
        for entry in hof:
            entry.update(known[entry["canonical_hash"]])
        best = {"program": hof[0]["program"], "fitness": hof[0]["fitness"], "id": hof[0]["id"]} if hof else None
        return {"evaluations": counts["evaluations"], "cache_hits": counts["cache_hits"],
                "pruned": counters.get("rejected", 0), "generated": counters.get("generated", 0),
                "warm_start_fitness": store.get_meta("warm_start_fitness"),
                "elapsed": store.get_meta("elapsed", 0.0), "best": best, "hall_of_fame": hof}
    finally:
        store.close()


def to_json(obj) -> str:
    return json.dumps(obj, indent=2)
