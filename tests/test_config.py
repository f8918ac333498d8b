"""Search configs (``evosearch.search.config``): every documented key (README, "Config keys") parses,
and a bad config, TOML file or key is a ConfigError that names the problem, reported by the command
line with exit code 2 and no run."""

from __future__ import annotations

from pathlib import Path

import pytest

from evosearch import cli
from evosearch.search.config import ConfigError, load_config, parse_config
from runs import CONFIG, TASK, candidates


@pytest.mark.parametrize("data, named", [
    ({"serach": {"seed": 1}}, "serach"),
    ({"search": {"max_eval": 10}}, "max_eval"),
    ({"tasks": {"names": ["no_such_task"]}}, "no_such_task"),
    ({"mutation": {"insrt": 1.0}}, "insrt"),
    ({"search": {"population_size": 5, "tournament_size": 9}}, "tournament_size"),
    ({"executor": {"batched": "sometimes"}}, "batched must be true, false or \"always\", not 'sometimes'"),
    ({"executor": {"batch_size": 0}}, r"\[executor\] batch_size must be a number >= 1, not 0"),
    ({"executor": {"workers": -2}}, r"\[executor\] workers must be a number >= 0"),
    ({"tasks": {"seeds": []}}, "seeds must list at least one seed"),
    ({"tasks": {"time_limit": -1}}, r"\[tasks\] time_limit must be a number >= 0"),
    ({"tasks": {"lr": 0.0}}, r"\[tasks\] lr must be a positive number"),
    ({"search": {"time_limit": -5}}, r"\[search\] time_limit must be a number >= 0"),
    ({"search": {"hall_of_fame": 0}}, r"\[search\] hall_of_fame must be a number >= 1"),
])
def test_config_errors_name_the_problem(data, named):
    with pytest.raises(ConfigError, match=named):
        parse_config(data)


def test_bad_toml_and_missing_file_are_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[search\nseed = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")


def test_every_documented_key_parses(tmp_path):
    config = tmp_path / "cfg.toml"
    config.write_text(CONFIG + "[funnel]\nenabled = false\n[mutation]\ninsert = 2.0\n")
    cfg = load_config(config)
    assert (cfg.tasks, cfg.population_size, cfg.seed, cfg.mutation.insert) == ((TASK,), 10, 1, 2.0)
    assert load_config(Path(__file__).parents[1] / "experiments" / "quickstart.toml").max_evals > 0


@pytest.mark.parametrize("toml", ["[serach]\nseed = 1\n", "[tasks]\nnames = ['no_such_task']\n", "[search\n"])
def test_cli_reports_config_errors_with_exit_code_2(toml, tmp_path, capsys):
    config = tmp_path / "cfg.toml"
    config.write_text(toml)
    assert cli.main(["search", str(config), "--out", str(tmp_path / "run"), "--in-process"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evosearch: error:") and "Traceback" not in err
    assert not (tmp_path / "run" / "run.sqlite").exists() or not candidates(tmp_path / "run")
