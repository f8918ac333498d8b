"""Early stopping (``evosearch.search.early_stop``, the ``[early_stop]`` config section): the bars a
population sets, staged training that scores exactly as one uninterrupted run, stops that keep
the fitness the curve reached and say where and why, and whole searches (in the driver, on Ray in
test_ray_search.py) that are deterministic and resume with the population's readings."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from evosearch import Program, reference
from evosearch.search import driver
from evosearch.search.config import ConfigError, SearchConfig, parse_config
from evosearch.search.driver import run_search
from evosearch.search.early_stop import EarlyStop, behind, readings, stopped
from evosearch.search.store import RunStore
from evosearch.search.suite import SuiteEvaluator, SuiteSpec, compute_baselines
from runs import Hook, candidates, check_run_store, history_of, tiny_config

SUITE = ("iris_mlp", "quadratic")


# ---- the rule -------------------------------------------------------------------------------------

def test_bars_are_the_populations_quantile_at_each_checkpoint_less_the_margin():
    rule = EarlyStop(enabled=True, checkpoints=(0.25, 0.5), quantile=0.0, margin=0.0, min_members=3)
    members = [(0.5, 0.7), (0.2, 0.9), (0.4,), (), (0.3, 0.6)]   # one stopped at 0.25, one failed
    assert rule.bars(members) == (0.2, 0.6)
    # (only three members have a reading at 0.5: one fewer and there is no bar there)
    assert replace(rule, min_members=4).bars(members) == (0.2, None)
    assert replace(rule, quantile=1.0, margin=0.1).bars(members) == pytest.approx((0.4, 0.8))
    assert replace(rule, quantile=0.5).bars(members) == pytest.approx((0.35, 0.7))
    assert rule.bars([]) == (None, None)
    assert behind(0.1, 0.2) and not behind(0.2, 0.2) and not behind(-5.0, None)


def test_checkpoints_fall_inside_every_run():
    rule = EarlyStop(checkpoints=(0.25, 0.5))
    assert rule.steps(600) == [150, 300, 600]
    assert rule.steps(3) == [1, 2, 3]
    assert rule.steps(1) == [1, 1, 1]


# ---- staged evaluation ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def suite(evosearch_cache):
    spec = SuiteSpec(SUITE, seeds=(0, 1))
    return replace(spec, baselines=compute_baselines(spec, echo=lambda *a: None))


def test_staged_training_scores_exactly_as_one_uninterrupted_run(suite):
    plain = SuiteEvaluator(suite)
    staged = SuiteEvaluator(replace(suite, early_stop=EarlyStop(enabled=True, checkpoints=(0.1, 0.3, 0.8))))
    for name in ("adamw", "lion", "sgd"):           # lion fails on iris at lr 1: failures match too
        prog = reference.load(name)
        a, b = plain.evaluate(1, prog), staged.evaluate(1, prog)
        assert (b.fitness, b.task_fitness, b.failure) == (a.fitness, a.task_fitness, a.failure)
        for key, values in a.metrics.items():
            assert {k: v for k, v in b.metrics[key].items() if k != "wall_time"} == \
                   {k: v for k, v in values.items() if k != "wall_time"}
        assert len(readings(b.metrics)) == 3 and stopped(b.metrics) is None


def test_a_candidate_below_its_bar_stops_with_the_fitness_its_curve_reached(suite):
    rule = EarlyStop(enabled=True, checkpoints=(0.25, 0.5))
    staged = SuiteEvaluator(replace(suite, early_stop=rule))
    prog = reference.load("adamw")
    full = staged.evaluate(1, prog)
    first, second = readings(full.metrics)
    # a bar it clears at the first checkpoint and misses at the second
    e = staged.evaluate(2, prog, bars=(first - 0.01, second + 0.01))
    stop = stopped(e.metrics)
    assert stop["checkpoint"] == 0.5 and stop["bar"] == second + 0.01
    assert e.fitness == stop["fitness"] == second and readings(e.metrics) == (first, second)
    assert "below the population's bar" in stop["reason"]
    assert stop["steps"] == {"iris_mlp/0": 26, "iris_mlp/1": 26, "quadratic/0": 150, "quadratic/1": 150}
    assert e.metrics["quadratic/0"]["steps"] == 150 and e.failure is None
    assert e.seconds < full.seconds
    # on a bar it clears everywhere it trains to the end, with the same fitness as without bars
    e = staged.evaluate(3, prog, bars=(first, second))
    assert stopped(e.metrics) is None and e.fitness == full.fitness
    # a stop's fitness is the mean over tasks of the mean over seeds, as a full run's
    e = staged.evaluate(4, prog, bars=(math.inf,))
    assert e.fitness == pytest.approx(sum(e.task_fitness.values()) / 2) and e.fitness == first


def test_a_failure_before_a_checkpoint_scores_as_a_failure_there(suite):
    staged = SuiteEvaluator(replace(suite, early_stop=EarlyStop(enabled=True)))
    ascent = Program.parse("def train(w, g, lr):\n    u = g * -1000000.0\n    u = u * lr\n    return u\n")
    e = staged.evaluate(1, ascent, bars=(math.inf, math.inf))
    assert e.fitness == -1.0 and readings(e.metrics) == (-1.0,)
    assert "iris_mlp (seed 0): non-finite training loss at step 4" in e.failure


# ---- the config ---------------------------------------------------------------------------------

def test_the_early_stop_section_is_read_and_checked():
    cfg = parse_config({"early_stop": {"enabled": True, "checkpoints": [0.2, 0.6], "quantile": 0.25,
                                       "margin": 0.05, "min_members": 20}})
    assert cfg.early_stop == EarlyStop(True, (0.2, 0.6), 0.25, 0.05, 20)
    assert cfg.suite().early_stop == cfg.early_stop
    assert SearchConfig.from_dict(cfg.to_dict()) == cfg
    old = cfg.to_dict()
    del old["early_stop"]               # a run saved before early stopping existed resumes without it
    assert SearchConfig.from_dict(old).early_stop == EarlyStop()
    for table, message in (({"checkpoints": [0.5, 0.25]}, "increasing fractions"),
                           ({"checkpoints": [0.5, 1.0]}, "increasing fractions"),
                           ({"checkpoints": []}, "increasing fractions"),
                           ({"checkpoints": ["half"]}, "[early_stop] checkpoints must be a list of numbers"),
                           ({"quantile": 2}, "[early_stop] quantile must be a number between 0 and 1"),
                           ({"margin": -0.1}, "[early_stop] margin must be a number >= 0"),
                           ({"min_members": 0}, "[early_stop] min_members must be an integer >= 1"),
                           ({"enable": True}, "[early_stop]: unknown keys ['enable']")):
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_config({"early_stop": table})


# ---- whole searches -------------------------------------------------------------------------------

def early_config(**overrides):
    rule = EarlyStop(enabled=True, checkpoints=(0.25, 0.5), quantile=0.5, min_members=3)
    return tiny_config(**{"max_evals": 30, "seed": 3, "in_process": True, "early_stop": rule, **overrides})


def test_a_search_stops_children_behind_the_population_deterministically(evosearch_cache, no_descriptions,
                                                                          tmp_path, capsys):
    outcomes = [(run_search(early_config(), tmp_path / name, progress=Hook()), tmp_path / name) for name in "ab"]
    rows = [check_run_store(folder, outcome) for outcome, folder in outcomes]
    assert history_of(rows[0]) == history_of(rows[1])
    trained = [r for r in rows[0] if r["status"] == "evaluated"]
    stops = [(r, stopped(json.loads(r["metrics"]))) for r in trained]
    stops = [(r, s) for r, s in stops if s]
    assert stops, "a population's median should stop some children of a tiny search"
    for r, s in stops:
        assert r["fitness"] == s["fitness"] < s["bar"]
        assert readings(json.loads(r["metrics"]))[-1] == s["fitness"]
    warm = json.loads(trained[0]["metrics"])
    assert stopped(warm) is None and len(readings(warm)) == 2, "the warm start trains to the end, read twice"
    # show counts them by checkpoint
    from evosearch.cli import main
    from evosearch.search.report import summary
    counts = summary(outcomes[0][1])["early_stopped"]
    assert sum(counts.values()) == len(stops) and set(counts) <= {"0.25", "0.5"}
    assert main(["show", str(outcomes[0][1])]) == 0
    assert f"early-stopped, behind the population at a checkpoint: {len(stops)} of 30" in capsys.readouterr().out


def test_a_resumed_search_starts_from_its_populations_readings(evosearch_cache, no_descriptions, tmp_path):
    folder = tmp_path / "run"
    run_search(early_config(max_evals=12), folder, progress=Hook())
    store = RunStore(folder, readonly=True)
    try:
        evo = driver._evolution(store, SearchConfig.from_dict(store.get_meta("config")), None)
        found = driver._population_readings(store, [m.candidate.id for m in evo.population])
    finally:
        store.close()
    rows = {r["id"]: r for r in candidates(folder)}
    assert found, "the population's members have readings in the store"
    for cid, values in found.items():
        row = rows[cid]
        source = rows[row["cached_from"]] if row["status"] == "cached" else row
        assert values and values == readings(json.loads(source["metrics"]))
    outcome = run_search(early_config(max_evals=30), folder, resume=True, progress=Hook())
    assert outcome.evaluations == 30
    check_run_store(folder, outcome)


def test_the_early_stop_study_retrains_stopped_children_and_counts_false_stops(evosearch_cache, no_descriptions,
                                                                               tmp_path, capsys):
    """experiments/early_stop_study.py, on a finished tiny search (``--run``)."""
    import importlib
    import sys
    from pathlib import Path
    folder = tmp_path / "run"
    run_search(early_config(), folder, progress=Hook())
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    try:
        study = importlib.import_module("early_stop_study")
    finally:
        sys.path.pop(0)
    study.main(["--run", str(folder), "--sample", "3", "--out", str(tmp_path / "study.json")])
    result = json.loads((tmp_path / "study.json").read_text())
    assert "false stops:" in capsys.readouterr().out
    assert result["sample"] == 3 and result["trained"] == 30 and result["stopped"] >= 3
    for j in result["judged"]:
        assert j["false_stop"] == (j["full_fitness"] >= j["top_tenth"])
        assert j["checkpoint"] in (0.25, 0.5) and j["stopped_fitness"] < j["bar"]
    assert result["stopped"] == sum(result["per_checkpoint"].values())


def test_the_study_replays_rules_on_a_search_that_read_every_child_and_stopped_none(evosearch_cache,
                                                                                    no_descriptions, tmp_path):
    """``--observe`` then ``--simulate``: a child the replay stops is below the bar its population's
    readings set; a higher quantile stops at least as many."""
    import importlib
    import sys
    from pathlib import Path
    observe = early_config(early_stop=EarlyStop(enabled=True, min_members=10 ** 9))
    run_search(observe, tmp_path / "run", progress=Hook())
    rows = candidates(tmp_path / "run")
    assert not any(stopped(json.loads(r["metrics"])) for r in rows if r["status"] == "evaluated")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    try:
        study = importlib.import_module("early_stop_study")
    finally:
        sys.path.pop(0)
    cfg, _, rows = study.read_run(tmp_path / "run")
    low, high = study.simulate(cfg, rows, [0.0, 0.75], min_members=3)
    assert low["trained"] == high["trained"] == 29
    assert 0 < high["stopped"] and low["stopped"] <= high["stopped"]
    assert high["step_gain"] >= low["step_gain"] >= 1.0
    assert sum(high["per_checkpoint"].values()) == high["stopped"]
