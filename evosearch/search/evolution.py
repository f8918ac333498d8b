"""Regularized (aging) evolution as a pure ask/tell object (Real et al. 2019; Chen et al. 2023 Sec. 2.2).

The population starts as copies of the warm-start program. ``ask`` runs tournaments, mutates the
winners and returns the children that need training. Children that abstract execution rejects are
mutated again and never returned; children whose canonical hash or functional fingerprint has been
seen reuse the known fitness and join the population at once (the paper's cache: "don't pay twice");
a child identical to one still being evaluated waits for that result; a child that fails the
numeric screen (``lang/screen.py``) joins with the failure fitness, untrained. ``tell`` adds an
evaluated child. Everything is a deterministic function of the seed and the order of ``tell`` calls; the whole
state round-trips through ``snapshot``/``restore`` (JSON), except the fitness cache, which the run
store rebuilds from its records.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field, replace
from functools import cached_property

from evosearch.lang.canonical import canonical_hash
from evosearch.lang.edits import dead_edit
from evosearch.lang.errors import ProgramError
from evosearch.lang.fingerprint import fingerprint
from evosearch.lang.kinds import check
from evosearch.lang.liveness import live_states, pruning_reason
from evosearch.lang.program import Program
from evosearch.lang.pruning import lr_reason
from evosearch.lang.screen import screen_reason
from tasks.results import FAILURE_FITNESS

from .mutation import MutationConfig, mutate


@dataclass(frozen=True)
class Candidate:
    """A program evolution produced: its id, parent, the mutation that made it, and its two cache
    keys."""
    id: int
    program: Program
    parent_id: int | None
    mutation: str
    canonical_hash: str
    fingerprint: str          # "" for a child served by its canonical hash (never computed)

    @cached_property
    def _dict(self) -> dict:
        return {"id": self.id, "program": self.program.to_dict(), "parent_id": self.parent_id,
                "mutation": self.mutation, "canonical_hash": self.canonical_hash,
                "fingerprint": self.fingerprint}

    def to_dict(self) -> dict:
        """Plain data, for snapshots."""
        return self._dict

    @staticmethod
    def from_dict(d: dict) -> "Candidate":
        """The candidate a snapshot kept (its program checked again)."""
        return Candidate(d["id"], Program.from_json(d["program"]), d["parent_id"], d["mutation"],
                         d["canonical_hash"], d["fingerprint"])


@dataclass(frozen=True)
class Member:
    """A population member: a candidate and its fitness."""
    candidate: Candidate
    fitness: float


@dataclass(frozen=True)
class CacheHit:
    """A child that was not trained: its fitness is that of ``source_id``."""
    candidate: Candidate
    fitness: float
    source_id: int
    reason: str                  # "canonical hash", "fingerprint" or "in flight"


@dataclass(frozen=True)
class Screened:
    """A child the numeric screen failed (``lang/screen.py``): scored as a failure, not trained."""
    candidate: Candidate
    reason: str
    fitness: float = FAILURE_FITNESS


@dataclass
class Counters:
    """What evolution has done so far, for progress lines and reports."""
    generated: int = 0           # children produced by mutation
    rejected: int = 0            # rejected by abstract execution (re-mutated, never evaluated)
    cache_hits: int = 0          # served from the cache
    screened: int = 0            # failed the numeric screen (scored as failures, never trained)
    evaluated: int = 0           # told (trained)
    restarts: int = 0

    def to_dict(self) -> dict:
        """Plain data, for snapshots and the run store."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class EvolutionConfig:
    """Population and tournament sizes, restarts, mutation settings, and the strategy (evolution or
    random search)."""
    population_size: int = 100
    tournament_size: int = 10
    restart_patience: int = 0    # evaluations without improvement before restarting from the best (0: never)
    max_mutation_tries: int = 100
    mutation: MutationConfig = field(default_factory=MutationConfig)
    strategy: str = "evolution"  # or "random": children are 1..random_walk random mutations of the
    random_walk: int = 10        # warm start, no selection (the paper's random-search baseline)
    lr_proportional: bool = True  # prune children whose update is not proportional to lr (lang/pruning.py)
    screen: bool = True          # fail children the numeric screen fails, untrained (lang/screen.py) ...
    lr: float = 1.0              # ... at the lr input the tasks feed
    max_states: int = 0          # prune children with more live state tensors than this (0: no limit)


