"""The command line's contract with the run folder and with bad numbers: commands that read a run
never create or change one, a missing or empty run folder is an error with exit code 2 for every
command that takes one, and counts and limits that are zero or negative are refused with a message
that names the option. (Whole searches from the command line: test_driver.py; config errors:
test_config.py.)"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from evosearch.cli import main

OLD_RUN = Path(__file__).parent / "data" / "run_before_layout"


def listing(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes, except the files SQLite itself keeps
    beside a database it opens read-only: its shared-memory index and an empty WAL."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith("-shm")
            and not (p.name.endswith("-wal") and p.stat().st_size == 0)}


def copy_of_old_run(tmp_path: Path, *sql: str) -> Path:
    """A copy of the stored run folder, with ``sql`` run on its store."""
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    db = sqlite3.connect(run / "run.sqlite")
    for statement in sql:
        db.execute(statement)
    db.commit()
    db.close()
    return run


def fails_with_exit_2(argv: list[str], capsys, named: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("evosearch: error:") and named in err and "Traceback" not in err, err


RUN_COMMANDS = {
    "show": lambda run: ["show", str(run)],
    "show --json": lambda run: ["show", str(run), "--json"],
    "plot": lambda run: ["plot", str(run)],
    "export RUN:best": lambda run: ["export", f"{run}:best", "-o", str(run.parent / "x.py"), "--class-name", "X"],
    "simplify RUN:3": lambda run: ["simplify", f"{run}:3"],
    "check RUN:best": lambda run: ["check", f"{run}:best"],
    "search --resume": lambda run: ["search", "--resume", "--out", str(run), "--in-process"],
}


@pytest.mark.parametrize("command", list(RUN_COMMANDS))
def test_a_missing_run_folder_is_an_error_and_is_not_created(command, tmp_path, capsys):
    run = tmp_path / "no_such_run"
    fails_with_exit_2(RUN_COMMANDS[command](run), capsys, "no_such_run")
    assert not run.exists() and not (tmp_path / "x.py").exists()


@pytest.mark.parametrize("command", list(RUN_COMMANDS))
def test_an_empty_run_folder_is_an_error_and_stays_empty(command, tmp_path, capsys):
    run = tmp_path / "empty"
    run.mkdir()
    fails_with_exit_2(RUN_COMMANDS[command](run), capsys, "empty")
    assert list(run.iterdir()) == []


@pytest.mark.parametrize("command", list(RUN_COMMANDS))
def test_an_empty_run_sqlite_is_an_error_and_stays_empty(command, tmp_path, capsys):
    run = tmp_path / "blank"
    run.mkdir()
    (run / "run.sqlite").write_bytes(b"")
    fails_with_exit_2(RUN_COMMANDS[command](run), capsys, "blank")
    assert listing(run) == {"run.sqlite": hashlib.sha256(b"").hexdigest()}


def test_show_and_export_read_a_run_without_changing_it(tmp_path, capsys):
    """Even where the hall of fame has no stored descriptions, ``show`` describes it for the screen
    only: the run folder's files are byte for byte what they were."""
    run = copy_of_old_run(tmp_path, "DELETE FROM descriptions")
    before = listing(run)
    assert main(["show", str(run)]) == 0
    assert main(["show", str(run), "--json"]) == 0
    assert main(["export", f"{run}:best", "-o", str(tmp_path / "found.py"), "--class-name", "Found"]) == 0
    assert "family" in capsys.readouterr().out
    assert listing(run) == before


def damaged_run(tmp_path: Path, damage: str) -> Path:
    """A copy of a real run folder with one kind of damage done to its store."""
    run = copy_of_old_run(tmp_path)
    path = run / "run.sqlite"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    elif damage == "overwritten":
        path.write_bytes(b"these bytes were once a run\n" * 200)
    elif damage == "another database":
        path.unlink()
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE notes (text TEXT)")
        db.commit()
        db.close()
    else:
        state = {"broken snapshot": '{"rng": [3, [1, 2', "empty snapshot": "{}",
                 "snapshot without a population": '{"counters": {"evaluated": 9}}'}[damage]
        db = sqlite3.connect(path)
        db.execute("UPDATE snapshots SET state = ? WHERE id = (SELECT MAX(id) FROM snapshots)", (state,))
        db.commit()
        db.close()
    return run


