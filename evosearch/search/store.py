"""The run store: a run folder with a SQLite database (WAL) and an always-current hall of fame.

    RUN/run.sqlite        config, every candidate, population snapshots
    RUN/hall_of_fame.json the best distinct programs so far (rewritten atomically)
    RUN/front.json        the best program per number of live state tensors, and the length front
    RUN/best.py           the best program in the text form

Every driver step is one transaction: the candidates it finished and the evolution snapshot taken
right after telling them. A driver killed at any moment therefore leaves a database whose last
snapshot accounts for exactly the candidates recorded, and ``--resume`` continues from there
without recording any candidate twice.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .front import fill_shapes, fronts, program_shape
from .readings import task_readings

if TYPE_CHECKING:      # (types only: reading a run must not load the engine, for a fast `show`)
    from .evolution import CacheHit, Candidate, Screened
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
    status TEXT NOT NULL,             -- 'evaluated', 'cached' or 'screened'
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


# Made by the first write that records a shape, not on opening: a resume that stops at a damaged
# snapshot leaves an older run's store as it was.
SHAPES = """
CREATE TABLE IF NOT EXISTS shapes (            -- live state tensors and statements, per canonical hash
    canonical_hash TEXT PRIMARY KEY,
    live_states INTEGER NOT NULL,
    live_statements INTEGER NOT NULL
)"""


class RunFolderError(ValueError):
    """A folder that holds no run where one is needed; the message names the folder."""


class DamagedRunError(RunFolderError):
    """A run store that cannot be read as one: the message names the file and what is wrong."""


REQUIRED_TABLES = ("meta", "candidates", "snapshots")


class RunStore:
    """A run folder (see the module docstring): every write a transaction, every read of the current
    state. Opens the run in ``folder``, which must exist (RunFolderError otherwise: reading a run
    never creates one); ``create=True`` makes the folder and an empty store for a new run.
    ``readonly=True`` (what the reading commands use) opens it with SQLite's ``mode=ro``: run.sqlite
    and its WAL are never written (SQLite may create its empty -wal and -shm files beside it).
    Opening an existing run for writing reads every page first (``check``). A store that is not an
    SQLite database, is truncated, or lacks the run tables raises DamagedRunError, on opening or on
    the first read that meets the damage."""

    def __init__(self, folder: str | Path, create: bool = False, readonly: bool = False):
        self.folder = Path(folder)
        self.path = path = self.folder / "run.sqlite"
        fresh = create and not path.exists()
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
        elif not path.is_file():
            raise RunFolderError(f"{str(folder)!r} is not a run folder (no run.sqlite)")
        elif path.stat().st_size == 0:
            raise RunFolderError(f"{str(folder)!r} holds no run (run.sqlite is empty)")
        try:
            # read-only: SQLite's mode=ro never writes run.sqlite, not even to fold in the WAL of a
            # driver that was killed (a read-write connection would, at its close)
            self.db = (sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30,
                                       isolation_level=None) if readonly else
                       sqlite3.connect(path, timeout=30, isolation_level=None))
        except sqlite3.Error as exc:
            raise DamagedRunError(f"{path} cannot be opened: {exc}") from None
        try:
            tables = {row[0] for row in self._rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
            self.described = not readonly or "descriptions" in tables     # (a store older than descriptions)
            self.readonly = readonly
            if not fresh:
                missing = [t for t in REQUIRED_TABLES if t not in tables]
                if missing:
                    raise DamagedRunError(f"{path} is not an evosearch run store (no table {', '.join(missing)})")
            if not readonly and not fresh:
                self.check()                       # before anything is written to it
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(SCHEMA)      # adds what an older version's store lacks
        except BaseException:
            self.db.close()
            raise

    def check(self) -> None:
        """Read every page of the database (SQLite's quick_check: about 0.1 s per 50 MB); raises
        DamagedRunError if any is damaged."""
        problems = [row[0] for row in self._rows("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise DamagedRunError(f"{self.path} is damaged: {'; '.join(problems[:3])}")

    def _rows(self, sql: str, params=(), one: bool = False, named: bool = False):
        """Run a query and fetch its rows (or its first row; ``named``: as a dict by column),
        reading damage as DamagedRunError."""
        try:
            cur = self.db.execute(sql, params)
            if named:
                row = cur.fetchone()
                return dict(zip([d[0] for d in cur.description], row)) if row else None
            return cur.fetchone() if one else cur.fetchall()
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError and "no such table" not in str(exc):
                raise                      # a constraint or a write refused: not damage
            raise DamagedRunError(f"{self.path} cannot be read as a run store: {exc}") from None

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- meta -------------------------------------------------------------------------------
    def set_meta(self, key: str, value) -> None:
        """Record a JSON value under ``key`` (config, baselines, counters, ...)."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default=None):
        """The value recorded under ``key``, else ``default``."""
        row = self._rows("SELECT value FROM meta WHERE key = ?", (key,), one=True)
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except ValueError as exc:
            raise DamagedRunError(f"{self.path}: the record {key!r} is not valid JSON ({exc})") from None

    # -- writing ----------------------------------------------------------------------------
    def commit_step(self, evaluated: list[tuple[Candidate, Evaluation]], hits: list[CacheHit],
                    snapshot: dict, screened: list[Screened] = ()) -> None:
        """Record finished candidates (trained, served from the cache, or failed by the numeric
        screen: status ``screened``, the failure fitness and the screen's reason) and the snapshot
        taken after them, atomically."""
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
        for x in screened:
            c = x.candidate
            rows.append((c.id, c.parent_id, c.mutation, str(c.program), c.canonical_hash, c.fingerprint,
                         "screened", x.fitness, None, None, x.reason, None, None, None, 0.0, now))
        shapes = [(c.canonical_hash, *program_shape(c.program)) for c, e in evaluated if e.failure is None]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(
                "INSERT INTO candidates (id, parent_id, mutation, program, canonical_hash, fingerprint,"
                " status, fitness, task_fitness, metrics, failure, cached_from, cache_reason, worker,"
                " seconds, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            self._put_shapes(shapes)
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
        if not hashes or not self.described:
            return {}
        rows = self._rows(f"SELECT canonical_hash, data FROM descriptions WHERE canonical_hash IN "
                          f"({','.join('?' * len(hashes))})", hashes)
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
        row = self._rows("SELECT id, state FROM snapshots ORDER BY id DESC LIMIT 1", one=True)
        if row is None:
            if self.counts()["evaluations"]:
                raise DamagedRunError(f"{self.path} records candidates but no population snapshot: "
                                      f"the run cannot be resumed or summarised")
            return None
        try:
            snap = json.loads(row[1])
        except ValueError as exc:
            raise DamagedRunError(f"{self.path}: the last population snapshot (#{row[0]}) is not valid JSON "
                                  f"({exc})") from None
        if not isinstance(snap, dict) or not isinstance(snap.get("counters"), dict):
            raise DamagedRunError(f"{self.path}: the last population snapshot (#{row[0]}) is not a snapshot "
                                  f"(no counters)")
        return snap

    def evaluated(self) -> list[tuple]:
        """(id, program text, fitness, failure, large-size fitness) of every trained candidate, in id
        order."""
        return self._rows("SELECT id, program, fitness, failure, large_fitness FROM candidates "
                          "WHERE status = 'evaluated' ORDER BY id")

    def cache_entries(self):
        """(canonical hash, fingerprint, fitness, id) of every trained or screened candidate, for the
        fitness cache."""
        return self._rows("SELECT canonical_hash, fingerprint, fitness, id FROM candidates "
                          "WHERE status IN ('evaluated', 'screened') ORDER BY id")

    def counts(self) -> dict:
        """``{"evaluations": trained, "cache_hits": served from the cache, "screened": failed by the
        numeric screen}``."""
        rows = dict(self._rows("SELECT status, COUNT(*) FROM candidates GROUP BY status"))
        return {"evaluations": rows.get("evaluated", 0), "cache_hits": rows.get("cached", 0),
                "screened": rows.get("screened", 0)}

    def failed_count(self) -> int:
        """How many trained candidates failed (NaN, divergence, an exception, the time limit)."""
        return self._rows("SELECT COUNT(*) FROM candidates WHERE status = 'evaluated' AND failure IS NOT NULL",
                          one=True)[0]

    def failures(self, status: str = "evaluated") -> dict[str, int]:
        """How many trained candidates (``status="screened"``: children the numeric screen failed)
        failed, by reason: each task's reason with its numbers
        replaced by ``#`` (``"quadratic (seed #): time limit of # s exceeded at step #"``), most
        frequent first. A candidate that fails on several tasks counts once for each reason."""
        counts: dict[str, int] = {}
        for (failure,) in self._rows("SELECT failure FROM candidates WHERE status = ? AND failure IS NOT NULL",
                                     (status,)):
            for reason in {_NUMBER.sub("#", part) for part in failure.split("; ")}:
                counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def early_stops(self) -> dict[str, int]:
        """How many trained candidates early stopping stopped, by checkpoint (``early_stop.py``)."""
        counts: dict[str, int] = {}
        for (metrics,) in self._rows("SELECT metrics FROM candidates WHERE status = 'evaluated' AND metrics LIKE ?",
                                     ('%"stopped"%',)):
            stop = (json.loads(metrics).get("early_stop") or {}).get("stopped")
            if stop:
                counts[f"{stop['checkpoint']:g}"] = counts.get(f"{stop['checkpoint']:g}", 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: float(kv[0])))

    def candidate(self, candidate_id: int) -> dict | None:
        """One candidate's row as a dict, or None."""
        return self._rows("SELECT * FROM candidates WHERE id = ?", (candidate_id,), named=True)

    def scored_by_time(self) -> list[tuple[int, float, float, str, str]]:
        """(id, fitness, recorded_at, status, program text) of every candidate with a fitness, in
        recording order."""
        return self._rows("SELECT id, fitness, recorded_at, status, program FROM candidates "
                          "WHERE fitness IS NOT NULL ORDER BY recorded_at, id")

    def history(self) -> list[tuple[int, float, float, str]]:
        """(id, fitness, recorded_at, status) of every candidate in id order."""
        return self._rows("SELECT id, fitness, recorded_at, status FROM candidates ORDER BY id")

    def hall_of_fame(self, k: int = 10) -> list[dict]:
        """The k best evaluated programs, one per canonical hash, each with its per-task readings
        (``readings.py``: validation loss, accuracy, ratio to tuned AdamW's loss)."""
        rows = self._rows(
            "SELECT id, fitness, program, canonical_hash, task_fitness, large_fitness, parent_id, metrics "
            "FROM candidates WHERE status = 'evaluated' AND failure IS NULL ORDER BY fitness DESC, id ASC "
            "LIMIT ?", (k * 20,))
        baselines = self.baselines()[0] or {}
        seen, out = set(), []
        for cid, fitness, program, h, tf, large, parent, metrics in rows:
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

    def trained(self) -> list[dict]:
        """Every trained program that did not fail, one per canonical hash (its best candidate),
        best first: ``id``, ``fitness``, ``program``, ``canonical_hash``, and ``states`` and
        ``length`` (live state tensors, live statements) where the store holds them, else None."""
        shaped = self._rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'shapes'")
        shape = "s.live_states, s.live_statements" if shaped else "NULL, NULL"
        join = "LEFT JOIN shapes s USING (canonical_hash)" if shaped else ""
        rows = self._rows(f"SELECT c.id, c.fitness, c.program, c.canonical_hash, {shape} FROM candidates c {join} "
                          "WHERE c.status = 'evaluated' AND c.failure IS NULL ORDER BY c.fitness DESC, c.id ASC")
        seen, out = set(), []
        for cid, fitness, program, h, states, length in rows:
            if h not in seen:
                seen.add(h)
                out.append({"id": cid, "fitness": fitness, "program": program, "canonical_hash": h,
                            "states": states, "length": length})
        return out

    def front(self) -> tuple[dict, list[dict]]:
        """(the fronts of ``front.py``, and every trained program with its shape). A run recorded
        before shapes were stored has them computed (the engine loads: seconds), and kept unless
        the store is read-only."""
        entries = self.trained()
        computed = fill_shapes(entries)
        if computed and not self.readonly:
            self._put_shapes([(h, *shape) for h, shape in computed.items()])
        return fronts(entries), entries

    def _put_shapes(self, rows: list[tuple]) -> None:
        """Record ``(canonical hash, live states, live statements)`` rows (the table made on the
        first)."""
        if rows:
            self.db.execute(SHAPES)
            self.db.executemany("INSERT OR IGNORE INTO shapes VALUES (?, ?, ?)", rows)

    def write_hall_of_fame(self, k: int = 10, describe=None) -> None:
        """Rewrite ``hall_of_fame.json`` (each entry with its ``states`` and ``length``),
        ``front.json`` and ``best.py``. ``describe(entry) -> dict`` adds fields to each hall-of-fame
        and state-front entry (the driver adds the simplified program and its family)."""
        hof = self.hall_of_fame(k)
        front, entries = self.front()
        shapes = {e["canonical_hash"]: (e["states"], e["length"]) for e in entries}
        for entry in hof:
            entry["states"], entry["length"] = shapes.get(entry["canonical_hash"], (None, None))
        described = hof + [e for e in front["states"].values() if e is not None]
        if describe:
            for entry in described:
                entry.update(describe(entry))
        _atomic_write(self.folder / "hall_of_fame.json", json.dumps(hof, indent=2))
        _atomic_write(self.folder / "front.json", json.dumps(front, indent=2))
        if hof:
            _atomic_write(self.folder / "best.py", hof[0]["program"])


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

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
