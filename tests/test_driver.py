"""The search driver (``evosearch.search.driver``, docs/design.md "Data flow") over a run's life: a
second driver on a run folder in use, the embedded Ray dying with its driver, the driver stopped by
Ctrl-C or SIGKILL and resumed, candidates in flight at the stop, determinism, the funnel, worker
warnings, and ``evosearch search`` on an existing run folder. Searches on Ray (actors killed, nodes
lost, batched evaluation) are tested in test_ray_search.py, evolution's ask/tell object alone in
test_evolution.py, config errors in test_config.py.

Searches train on the ``quadratic`` proxy task (~0.15 s per evaluation) with tiny budgets (helpers in
runs.py). The baseline cache is one temporary folder per test session (``evosearch_cache`` in
conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from evosearch import cli
from evosearch.search.config import load_config
from evosearch.search.evolution import RegularizedEvolution
from evosearch.search.funnel import Funnel
from evosearch.search.driver import run_search
from evosearch.search.report import summary
from evosearch.search.store import RunStore
from runs import CONFIG, TASK, Hook, candidates, check_run_store, history_of, tiny_config


# ---- the driver SIGKILLed and resumed ------------------------------------------------------------

MAX_EVALS = 24


def evaluated_rows(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    db = sqlite3.connect(db_path, timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM candidates WHERE status = 'evaluated'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0                                     # the driver has not created its tables yet
    finally:
        db.close()


def start_driver(config: Path, folder: Path, max_evals: int, log) -> subprocess.Popen:
    """``evosearch search`` in-process in a subprocess, returned once it has recorded 4 evaluations
    (its output goes to the open file ``log``)."""
    proc = subprocess.Popen([sys.executable, "-m", "evosearch.cli", "search", str(config), "--out", str(folder),
                             "--in-process", "--max-evals", str(max_evals)], stdout=log, stderr=subprocess.STDOUT,
                            cwd=Path(log.name).parent)
    deadline = time.time() + 120
    while evaluated_rows(folder / "run.sqlite") < 4:
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"the driver exited early or recorded nothing in 120 s:\n{Path(log.name).read_text()}")
        time.sleep(0.02)
    return proc


def stop_driver_mid_run(config: Path, folder: Path, max_evals: int, sig: int, log_path: Path) -> int:
    """Start ``evosearch search`` in-process in a subprocess, send it ``sig`` once it has recorded
    4 evaluations, and return its exit status (its output goes to ``log_path``)."""
    with log_path.open("w") as log:
        proc = start_driver(config, folder, max_evals, log)
        try:
            os.kill(proc.pid, sig)
            return proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_second_driver_on_a_run_folder_in_use_is_refused_and_the_lock_dies_with_its_holder(baselines, tmp_path):
    import socket
    config = tmp_path / "cfg.toml"
    config.write_text(CONFIG)
    folder = tmp_path / "run"
    evosearch = [sys.executable, "-m", "evosearch.cli"]
    with (tmp_path / "driver.log").open("w") as log:
        holder = start_driver(config, folder, 100_000, log)
        try:
            for second in (["search", "--resume", "--out", str(folder), "--in-process"],
                           ["search", str(config), "--out", str(folder), "--in-process"]):
                before = evaluated_rows(folder / "run.sqlite")
                t0 = time.time()
                refused = subprocess.run(evosearch + second, capture_output=True, text=True, timeout=60)
                assert refused.returncode == 2, refused.stderr
                assert f"in use by the search of PID {holder.pid} on host {socket.gethostname()}" in refused.stderr
                assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
                assert time.time() - t0 < 20, "refused only after starting work"
                assert holder.poll() is None and evaluated_rows(folder / "run.sqlite") >= before
            shown = subprocess.run(evosearch + ["show", str(folder)], capture_output=True, text=True, timeout=60)
            assert shown.returncode == 0 and "evaluations" in shown.stdout, shown.stderr   # reading is not locked
        finally:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(60)
    done = evaluated_rows(folder / "run.sqlite")
    resumed = subprocess.run(evosearch + ["search", "--resume", "--out", str(folder), "--in-process",
                                          "--max-evals", str(done + 2)], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr           # SIGKILL released the lock: nothing to clean up
    assert evaluated_rows(folder / "run.sqlite") == done + 2


def listening_addresses(pids) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp* writes them) of the TCP sockets these processes
    listen on."""
    inodes = set()
    for pid in pids:
        try:
            links = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes.update(link[8:-1] for link in links if link.startswith("socket:["))
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:          # 0A: LISTEN
                found.append(fields[1].rsplit(":", 1)[0])
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_the_embedded_ray_listens_on_loopback_only_and_dies_with_its_driver(baselines, tmp_path):
    from evosearch.search.reaper import descendants
    config = tmp_path / "cfg.toml"
    config.write_text(CONFIG)
    folder = tmp_path / "run"
    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen([sys.executable, "-m", "evosearch.cli", "search", str(config), "--out", str(folder),
                               "--workers", "1", "--max-evals", "100000"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 180
        while evaluated_rows(folder / "run.sqlite") < 2:
            assert driver.poll() is None and time.time() < deadline, (tmp_path / "driver.log").read_text()
            time.sleep(0.1)
        family = descendants(driver.pid)                  # GCS, raylet, agents, the worker, the reaper
        names = {Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
                 for pid, _ in family if Path(f"/proc/{pid}/cmdline").exists()}
        assert any("raylet" in n for n in names) and any("EvaluatorWorker" in n for n in names), names
        addresses = listening_addresses([driver.pid] + [pid for pid, _ in family])
        assert addresses and set(addresses) <= LOOPBACK, addresses
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(30)
        deadline = time.time() + 20
        while True:
            left = [(pid, Path(f"/proc/{pid}/cmdline").read_bytes()[:60]) for pid, start in family
                    if reaper_stat(pid) == start]
            if not left or time.time() > deadline:
                break
            time.sleep(0.2)
        assert not left, f"processes of the killed driver still alive after 20 s: {left}"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        log.close()


def reaper_stat(pid: int) -> str | None:
    """The start time of a living, not yet reaped process (None for a zombie or no process)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def test_ctrl_c_saves_the_run_and_exits_130(baselines, tmp_path):
    config = tmp_path / "cfg.toml"
    config.write_text(CONFIG)
    folder = tmp_path / "run"
    status = stop_driver_mid_run(config, folder, 1000, signal.SIGINT, tmp_path / "driver.log")
    assert status == 130, (tmp_path / "driver.log").read_text()
    output = (tmp_path / "driver.log").read_text()
    assert "search stopped (interrupted)" in output and "--resume" in output
    store = RunStore(folder)
    try:     # saved: the last snapshot accounts for every recorded candidate
        assert store.last_snapshot()["counters"]["evaluated"] == evaluated_rows(folder / "run.sqlite") >= 4
    finally:
        store.close()


def test_driver_killed_with_sigkill_resumes_where_it_stopped(baselines, tmp_path, monkeypatch, capsys):
    import evosearch.search.describe as describe_module
    config = tmp_path / "cfg.toml"
    config.write_text(CONFIG)
    folder = tmp_path / "run"
    assert stop_driver_mid_run(config, folder, MAX_EVALS, signal.SIGKILL, tmp_path / "driver.log") == -signal.SIGKILL

    store = RunStore(folder)
    try:
        snap = store.last_snapshot()
        rows_before = candidates(folder)
    finally:
        store.close()
    ids_before = [r["id"] for r in rows_before]
    assert 4 <= snap["counters"]["evaluated"] < MAX_EVALS
    # the last snapshot accounts for exactly the candidates recorded (one transaction per step)
    assert snap["counters"]["evaluated"] == sum(r["status"] == "evaluated" for r in rows_before)
    assert snap["counters"]["cache_hits"] == sum(r["status"] == "cached" for r in rows_before)
    assert {c["id"] for c, _ in snap["population"]} <= set(ids_before)

    restored = []
    original_restore = RegularizedEvolution.restore

    def spy(self, s):
        original_restore(self, s)
        restored.append(json.loads(json.dumps(self.snapshot())))
    monkeypatch.setattr(RegularizedEvolution, "restore", spy)
    monkeypatch.setattr(describe_module, "describe_program", lambda prog: {}, raising=False)  # speed only
    assert cli.main(["search", str(config), "--out", str(folder), "--in-process", "--max-evals", str(MAX_EVALS),
                     "--resume"]) == 0
    assert f"stopped (max_evals) after {MAX_EVALS} evaluations" in capsys.readouterr().out
    assert restored and restored[0] == snap           # same population, RNG, counters and ids

    rows = candidates(folder)
    ids = [r["id"] for r in rows]
    assert ids == list(range(len(ids))), "ids must be unique, without gaps"
    assert sum(r["status"] == "evaluated" for r in rows) == MAX_EVALS
    assert max(ids) > max(ids_before)
    assert history_of(rows[:len(ids_before)]) == history_of(rows_before), "records before the kill changed"
    in_flight = {c["id"] for c in snap["pending"]} | {c["id"] for v in snap["waiting"].values() for c in v}
    assert {i for i in ids if i not in ids_before and i < snap["next_id"]} == in_flight

    # and the interrupted run has exactly the history of one that was never interrupted
    cfg = replace(load_config(config), max_evals=MAX_EVALS, in_process=True)
    monkeypatch.setattr(RegularizedEvolution, "restore", original_restore)
    reference_run = tmp_path / "uninterrupted"
    run_search(cfg, reference_run, progress=Hook())
    assert history_of(candidates(reference_run)) == history_of(rows)


def test_candidates_in_flight_when_the_driver_stops_are_trained_after_resume(baselines, no_descriptions,
                                                                            tmp_path):
    """The in-process executor finishes everything it is given before each snapshot; this one keeps
    up to 4 candidates in flight, as Ray workers do, so the last snapshot has pending candidates
    that the resumed driver must train (and record) exactly once."""
    from evosearch.search.executors import InProcessExecutor

    class Lagging(InProcessExecutor):
        def capacity(self) -> int:
            return 4                                 # ... and poll() finishes one (batch_size=1)

    class DriverDied(BaseException):
        pass

    def die(evo, executor):
        if evo.counters.evaluated >= 5:
            raise DriverDied

    cfg = tiny_config(max_evals=14, seed=4, in_process=True)
    folder = tmp_path / "run"
    with pytest.raises(DriverDied):
        run_search(cfg, folder, progress=Hook(die), executor=Lagging(cfg.suite(), batch_size=1))
    store = RunStore(folder)
    try:
        snap = store.last_snapshot()
    finally:
        store.close()
    in_flight = [c["id"] for c in snap["pending"]]
    assert in_flight, "no candidate was in flight: nothing was tested"
    assert not set(in_flight) & {r["id"] for r in candidates(folder)}
    outcome = run_search(cfg, folder, resume=True, progress=Hook(), executor=Lagging(cfg.suite(), batch_size=1))
    assert outcome.stopped_by == "max_evals"
    rows = check_run_store(folder, outcome)
    assert all(rows[i]["status"] == "evaluated" for i in in_flight)
    reference_run = tmp_path / "uninterrupted"
    run_search(cfg, reference_run, progress=Hook(), executor=Lagging(cfg.suite(), batch_size=1))
    assert history_of(candidates(reference_run)) == history_of(rows)


# ---- same seed, same history -------------------------------------------------------------------

def test_same_seed_gives_the_same_history_in_process(baselines, no_descriptions, tmp_path):
    cfg = tiny_config(max_evals=10, seed=7, in_process=True)
    histories = []
    for name, c in (("a", cfg), ("b", cfg), ("other_seed", replace(cfg, seed=8))):
        outcome = run_search(c, tmp_path / name, progress=Hook())
        histories.append(history_of(check_run_store(tmp_path / name, outcome)))
    assert len({h[2] for h in histories[0]}) > 5, "the run should have produced distinct children"
    assert histories[0] == histories[1]
    assert histories[0] != histories[2]



def test_in_process_auto_batches_are_fixed_so_a_seed_still_gives_one_history(baselines, no_descriptions, tmp_path):
    """``batch_size = "auto"`` in-process is a size fixed by the population, never timed: batched
    training can pay in the driver too, and a seed still gives one history."""
    from evosearch.search.executors import InProcessExecutor
    assert [InProcessExecutor.auto_batch(p) for p in (3, 8, 40, 1000)] == [1, 2, 10, 16]
    cfg = tiny_config(max_evals=24, seed=7, in_process=True, batch_size="auto", population_size=16)
    hooks = [Hook(), Hook()]
    runs = [run_search(cfg, tmp_path / name, progress=hook) for name, hook in zip("ab", hooks)]
    histories = [history_of(check_run_store(tmp_path / name, out)) for name, out in zip("ab", runs)]
    assert [hook.executor.batch_size for hook in hooks] == [4, 4]
    assert histories[0] == histories[1] and len(histories[0]) >= 24

# ---- the command line (config errors: test_config.py) ------------------------------------------

def test_an_existing_run_is_not_overwritten_without_resume(baselines, no_descriptions, tmp_path, capsys):
    config = tmp_path / "cfg.toml"
    config.write_text(CONFIG)
    folder = tmp_path / "run"
    run_search(replace(load_config(config), max_evals=2, in_process=True), folder, progress=Hook())
    before = candidates(folder)
    capsys.readouterr()
    assert cli.main(["search", str(config), "--out", str(folder), "--in-process", "--max-evals", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evosearch: error:") and "--resume" in err
    assert candidates(folder) == before
    assert summary(folder)["evaluations"] == 2
    # and --resume on a folder without a run is refused too
    assert cli.main(["search", str(config), "--out", str(tmp_path / "empty"), "--resume", "--in-process"]) == 2
    assert "no run to resume" in capsys.readouterr().err


def test_a_search_whose_every_candidate_fails_says_so_and_exits_0(baselines, no_descriptions, tmp_path, capsys):
    config = tmp_path / "cfg.toml"
    config.write_text(CONFIG.replace("[tasks]\n", "[tasks]\ntime_limit = 1e-9\n"))
    folder = tmp_path / "run"
    assert cli.main(["search", str(config), "--out", str(folder), "--in-process", "--max-evals", "3"]) == 0
    assert "every one of the 3 trained candidates failed, so nothing was exported" in capsys.readouterr().out
    assert cli.main(["show", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "failed in training: 3 of 3 trained candidates" in out
    assert f"3  {TASK} (seed #): time limit of # s exceeded at step #" in out
    assert summary(folder)["failure_reasons"] == {f"{TASK} (seed #): time limit of # s exceeded at step #": 3}


def test_funnel_new_best_only_rescores_the_records_alone(baselines, no_descriptions, tmp_path):
    config = tmp_path / "cfg.toml"
    config.write_text(CONFIG + "[funnel]\nenabled = true\nnew_best_only = true\n")
    folder = tmp_path / "run"
    run_search(replace(load_config(config), max_evals=12, in_process=True), folder, progress=Hook())
    rows = [r for r in candidates(folder) if r["status"] == "evaluated"]
    warm = rows[0]
    best, records = -float("inf"), [warm["id"]]
    for r in rows:
        if r["id"] != warm["id"] and r["failure"] is None and r["fitness"] > max(best, warm["fitness"]):
            records.append(r["id"])
        best = max(best, r["fitness"])
    scored = [r["id"] for r in rows if r["large_fitness"] is not None]
    assert len(records) >= 2 and scored == records[:len(scored)]   # the last may be in flight at the stop
    store = RunStore(folder)
    try:    # what resume re-submits: the records still missing, by the same rule
        def missing(new_best_only: bool) -> list[int]:
            funnel = Funnel(enabled=True, new_best_only=new_best_only)
            return [i for i, _ in funnel.missing(store.evaluated(), warm["id"], warm["fitness"])]
        assert missing(new_best_only=True) == records[len(scored):]
        store.db.execute("UPDATE candidates SET large_fitness = NULL")
        assert missing(new_best_only=True) == records         # the warm start's score too
        assert len(missing(new_best_only=False)) >= len(records) - 1
    finally:
        store.close()


# ---- worker warnings -----------------------------------------------------------------------------

def test_worker_warnings_reach_the_terminal_once_and_the_run_log_every_time(baselines, tmp_path, monkeypatch):
    import warnings as python_warnings

    import tasks.quadratic
    loss = tasks.quadratic.Quadratic.loss

    def warning_loss(self, out, y):
        python_warnings.warn("the quadratic says hello", RuntimeWarning)
        return loss(self, out, y)
    monkeypatch.setattr(tasks.quadratic.Quadratic, "loss", warning_loss)
    hook = Hook()
    outcome = run_search(tiny_config(max_evals=6, in_process=True), tmp_path / "run", progress=hook)
    shown = [m for m in hook.messages if "the quadratic says hello" in m]
    assert len(shown) == 1 and shown[0].startswith("worker: ") and "RuntimeWarning" in shown[0]
    logged = (tmp_path / "run" / "workers.log").read_text().splitlines()
    assert len(logged) >= 2 and all("RuntimeWarning: the quadratic says hello" in line for line in logged)
    assert outcome.seconds == RunStore(tmp_path / "run").get_meta("elapsed")     # as `show` reports it