STORE_DAMAGE = ["truncated", "overwritten", "another database"]
SNAPSHOT_DAMAGE = ["broken snapshot", "empty snapshot", "snapshot without a population"]


@pytest.mark.parametrize("command", list(RUN_COMMANDS))
@pytest.mark.parametrize("damage", STORE_DAMAGE)
def test_a_damaged_store_is_one_line_naming_the_file_and_nothing_is_repaired(damage, command, tmp_path, capsys):
    run = damaged_run(tmp_path, damage)
    before = listing(run)
    fails_with_exit_2(RUN_COMMANDS[command](run), capsys, str(run / "run.sqlite"))
    assert len(capsys.readouterr().err.splitlines()) <= 1
    assert listing(run) == before and not (tmp_path / "x.py").exists()


@pytest.mark.parametrize("damage", SNAPSHOT_DAMAGE)
def test_a_damaged_snapshot_stops_show_and_resume_and_the_programs_can_still_be_exported(damage, tmp_path,
                                                                                      capsys):
    run = damaged_run(tmp_path, damage)
    before = listing(run)
    # show reads the snapshot's counters only; resume needs all of it, and never starts over silently
    for command in ("search --resume",) if damage == "snapshot without a population" else (
            "show", "show --json", "search --resume"):
        fails_with_exit_2(RUN_COMMANDS[command](run), capsys, f"{run / 'run.sqlite'}: the last population snapshot")
        assert listing(run) == before, command
    assert main(RUN_COMMANDS["export RUN:best"](run)) == 0       # what the run found is not lost
    assert main(RUN_COMMANDS["check RUN:best"](run)) == 0
    assert listing(run) == before


def test_a_store_whose_snapshots_are_gone_is_not_resumed_from_scratch(tmp_path, capsys):
    run = copy_of_old_run(tmp_path, "DELETE FROM snapshots")
    before = listing(run)
    fails_with_exit_2(RUN_COMMANDS["search --resume"](run), capsys, "records candidates but no population snapshot")
    assert listing(run) == before


