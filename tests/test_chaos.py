"""The standing chaos test (docs/robustness.md): ``evosearch search`` on an embedded Ray with two real worker
actors, actors SIGKILLed from outside again and again, the driver SIGKILLed twice and resumed each
time, to the end of its budget. The run folder must then hold every candidate exactly once, no
program trained twice, an intact database whose last snapshot accounts for every row, and a hall of
fame headed by the store's best.

The machinery (process scans, the plan, the audit of the run folder) is experiments/chaos.py, which
runs the same at a larger size for docs/robustness.md. Here the suite is the quick ``quadratic``
task and the budget 30 evaluations: the three driver starts (Ray and its actors each time, about
20 s each on the 2-core machine under load) are most of the test's 65-85 s.
"""

from __future__ import annotations

import importlib
import signal
import sys
import time
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
MAX_EVALS = 30


@pytest.fixture(scope="module")
def chaos_script():
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        return importlib.import_module("chaos")
    finally:
        sys.path.remove(str(EXPERIMENTS))


def test_a_search_survives_killed_actors_and_two_killed_drivers(chaos_script, evosearch_cache, tmp_path):
    # (evosearch_cache: the drivers tune AdamW into the session's cache, never the user's; a resumed
    # driver reads the baseline from its run folder)
    chaos = chaos_script
    config = tmp_path / "chaos.toml"
    config.write_text(chaos.CONFIG.format(seed=3, population=10, tournament=3, tasks='["quadratic"]'))
    sessions = chaos.plan(MAX_EVALS, actor_kills=3, driver_kills=2)
    folder = tmp_path / "run"
    log = chaos.chaos(config, folder, MAX_EVALS, sessions, workers=2, logs=tmp_path / "logs", wait_limit=180)

    # the chaos happened as planned
    assert log.actor_kills == 3
    assert [k.status for k in log.driver_kills] == [-signal.SIGKILL] * 2
    assert all(k.evaluations < MAX_EVALS for k in log.driver_kills)
    assert log.resumes == 2
    assert any(k.in_flight for k in log.driver_kills), "no candidate was in flight at a driver kill"
    assert f"stopped (max_evals) after {MAX_EVALS} evaluations" in log.output

    figures = chaos.audit(folder, log)
    assert figures["evaluations"] == MAX_EVALS
    assert figures["ids_contiguous"], "candidate ids must be 0..n-1, each recorded once"
    assert figures["lost"] == 0, "a candidate given an id was never recorded"
    assert figures["trained_twice"] == 0, "a program was trained twice"
    assert figures["in_flight_not_retrained"] == 0, "a candidate in flight at a driver kill was not trained"
    assert figures["changed_after_a_kill"] == 0, "a row recorded before a driver kill changed"
    assert figures["integrity"] == "ok"
    assert figures["snapshot_agrees"] and figures["counters_agree"], "counters disagree with the rows"
    assert figures["hall_of_fame_agrees"], f"hall_of_fame.json is not headed by the best, #{figures['best'][0]}"
    assert figures["best_py_agrees"]
    assert figures["workers_replaced"] >= 1, "no driver noticed a killed actor"

    # and nothing the drivers started is left running (the sessions they led are empty, once the
    # SIGKILLs sent at the end have landed)
    deadline = time.time() + 10
    while (left := [p.name for p in chaos.processes() if p.session in log.drivers and p.state != "Z"]):
        assert time.time() < deadline, left
        time.sleep(0.1)