class RegularizedEvolution:
    """The search algorithm as a pure ask/tell object (see the module docstring); deterministic for
    a seed and an order of ``tell`` calls."""

    def __init__(self, warm_start: Program, config: EvolutionConfig | None = None, seed: int = 0):
        self.config = config or EvolutionConfig()
        if not 1 <= self.config.tournament_size <= self.config.population_size:
            raise ValueError("need 1 <= tournament_size <= population_size")
        if self.config.strategy not in ("evolution", "random"):
            raise ValueError(f"unknown strategy {self.config.strategy!r} (evolution or random)")
        check(warm_start)
        states = live_states(warm_start)
        if self.config.max_states and len(states) > self.config.max_states:
            raise ValueError(f"max_states is {self.config.max_states}, but the warm start keeps {len(states)} "
                             f"live state tensors ({', '.join(states)})")
        self.rng = random.Random(seed)
        self.population: deque[Member] = deque()
        self.counters = Counters()
        self.next_id = 0
        self.pending: dict[int, Candidate] = {}
        self.waiting: dict[int, list[Candidate]] = {}
        self.hash_cache: dict[str, tuple[float, int]] = {}   # canonical hash -> (fitness, id)
        self.fp_cache: dict[str, tuple[float, int]] = {}     # fingerprint -> (fitness, id)
        self.cache_hits_log: list[CacheHit] = []
        self.screened_log: list[Screened] = []
        self.best: Member | None = None
        self.since_improvement = 0
        self.warm_start = self._candidate(warm_start, None, "warm start")
        self._warm_asked = False

    # -- helpers ----------------------------------------------------------------------------
    def _candidate(self, prog: Program, parent: int | None, mutation: str, with_fingerprint=True,
                   canonical: str | None = None) -> Candidate:
        c = Candidate(self.next_id, prog, parent, mutation, canonical or canonical_hash(prog),
                      fingerprint(prog) if with_fingerprint else "")
        self.next_id += 1
        return c

    def _join(self, member: Member) -> None:
        self.population.append(member)
        while len(self.population) > self.config.population_size:
            self.population.popleft()           # aging: the oldest dies, not the worst

    def _tournament(self) -> Member:
        contestants = self.rng.sample(range(len(self.population)), self.config.tournament_size)
        return max((self.population[i] for i in contestants), key=lambda m: (m.fitness, -m.candidate.id))

    def _cached(self, c: Candidate) -> tuple[float, int, str] | None:
        if c.canonical_hash in self.hash_cache:
            return (*self.hash_cache[c.canonical_hash], "canonical hash")
        if c.fingerprint and c.fingerprint in self.fp_cache:
            return (*self.fp_cache[c.fingerprint], "fingerprint")
        return None

    def _in_flight(self, c: Candidate) -> int | None:
        for p in self.pending.values():
            if p.canonical_hash == c.canonical_hash or (c.fingerprint and p.fingerprint == c.fingerprint):
                return p.id
        return None

    # -- ask / tell -------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether the warm start has been told (the population exists)."""
        return bool(self.population)

    def ask(self, n: int) -> list[Candidate]:
        """Up to ``n`` children to evaluate (only the warm start, until it has been told)."""
        if not self.started:
            if self._warm_asked:
                return []
            self._warm_asked = True
            self.pending[self.warm_start.id] = self.warm_start
            return [self.warm_start]
        out: list[Candidate] = []
        budget = 1000 * max(n, 1)
        random_search = self.config.strategy == "random"
        while len(out) < n and budget > 0:
            budget -= 1
            parent = Member(self.warm_start, 0.0) if random_search else self._tournament()
            child_prog, how = None, ""
            steps = self.rng.randint(1, self.config.random_walk) if random_search else 1
            for _ in range(self.config.max_mutation_tries):
                prog, how = parent.candidate.program, []
                for _ in range(steps):
                    prog, what = mutate(prog, self.rng, self.config.mutation)
                    how.append(what)
                how = "; ".join(how)
                self.counters.generated += 1
                # a child that differs from its parent only in dead code is judged as the parent:
                # the same verdicts as the full analyses, at a fraction of their cost
                judged = parent.candidate.program if steps == 1 and dead_edit(parent.candidate.program, prog) else prog
                if judged is prog:
                    try:
                        check(prog)
                    except ProgramError:
                        self.counters.rejected += 1
                        continue
                if pruning_reason(judged) is not None:
                    self.counters.rejected += 1
                    continue
                if self.config.max_states and len(live_states(judged)) > self.config.max_states:
                    self.counters.rejected += 1       # over the memory budget ([search] max_states)
                    continue
                # (a program canonically equal to one already told has passed this rule)
                if (self.config.lr_proportional and canonical_hash(judged) not in self.hash_cache
                        and lr_reason(prog) is not None):
                    self.counters.rejected += 1
                    continue
                child_prog = prog
                break
            if child_prog is None:
                continue
            # The fingerprint (a few hundred microseconds) is only computed when the canonical
            # hash (cheaper) has not been seen.
            child = self._candidate(child_prog, parent.candidate.id, how, with_fingerprint=False,
                                    canonical=canonical_hash(judged))
            if child.canonical_hash not in self.hash_cache:
                child = replace(child, fingerprint=fingerprint(child_prog))
            hit = self._cached(child)
            if hit is not None:
                fitness, source, reason = hit
                self.counters.cache_hits += 1
                self.cache_hits_log.append(CacheHit(child, fitness, source, reason))
                self._join(Member(child, fitness))
                continue
            flying = self._in_flight(child)
            if flying is not None:
                self.waiting.setdefault(flying, []).append(child)
                continue
            why = screen_reason(child_prog, self.config.lr) if self.config.screen else None
            if why is not None:
                self.counters.screened += 1
                self.screened_log.append(Screened(child, why))
                self.hash_cache.setdefault(child.canonical_hash, (FAILURE_FITNESS, child.id))
                self.fp_cache.setdefault(child.fingerprint, (FAILURE_FITNESS, child.id))
                self._join(Member(child, FAILURE_FITNESS))
                continue
            self.pending[child.id] = child
            out.append(child)
        return out

    def tell(self, candidate_id: int, fitness: float) -> None:
        """The fitness of a candidate ``ask`` returned: it joins the population (the warm start
        fills it), children waiting for it take the same fitness, and the best and restarts are
        updated."""
        c = self.pending.pop(candidate_id)
        fitness = float(fitness)
        self.counters.evaluated += 1
        self.hash_cache.setdefault(c.canonical_hash, (fitness, c.id))
        self.fp_cache.setdefault(c.fingerprint, (fitness, c.id))
        member = Member(c, fitness)
        if not self.started:                     # the warm start seeds the whole population
            for _ in range(self.config.population_size):
                self._join(member)
        else:
            self._join(member)
        for twin in self.waiting.pop(candidate_id, []):
            self.counters.cache_hits += 1
            self.cache_hits_log.append(CacheHit(twin, fitness, c.id, "in flight"))
            self._join(Member(twin, fitness))
        if self.best is None or fitness > self.best.fitness:
            self.best = member
            self.since_improvement = 0
        else:
            self.since_improvement += 1
            patience = self.config.restart_patience
            if patience and self.since_improvement >= patience:
                self.population.clear()
                for _ in range(self.config.population_size):
                    self._join(self.best)
                self.counters.restarts += 1
                self.since_improvement = 0

    def take_cache_hits(self) -> list[CacheHit]:
        """The children served from the cache since the last call (for the run store)."""
        hits, self.cache_hits_log = self.cache_hits_log, []
        return hits

    def take_screened(self) -> list[Screened]:
        """The children the numeric screen failed since the last call (for the run store)."""
        screened, self.screened_log = self.screened_log, []
        return screened

    def seed_cache(self, entries) -> None:
        """Refill the fitness cache from ``(canonical_hash, fingerprint, fitness, id)`` records."""
        for h, fp, fitness, cid in entries:
            self.hash_cache.setdefault(h, (fitness, cid))
            self.fp_cache.setdefault(fp, (fitness, cid))

    # -- persistence ------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """The whole state as plain data (JSON), except the fitness cache (``seed_cache`` rebuilds
        it)."""
        state = self.rng.getstate()
        return {
            "rng": [state[0], list(state[1]), state[2]],
            "population": [[m.candidate.to_dict(), m.fitness] for m in self.population],
            "pending": [c.to_dict() for c in self.pending.values()],
            "waiting": {str(k): [c.to_dict() for c in v] for k, v in self.waiting.items()},
            "counters": self.counters.to_dict(),
            "next_id": self.next_id,
            "best": [self.best.candidate.to_dict(), self.best.fitness] if self.best else None,
            "since_improvement": self.since_improvement,
            "warm_asked": self._warm_asked,
            "warm_start": self.warm_start.to_dict(),
        }

    def restore(self, snap: dict) -> None:
        """Continue from a ``snapshot``."""
        self.rng.setstate((snap["rng"][0], tuple(snap["rng"][1]), snap["rng"][2]))
        self.population = deque(Member(Candidate.from_dict(c), f) for c, f in snap["population"])
        self.pending = {c["id"]: Candidate.from_dict(c) for c in snap["pending"]}
        self.waiting = {int(k): [Candidate.from_dict(c) for c in v] for k, v in snap["waiting"].items()}
        self.counters = Counters(**snap["counters"])
        self.next_id = snap["next_id"]
        self.best = Member(Candidate.from_dict(snap["best"][0]), snap["best"][1]) if snap["best"] else None
        self.since_improvement = snap["since_improvement"]
        self._warm_asked = snap["warm_asked"]
        self.warm_start = Candidate.from_dict(snap["warm_start"])
