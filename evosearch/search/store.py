"""The run store: a run folder with a SQLite database (WAL) and an always-current hall of fame.

    RUN/run.sqlite        config, every candidate, population snapshots
    RUN/hall_of_fame.json the best distinct programs so far (rewritten atomically)
    RUN/best.py           the best program in the text form

Every driver step is one transaction: the candidates it finished and the evolution snapshot taken
right after telling them. A driver killed at any moment therefore leaves a database whose last
snapshot accounts for exactly the candidates recorded, and ``--resume`` continues from there
without recording any candidate twice.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .readings import task_readings

if TYPE_CHECKING:      # (types only: reading a run must not load the engine, for a fast `show`)
    from .evolution import CacheHit, Candidate
    from .suite import Evaluation

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER,
    mutation TEXT,
    program TEXT NOT NULL,
    canonical_hash TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,             -- 'evaluated' or 'cached'
    fitness REAL,
    task_fitness TEXT,                -- JSON {task: fitness}
    metrics TEXT,                     -- JSON {task: {metric: value}}
    failure TEXT,
    cached_from INTEGER,
    cache_reason TEXT,
    worker TEXT,
    seconds REAL,
    recorded_at REAL NOT NULL,
    large_fitness REAL                -- funnel (meta-validation) score, when computed
);
CREATE INDEX IF NOT EXISTS by_fitness ON candidates (fitness);
CREATE TABLE IF NOT EXISTS descriptions (      -- simplified form and family, per canonical hash
    canonical_hash TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    state TEXT NOT NULL
);
"""


class RunFolderError(ValueError):
    """A folder that holds no run where one is needed; the message names the folder."""