def test_a_run_whose_driver_was_killed_is_read_with_its_wal_and_not_rewritten(tmp_path, capsys):
    """A driver killed with SIGKILL leaves its last commits in run.sqlite-wal. Reading the run sees
    them, and leaves run.sqlite and the WAL as they are (a read-write connection would fold the WAL
    into run.sqlite when it closes)."""
    run = copy_of_old_run(tmp_path)
    live = tmp_path / "live"
    shutil.copytree(run, live)
    writer = sqlite3.connect(live / "run.sqlite")          # the "driver": commits, never closes
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("UPDATE meta SET value = '123.0' WHERE key = 'elapsed'")
    writer.commit()
    killed = tmp_path / "killed"
    killed.mkdir()
    for name in ("run.sqlite", "run.sqlite-wal", "hall_of_fame.json", "best.py"):
        shutil.copy(live / name, killed / name)              # the folder as SIGKILL left it
    writer.close()
    assert (killed / "run.sqlite-wal").stat().st_size > 0
    before = listing(killed)
    assert main(["show", str(killed), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["elapsed"] == 123.0     # the WAL's commit is read
    assert listing(killed) == before


@pytest.mark.parametrize("argv, option", [
    (["search", "CONFIG", "--max-evals", "-1"], "--max-evals"),
    (["search", "CONFIG", "--max-evals", "0"], "--max-evals"),
    (["search", "CONFIG", "--time-limit", "-5"], "--time-limit"),
    (["search", "CONFIG", "--time-limit", "0"], "--time-limit"),
    (["search", "CONFIG", "--workers", "0"], "--workers"),
    (["search", "CONFIG", "--workers", "-2"], "--workers"),
    (["tune", "lion", "--task", "quadratic", "--samples", "0"], "--samples"),
    (["tune", "lion", "--task", "quadratic", "--iterations", "-1"], "--iterations"),
    (["tune", "lion", "--task", "quadratic", "--time-limit", "0"], "--time-limit"),
    (["export", "lion", "-o", "OUT", "--class-name", "L", "--lr", "-1e-3"], "--lr"),
    (["simplify", "lion", "--tolerance", "-0.1"], "--tolerance"),
])
def test_zero_or_negative_counts_and_limits_are_refused_by_name(argv, option, tmp_path, capsys):
    argv = [str(tmp_path / "cfg.toml") if a == "CONFIG" else str(tmp_path / "out.py") if a == "OUT" else a
            for a in argv]
    (tmp_path / "cfg.toml").write_text("[tasks]\nnames = ['quadratic']\n")
    with pytest.raises(SystemExit) as stop:
        main(argv + ["--out", str(tmp_path / "run")] if argv[0] == "search" else argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "out.py").exists()


def test_export_of_a_runs_program_is_simplified_as_the_searchs_own_export_is(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    db = sqlite3.connect(run / "run.sqlite")
    (text,) = db.execute("SELECT program FROM candidates WHERE id = 9").fetchone()
    dead = text.replace("    return update", "    junk = tan(lr)\n    return update")
    db.execute("UPDATE candidates SET program = ? WHERE id = 9", (dead,))
    db.commit()
    db.close()
    assert main(["export", f"{run}:9", "-o", str(tmp_path / "simple.py"), "--class-name", "Found"]) == 0
    assert "removed dead statement `junk = tan(lr)`" in capsys.readouterr().out
    assert "junk" not in (tmp_path / "simple.py").read_text()
    assert main(["export", f"{run}:9", "-o", str(tmp_path / "raw.py"), "--class-name", "Found", "--as-is"]) == 0
    assert "junk = tan(lr)" in (tmp_path / "raw.py").read_text()


def test_show_explains_fitness_with_each_tasks_loss_against_tuned_adamw(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    # candidate 9: fitness 0.8014 is a validation loss 24.9 times tuned AdamW's (1.658 against 0.0665)
    assert "1.0 is tuned AdamW's validation loss" in out
    assert "quadratic: val loss 1.658 (24.9x tuned AdamW's 0.0665)" in out
    assert main(["show", str(run), "--json"]) == 0
    entry = __import__("json").loads(capsys.readouterr().out)["hall_of_fame"][0]
    assert entry["tasks"]["quadratic"]["loss_ratio"] == pytest.approx(1.658121109008789 / 0.06650444865226746)


def test_plot_draws_the_search_in_shows_units(tmp_path):
    from evosearch.search.plot import curves
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    assert main(["plot", str(run), "--out", str(tmp_path / "png")]) == 0
    for name in ("fitness_vs_evaluations.png", "fitness_vs_time.png", "fitness_vs_length.png"):
        assert (tmp_path / "png" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    db = sqlite3.connect(run / "run.sqlite")
    rows = db.execute("SELECT id, fitness, recorded_at, status FROM candidates ORDER BY recorded_at, id").fetchall()
    db.close()
    evaluations, seconds, best, median = curves(rows, population=5)
    assert list(evaluations) == list(range(1, 7))          # the 6 evaluations show counts, not 10 candidates
    assert all(a <= b for a, b in zip(seconds, seconds[1:])) and all(a <= b for a, b in zip(best, best[1:]))
    assert best[-1] == max(r[1] for r in rows if r[3] == "evaluated")


def test_check_of_a_long_program_says_it_is_too_long_for_one_expression(tmp_path, capsys):
    chain = "".join(f"    u{i} = u{i - 1} + g\n" for i in range(1, 1000))
    path = tmp_path / "chain.py"
    path.write_text(f"def train(w, g, lr):\n    u0 = g * 1.0\n{chain}    update = u999 * lr\n    return update\n")
    assert main(["check", str(path)]) == 0            # sympy used to recurse past Python's limit here
    assert "(1001 live statements: too many to write as one expression)" in capsys.readouterr().out
