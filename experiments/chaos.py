"""Chaos run (docs/robustness.md): a search whose worker actors are SIGKILLed again and again and whose driver
is SIGKILLed and resumed, then an audit of its run folder. A run that survives has every candidate
recorded exactly once, no program trained twice, an intact database whose last snapshot accounts
for every row, and a hall of fame headed by the store's best.

    python experiments/chaos.py [--max-evals 300] [--actor-kills 12] [--driver-kills 3]
                                [--tasks digits_mlp] [--workers 2] [--out runs/chaos-DATE-TIME]

Each driver is ``evosearch search`` on an embedded Ray with real actors, started in a session of its
own: every process it starts (the embedded Ray's too) stays in that session when its parent dies, so
the run can report what a killed driver left behind and end it. Prints the figures kept in
docs/robustness.md ("Chaos run"); tests/test_chaos.py runs the same at a small size.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ACTOR_TITLE = "ray::EvaluatorWorker"   # Ray's process title for RayExecutor's actors (".evaluate" while busy)
WAIT_LIMIT = 600                       # seconds one step of the plan may wait for a driver, by default

CONFIG = """
[search]
warm_start = "adamw"
seed = {seed}
population_size = {population}
tournament_size = {tournament}

[tasks]
names = {tasks}
seeds = [0]

[executor]
batch_size = 2
"""


class ChaosError(RuntimeError):
    """The plan could not be carried out (a driver that exited or stalled); the message says why."""


# ---- the plan ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    """One driver session: kill a worker actor once each of ``actor_kills`` evaluations is
    recorded, then SIGKILL the driver once ``driver_kill`` are (None: let it finish the budget)."""
    actor_kills: tuple[int, ...]
    driver_kill: int | None


def plan(max_evals: int, actor_kills: int, driver_kills: int) -> list[Session]:
    """Driver kills evenly spaced over the budget; each session's actor kills spread over its first
    60%, the first as soon as its actors are at work. (A resumed driver first trains what was in
    flight, with 2 actors up to 8 candidates: a kill planned late in a short last session could
    find the budget already spent.)"""
    n = driver_kills + 1
    ends = [round(max_evals * (k + 1) / n) for k in range(n)]
    starts = [0] + ends[:-1]
    per_session = [actor_kills // n + (k < actor_kills % n) for k in range(n)]
    return [Session(tuple(start + round(0.6 * (end - start) * j / kills) for j in range(kills)),
                    end if k < driver_kills else None)
            for k, (start, end, kills) in enumerate(zip(starts, ends, per_session))]


# ---- processes --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Proc:
    pid: int
    parent: int
    session: int
    state: str            # "Z": a zombie, already dead
    started: int          # clock ticks after boot: the same pid with another start is another process
    title: str

    @property
    def name(self) -> str:
        """``ray::Title``, the script a Python process runs, or the program's file name."""
        words = self.title.split(" ")
        return words[0] if words[0].startswith("ray::") else Path(
            next((w for w in words if w.endswith(".py")), words[0])).name