class RunStore:
    """A run folder (see the module docstring): every write a transaction, every read of the current
    state. Opens the run in ``folder``, which must exist (RunFolderError otherwise: reading a run
    never creates one); ``create=True`` makes the folder and an empty store for a new run."""

    def __init__(self, folder: str | Path, create: bool = False):
        self.folder = Path(folder)
        path = self.folder / "run.sqlite"
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
        elif not path.is_file():
            raise RunFolderError(f"{str(folder)!r} is not a run folder (no run.sqlite)")
        elif path.stat().st_size == 0:
            raise RunFolderError(f"{str(folder)!r} holds no run (run.sqlite is empty)")
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- meta -------------------------------------------------------------------------------
    def set_meta(self, key: str, value) -> None:
        """Record a JSON value under ``key`` (config, baselines, counters, ...)."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default=None):
        """The value recorded under ``key``, else ``default``."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- writing ----------------------------------------------------------------------------
    def commit_step(self, evaluated: list[tuple[Candidate, Evaluation]], hits: list[CacheHit],
                    snapshot: dict) -> None:
        """Record finished candidates and the snapshot taken after them, atomically."""
        now = time.time()
        rows = []
        for c, e in evaluated:
            rows.append((c.id, c.parent_id, c.mutation, str(c.program), c.canonical_hash, c.fingerprint,
                         "evaluated", e.fitness, json.dumps(e.task_fitness), json.dumps(e.metrics),
                         e.failure, None, None, e.worker, e.seconds, now))
        for h in hits:
            c = h.candidate
            rows.append((c.id, c.parent_id, c.mutation, str(c.program), c.canonical_hash, c.fingerprint,
                         "cached", h.fitness, None, None, None, h.source_id, h.reason, None, 0.0, now))
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(
                "INSERT INTO candidates (id, parent_id, mutation, program, canonical_hash, fingerprint,"
                " status, fitness, task_fitness, metrics, failure, cached_from, cache_reason, worker,"
                " seconds, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            self.db.execute("INSERT INTO snapshots (created_at, state) VALUES (?, ?)",
                            (now, json.dumps(snapshot)))
            self.db.execute("DELETE FROM snapshots WHERE id < (SELECT MAX(id) - 20 FROM snapshots)")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def descriptions(self, hashes) -> dict[str, dict]:
        """The stored descriptions (simplified form, family) of these canonical hashes."""
        hashes = list(hashes)
        if not hashes:
            return {}
        rows = self.db.execute(f"SELECT canonical_hash, data FROM descriptions WHERE canonical_hash IN "
                               f"({','.join('?' * len(hashes))})", hashes).fetchall()
        return {h: json.loads(d) for h, d in rows}

    def put_descriptions(self, described: dict[str, dict]) -> None:
        """Store descriptions by canonical hash."""
        self.db.executemany("INSERT OR REPLACE INTO descriptions VALUES (?, ?)",
                            [(h, json.dumps(d)) for h, d in described.items()])

    def set_large_fitness(self, candidate_id: int, value: float) -> bool:
        """False when the candidate is not recorded (yet)."""
        cur = self.db.execute("UPDATE candidates SET large_fitness = ? WHERE id = ?", (value, candidate_id))
        return cur.rowcount > 0

    def set_baselines(self, baselines: dict, large: dict | None = None) -> None:
        """The tuned-AdamW baselines of the run's suite, and of its funnel size when there is one
        (``{task: {seed: [initial loss, best loss, best lr]}}`` each)."""
        self.set_meta("baselines", {**baselines, **({_LARGE_BASELINES: large} if large is not None else {})})

    def baselines(self) -> tuple[dict | None, dict | None]:
        """(the suite's baselines, the funnel size's), None where not computed yet; seeds as ints."""
        stored = self.get_meta("baselines")
        if stored is None:
            return None, None
        large = stored.pop(_LARGE_BASELINES, None)
        return _int_seeds(stored), _int_seeds(large) if large is not None else None

    # -- reading ----------------------------------------------------------------------------
    def last_snapshot(self) -> dict | None:
        """The newest evolution snapshot, or None."""
        row = self.db.execute("SELECT state FROM snapshots ORDER BY id DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def evaluated(self) -> list[tuple]:
        """(id, program text, fitness, failure, large-size fitness) of every trained candidate, in id
        order."""
        return self.db.execute("SELECT id, program, fitness, failure, large_fitness FROM candidates "
                               "WHERE status = 'evaluated' ORDER BY id").fetchall()

    def cache_entries(self):
        """(canonical hash, fingerprint, fitness, id) of every trained candidate, for the fitness cache."""
        return self.db.execute("SELECT canonical_hash, fingerprint, fitness, id FROM candidates "
                               "WHERE status = 'evaluated' ORDER BY id").fetchall()

    def counts(self) -> dict:
        """``{"evaluations": trained, "cache_hits": served from the cache}``."""
        rows = dict(self.db.execute("SELECT status, COUNT(*) FROM candidates GROUP BY status").fetchall())
        return {"evaluations": rows.get("evaluated", 0), "cache_hits": rows.get("cached", 0)}

    def candidate(self, candidate_id: int) -> dict | None:
        """One candidate's row as a dict, or None."""
        cur = self.db.execute("SELECT * FROM candidates WHERE id = ?", (candidate_id,))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None

    def history(self) -> list[tuple[int, float, float, str]]:
        """(id, fitness, recorded_at, status) of every candidate in id order."""
        return self.db.execute("SELECT id, fitness, recorded_at, status FROM candidates ORDER BY id").fetchall()

    def hall_of_fame(self, k: int = 10) -> list[dict]:
        """The k best evaluated programs, one per canonical hash, each with its per-task readings
        (``readings.py``: validation loss, accuracy, ratio to tuned AdamW's loss)."""
        cur = self.db.execute(
            "SELECT id, fitness, program, canonical_hash, task_fitness, large_fitness, parent_id, metrics "
            "FROM candidates WHERE status = 'evaluated' AND failure IS NULL ORDER BY fitness DESC, id ASC "
            "LIMIT ?", (k * 20,))
        baselines = self.baselines()[0] or {}
        seen, out = set(), []
        for cid, fitness, program, h, tf, large, parent, metrics in cur.fetchall():
            if h in seen:
                continue
            seen.add(h)
            out.append({"id": cid, "fitness": fitness, "program": program, "canonical_hash": h,
                        "task_fitness": json.loads(tf) if tf else {}, "large_fitness": large,
                        "parent_id": parent,
                        "tasks": task_readings(json.loads(metrics) if metrics else {}, baselines)})
            if len(out) == k:
                break
        return out

    def write_hall_of_fame(self, k: int = 10, describe=None) -> None:
        """``describe(entry) -> dict`` adds fields to each entry (the driver adds the simplified
        program and its family)."""
        hof = self.hall_of_fame(k)
        if describe:
            for entry in hof:
                entry.update(describe(entry))
        _atomic_write(self.folder / "hall_of_fame.json", json.dumps(hof, indent=2))
        if hof:
            _atomic_write(self.folder / "best.py", hof[0]["program"])


# The funnel size's baselines sit in the "baselines" record under this key (a stored format: run
# folders written since the funnel exist hold it).
_LARGE_BASELINES = "@large"


def _int_seeds(baselines: dict) -> dict:
    """JSON keys are strings; seeds are ints."""
    return {task: {int(seed): v for seed, v in per.items()} for task, per in baselines.items()}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
