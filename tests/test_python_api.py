"""The README's "Python API" example, run as written (in a temporary working folder), and
``evosearch list-tasks``."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import tasks
from evosearch.cli import main

README = Path(__file__).parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_api_example_runs(tmp_path, monkeypatch, evosearch_cache, capsys):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(readme_example(), "README.md (Python API)", "exec"), scope)   # noqa: S102 - our own README
    outcome, watch, report, found = scope["outcome"], scope["watch"], scope["report"], scope["Found"]
    assert outcome.evaluations == 30 and (tmp_path / "runs" / "from-python" / "run.sqlite").is_file()
    assert watch.best and watch.best == sorted(watch.best) and watch.best[-1] == outcome.best_fitness
    assert report["best"]["fitness"] == outcome.best_fitness and report["hall_of_fame"]
    w = torch.nn.Parameter(torch.ones(4))
    w.grad = torch.ones(4)
    found([w], lr=1.0).step()
    assert not torch.equal(w.detach(), torch.ones(4))


def test_list_tasks_shows_every_task_with_both_sizes(capsys):
    assert main(["list-tasks"]) == 0
    out = capsys.readouterr().out
    for name in tasks.names():
        task = tasks.get(name)
        line = next(row for row in out.splitlines() if row.startswith(name + " "))
        assert f"{task.sizes['proxy']['steps']} x {task.sizes['proxy']['batch_size']}" in line
        assert task.description in line