def processes() -> list[Proc]:
    """Every process on the machine, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            title = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue                   # it ended while we looked
        fields = stat.rsplit(")", 1)[1].split()      # after "pid (comm)": state, ppid, pgrp, session, ...
        out.append(Proc(int(entry), int(fields[1]), int(fields[3]), fields[0], int(fields[19]), title.strip()))
    return out


def descendants(root: int, procs: list[Proc]) -> list[Proc]:
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.parent, []).append(p)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child.pid)
    return out


class Watch:
    """The processes of the drivers this run started: the sessions they lead. Ray's processes stay
    in their driver's session (Ray sets a parent-death signal and process groups, never a session),
    also once a killed driver has left them to init."""

    def __init__(self):
        self.drivers: set[int] = set()

    def ours(self) -> list[Proc]:
        return [p for p in processes() if p.session in self.drivers and p.state != "Z"]

    @staticmethod
    def still_alive(procs: list[Proc]) -> list[Proc]:
        living = {(p.pid, p.started) for p in processes() if p.state != "Z"}
        return [p for p in procs if (p.pid, p.started) in living]

    def victim(self, driver: int, workers: int) -> Proc | None:
        """A worker actor of the driver's that is training candidates, once all ``workers`` of them
        are up (past ``__init__``): so a kill never leaves the driver without a live actor, which
        would only measure how long a replacement takes to start."""
        actors = [p for p in descendants(driver, processes()) if p.title.startswith(ACTOR_TITLE) and p.state != "Z"]
        if len(actors) < workers or any(p.title.endswith("__init__") for p in actors):
            return None
        return next((p for p in actors if p.title.endswith(".evaluate")), None)

    def end_all(self) -> list[str]:
        """SIGKILL every process of ours still alive; their titles."""
        left = self.ours()
        for p in left:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return sorted(p.name for p in left)


# ---- the store, read while a driver writes it -------------------------------------------------

def recorded(folder: Path) -> int:
    """Evaluations recorded in the run folder so far."""
    if not (folder / "run.sqlite").is_file():
        return 0
    db = sqlite3.connect(folder / "run.sqlite", timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM candidates WHERE status = 'evaluated'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0                              # the driver has not created its tables yet
    finally:
        db.close()


def read_only(folder: Path) -> sqlite3.Connection:
    db = sqlite3.connect(f"file:{folder / 'run.sqlite'}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    return db


def rows(folder: Path) -> list[dict]:
    db = read_only(folder)
    try:
        return [dict(r) for r in db.execute("SELECT * FROM candidates ORDER BY id")]
    finally:
        db.close()


def last_snapshot(folder: Path) -> dict:
    db = read_only(folder)
    try:
        return json.loads(db.execute("SELECT state FROM snapshots ORDER BY id DESC LIMIT 1").fetchone()[0])
    finally:
        db.close()


# ---- the run ----------------------------------------------------------------------------------

@dataclass
class DriverKill:
    status: int               # -SIGKILL (not 0: it had not finished before the kill)
    evaluations: int          # recorded when it died
    in_flight: list[int]      # candidates the last snapshot had sent out: resume must train them
    before: list[dict]        # every row recorded when it died: nothing may change them
    left: list[Proc]          # its processes alive when its death was seen ...
    left_later: list[Proc] | None = None     # ... and of those, the ones alive when the next session ended


@dataclass
class ChaosLog:
    drivers: list[int] = field(default_factory=list)           # their pids, each its session's id
    actor_kills: int = 0
    driver_kills: list[DriverKill] = field(default_factory=list)
    resumes: int = 0
    left_at_end: list[str] = field(default_factory=list)       # what end_all had to end
    seconds: float = 0.0
    output: str = ""          # the last driver's output


def chaos(config: Path, folder: Path, max_evals: int, sessions: list[Session], workers: int = 2,
          logs: Path | None = None, wait_limit: float = WAIT_LIMIT) -> ChaosLog:
    """Run the plan on a new run folder (drivers' output in ``logs``); every process the drivers
    started is gone when it returns. ChaosError when a driver exits early or waits longer than
    ``wait_limit`` seconds for a step."""
    logs = logs or folder.with_name(folder.name + "-logs")
    logs.mkdir(parents=True, exist_ok=True)
    watch, log, t0 = Watch(), ChaosLog(), time.time()
    try:
        for k, session in enumerate(sessions):
            args = [sys.executable, "-m", "evosearch.cli", "search", str(config), "--out", str(folder),
                    "--max-evals", str(max_evals), "--workers", str(workers)] + (["--resume"] if k else [])
            if k:
                log.resumes += 1
            out_path = logs / f"driver-{k + 1}.log"
            with out_path.open("w") as out:
                driver = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            watch.drivers.add(driver.pid)
            log.drivers.append(driver.pid)
            for threshold in session.actor_kills:
                victim = _wait(driver, out_path, wait_limit, folder, threshold,
                               partial(watch.victim, driver.pid, workers))
                os.kill(victim.pid, signal.SIGKILL)
                log.actor_kills += 1
            if session.driver_kill is None:
                try:
                    status = driver.wait(wait_limit)
                except subprocess.TimeoutExpired:
                    raise ChaosError(f"the last driver did not finish in {wait_limit} s:\n"
                                     f"{out_path.read_text()[-3000:]}") from None
                log.output = out_path.read_text()
                if status != 0:
                    raise ChaosError(f"the last driver exited with {status}:\n{log.output[-3000:]}")
            else:
                _wait(driver, out_path, wait_limit, folder, session.driver_kill)
                driver.send_signal(signal.SIGKILL)
                status = driver.wait()
                log.driver_kills.append(DriverKill(status, recorded(folder),
                                                   [c["id"] for c in last_snapshot(folder)["pending"]],
                                                   rows(folder), [p for p in watch.ours() if p.session == driver.pid]))
            if k:
                earlier = log.driver_kills[k - 1]
                earlier.left_later = watch.still_alive(earlier.left)
    finally:
        log.left_at_end = watch.end_all()
        log.seconds = time.time() - t0
    return log


def _wait(driver: subprocess.Popen, out_path: Path, limit: float, folder: Path, evaluations: int,
          victim=None):
    """Poll until ``folder`` holds ``evaluations`` (and ``victim()`` names an actor to kill: return it)."""
    what = f"{evaluations} evaluations" + (" and an actor to kill" if victim else "")
    deadline = time.time() + limit
    while True:
        if driver.poll() is not None:
            raise ChaosError(f"the driver exited ({driver.returncode}) while waiting for {what}:\n"
                             f"{out_path.read_text()[-3000:]}")
        found = recorded(folder) >= evaluations and (victim() if victim else True)
        if found:
            return found
        if time.time() > deadline:
            raise ChaosError(f"no {what} after {limit} s:\n{out_path.read_text()[-3000:]}")
        time.sleep(0.2)


# ---- the audit --------------------------------------------------------------------------------

def audit(folder: Path, log: ChaosLog) -> dict:
    """What the run folder holds after the chaos, as figures (all "lost"/"twice"/"changed" zero and
    every "agrees" true for a run that survived)."""
    db = read_only(folder)
    try:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        meta_counters = json.loads(db.execute("SELECT value FROM meta WHERE key = 'counters'").fetchone()[0])
    finally:
        db.close()
    found, snap = rows(folder), last_snapshot(folder)
    ids = [r["id"] for r in found]
    evaluated = [r for r in found if r["status"] == "evaluated"]
    counts = {"evaluated": len(evaluated), "cache_hits": sum(r["status"] == "cached" for r in found)}
    trained = {r["id"] for r in evaluated}
    # a program is trained once: a later child with its canonical hash or fingerprint is a cache hit
    distinct = min(len({r["canonical_hash"] for r in evaluated}), len({r["fingerprint"] for r in evaluated}))
    best = max((r for r in evaluated if r["failure"] is None), key=lambda r: (r["fitness"], -r["id"]))
    hof = json.loads((folder / "hall_of_fame.json").read_text())
    by_id = {r["id"]: r for r in found}
    return {
        "candidates": len(found),
        "evaluations": counts["evaluated"],
        "cache_hits": counts["cache_hits"],
        "ids_contiguous": ids == list(range(len(ids))),
        "lost": len(set(range(snap["next_id"])) - set(ids)) + len(snap["pending"]) + len(snap["waiting"]),
        "trained_twice": len(evaluated) - distinct,
        "in_flight_not_retrained": sum(i not in trained for k in log.driver_kills for i in k.in_flight),
        "changed_after_a_kill": sum(by_id.get(r["id"]) != r for k in log.driver_kills for r in k.before),
        "integrity": integrity,
        "snapshot_agrees": {key: snap["counters"][key] for key in counts} == counts,
        "counters_agree": {key: meta_counters[key] for key in counts} == counts,
        "best": (best["id"], best["fitness"]),
        "hall_of_fame_agrees": ((hof[0]["id"], hof[0]["fitness"], hof[0]["program"])
                                == (best["id"], best["fitness"], best["program"])),
        "best_py_agrees": (folder / "best.py").read_text() == best["program"],
        "workers_replaced": _replaced(folder),
    }


def _replaced(folder: Path) -> int:
    """Worker deaths the drivers noticed (workers.log; a driver killed first may miss one)."""
    path = folder / "workers.log"
    lines = path.read_text().splitlines() if path.is_file() else []
    return sum(int(line.split(" worker(s) died")[0].rsplit(" ", 1)[1]) for line in lines if " worker(s) died" in line)


def _names(procs: list[Proc]) -> str:
    return ", ".join(f"{n} x{c}" for n, c in sorted(Counter(p.name for p in procs).items())) or "nothing"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-evals", type=int, default=300)
    ap.add_argument("--actor-kills", type=int, default=12)
    ap.add_argument("--driver-kills", type=int, default=3)
    ap.add_argument("--tasks", nargs="+", default=["digits_mlp"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs") / f"chaos-{time.strftime('%Y%m%d-%H%M%S')}")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True)
    config = args.out / "chaos.toml"
    config.write_text(CONFIG.format(seed=args.seed, population=30, tournament=5, tasks=json.dumps(args.tasks)))
    sessions = plan(args.max_evals, args.actor_kills, args.driver_kills)
    log = chaos(config, args.out / "run", args.max_evals, sessions, args.workers, args.out / "logs")
    figures = audit(args.out / "run", log)
    print(f"command: python experiments/chaos.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"suite {'+'.join(args.tasks)}, {args.workers} workers, budget {args.max_evals} evaluations")
    print(f"evaluations: {figures['evaluations']} ({figures['cache_hits']} cache hits, "
          f"{figures['candidates']} candidates)")
    print(f"actor kills: {log.actor_kills} (replacements the drivers logged: {figures['workers_replaced']})")
    print(f"driver kills: {len(log.driver_kills)} (at "
          f"{', '.join(str(k.evaluations) for k in log.driver_kills)} evaluations recorded; in flight then, "
          f"trained after resume: {', '.join(str(len(k.in_flight)) for k in log.driver_kills)})")
    print(f"resumes: {log.resumes}")
    for key in ("lost", "trained_twice", "in_flight_not_retrained", "changed_after_a_kill", "ids_contiguous",
                "integrity", "snapshot_agrees", "counters_agree", "hall_of_fame_agrees", "best_py_agrees"):
        print(f"{key}: {figures[key]}")
    print(f"best: #{figures['best'][0]} fitness {figures['best'][1]:.4f}")
    for k, kill in enumerate(log.driver_kills, 1):
        print(f"driver kill {k}: alive right after it, {_names(kill.left)}; when the next session ended, "
              f"{_names(kill.left_later)}")
    print(f"ended by this script at the end: {dict(Counter(log.left_at_end)) or 'nothing'}")
    print(f"wall time: {log.seconds:.0f} s")
    survived = (figures["evaluations"] == args.max_evals and figures["lost"] == figures["trained_twice"]
                == figures["in_flight_not_retrained"] == figures["changed_after_a_kill"] == 0
                and figures["integrity"] == "ok"
                and all(figures[k] for k in ("ids_contiguous", "snapshot_agrees", "counters_agree",
                                             "hall_of_fame_agrees", "best_py_agrees")))
    print("survived" if survived else "NOT survived")
    return 0 if survived else 1


if __name__ == "__main__":
    sys.exit(main())
