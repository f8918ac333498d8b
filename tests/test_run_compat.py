"""Run folders written by earlier versions still load: ``show``, ``export RUN:best`` and ``--resume``.

``tests/data/run_before_layout/`` is a run folder written by evosearch at commit b0f09d1, before
the engine was split into subpackages, with ``tests/data/run_before_layout.toml`` (an in-process
search on ``quadratic`` with the funnel on: 6 evaluations, candidate 9's large-size score still
missing). Beside it, what that version printed for ``show --json`` and the candidates it recorded
when the run was resumed to 10 evaluations. Only the public interface is used (the command line and
the SQLite file), so the test holds across refactorings of the engine.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import torch

from evosearch.cli import main

DATA = Path(__file__).parent / "data"
OLD_RUN = DATA / "run_before_layout"


@pytest.fixture
def old_run(tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    return run


def holds(new, old) -> bool:
    """``new`` holds everything ``old`` has, unchanged (dicts may have gained keys)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and holds(new[k], v) for k, v in old.items())
    if isinstance(old, list):
        return isinstance(new, list) and len(new) == len(old) and all(map(holds, new, old))
    return new == old


def test_show_prints_what_it_printed_before(old_run, capsys):
    """Every key and value the earlier version printed, unchanged; later versions add keys (the
    per-task readings of each hall-of-fame program)."""
    assert main(["show", str(old_run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    before = json.loads((DATA / "run_before_layout.show.json").read_text())
    assert holds(shown, before)
    assert not holds(shown, {**before, "evaluations": before["evaluations"] + 1})   # the check can fail


def test_export_of_the_best_program_trains(old_run, tmp_path):
    out = tmp_path / "found.py"
    assert main(["export", f"{old_run}:best", "-o", str(out), "--class-name", "Found"]) == 0
    spec = importlib.util.spec_from_file_location("found", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5))
    opt = module.Found([w], lr=1.0)
    for _ in range(3):
        opt.zero_grad()
        (w ** 2).sum().backward()
        opt.step()
    assert torch.isfinite(w).all() and opt.state[w]["step"] == 3


def test_resume_continues_exactly_as_before(old_run, evosearch_cache):
    """The resumed run records the candidates that the earlier version recorded: the same ids,
    programs, parents, mutations and cache decisions, and the same fitness (to 1e-6: a CPU whose
    kernels sum in another order may differ in the last bits)."""
    assert main(["search", "--resume", "--out", str(old_run), "--max-evals", "10", "--in-process"]) == 0
    db = sqlite3.connect(old_run / "run.sqlite")
    try:
        rows = [list(r) for r in db.execute(
            "SELECT id, status, program, fitness, parent_id, mutation, cached_from, large_fitness "
            "FROM candidates ORDER BY id")]
    finally:
        db.close()
    expected = json.loads((DATA / "run_before_layout.resumed.json").read_text())
    assert [r[:3] + r[4:7] for r in rows] == [r[:3] + r[4:7] for r in expected]
    for got, want in zip(rows, expected):
        for g, w in ((got[3], want[3]), (got[7], want[7])):
            assert (g is None) == (w is None)
            if w is not None:
                assert g == pytest.approx(w, rel=1e-6, abs=1e-9)
