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
    ({"executor": {"batched": "sometimes"}},
     "batched must be true, false, \"always\" or \"approximate\", not 'sometimes'"),
    ({"executor": {"batch_size": 0}}, r'\[executor\] batch_size must be an integer >= 1 or "auto", not 0'),
    ({"executor": {"batch_size": -3}}, r'\[executor\] batch_size must be an integer >= 1 or "auto", not -3'),
    ({"executor": {"batch_size": 2.5}}, r'\[executor\] batch_size must be an integer >= 1 or "auto", not 2.5'),
    ({"executor": {"workers": -2}}, r"\[executor\] workers must be an integer >= 0"),
    ({"executor": {"in_process": "yes"}}, r"\[executor\] in_process must be true or false, not 'yes'"),
    ({"executor": {"address": 6379}}, r"\[executor\] address must be a string, not 6379"),
    ({"search": {"max_evals": 1e9}}, r"\[search\] max_evals must be an integer >= 1, not 1000000000.0"),
    ({"search": {"seed": "one"}}, r"\[search\] seed must be an integer, not 'one'"),
    ({"search": {"population_size": 0}}, r"\[search\] population_size must be an integer >= 1"),
    ({"search": {"strategy": "annealing"}}, r'strategy must be "evolution" or "random", not \'annealing\''),
    ({"search": {"warm_start": 3}}, r"\[search\] warm_start must be a string, not 3"),
    ({"search": {"time_limit": float("nan")}}, r"\[search\] time_limit must be a number >= 0, not nan"),
    ({"search": {"lr_proportional": 1}}, r"\[search\] lr_proportional must be true or false, not 1"),
    ({"tasks": {"names": "quadratic"}}, r"\[tasks\] names must be a list of strings, not 'quadratic'"),
    ({"tasks": {"seeds": [0, 0]}}, r"\[tasks\] seeds: a seed is listed twice"),
    ({"tasks": {"seeds": [-1]}}, r"\[tasks\] seeds must be a list of integers between 0 and 4294967295"),
    ({"tasks": {"seeds": [0.5]}}, r"\[tasks\] seeds must be a list of integers"),
    ({"tasks": {"size": "huge"}}, r"\[tasks\] size: task 'digits_mlp' has no size 'huge'; its sizes: proxy"),
    ({"tasks": {"lr": float("inf")}}, r"\[tasks\] lr must be a number, not inf"),
    ({"funnel": {"enabled": "on"}}, r"\[funnel\] enabled must be true or false, not 'on'"),
    ({"funnel": {"margin": "0.1"}}, r"\[funnel\] margin must be a number, not '0.1'"),
    ({"mutation": {"insert": -1.0}}, r"\[mutation\] insert must be a number >= 0, not -1.0"),
    ({"mutation": {"insert": 0, "delete": 0, "modify_argument": 0, "change_function": 0}},
     r"\[mutation\]: at least one of insert"),
    ({"mutation": {"max_statements": 0}}, r"\[mutation\] max_statements must be an integer between 1 and 10000, not 0"),
    ({"mutation": {"max_statements": 20_000}},
     r"\[mutation\] max_statements must be an integer between 1 and 10000, not 20000"),
    ({"mutation": {"constant_probability": 1.5}},
     r"\[mutation\] constant_probability must be a number between 0 and 1, not 1.5"),
    ({"mutation": {"primitives": ["sign", "sgn"]}}, r"\[mutation\] primitives: unknown \['sgn'\]"),
    ({"mutation": 5}, r"\[mutation\] must be a table"),
    ({"search": {"warm_start": 5}}, r"\[search\] warm_start must be a string, not 5"),
    ({"tasks": {"seeds": []}}, "seeds must list at least one seed"),
    ({"tasks": {"time_limit": -1}}, r"\[tasks\] time_limit must be a number >= 0"),
    ({"tasks": {"lr": 0.0}}, r"\[tasks\] lr must be a positive number"),
    ({"search": {"time_limit": -5}}, r"\[search\] time_limit must be a number >= 0"),
    ({"search": {"hall_of_fame": 0}}, r"\[search\] hall_of_fame must be an integer >= 1"),
])
def test_config_errors_name_the_problem(data, named):
    with pytest.raises(ConfigError, match=named):
        parse_config(data, base=Path(__file__).parent)      # as load_config reads a file


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


def test_the_mutation_operators_of_symbolic_regression_are_checked_like_the_others():
    cfg = parse_config({"mutation": {"wrap": 0.2, "wrap_read": 0.1, "effective": True}})
    assert (cfg.mutation.wrap, cfg.mutation.wrap_read, cfg.mutation.effective) == (0.2, 0.1, True)
    for table, message in (({"wrap": -1}, r"\[mutation\] wrap must be a number >= 0"),
                           ({"effective": 1}, r"\[mutation\] effective must be true or false"),
                           ({"insert": 0, "delete": 0, "modify_argument": 0, "change_function": 0},
                            "at least one of insert")):
        with pytest.raises(ConfigError, match=message):
            parse_config({"mutation": table})
    assert parse_config({"mutation": {"insert": 0, "delete": 0, "modify_argument": 0, "change_function": 0,
                                      "wrap": 1.0}}).mutation.wrap == 1.0
