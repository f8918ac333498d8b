"""What a program costs against how well it trains (``evosearch.search.front``; docs/design.md,
"The run folder"): the best program per number of live state tensors and the length front, in
``front.json``, ``show`` and ``plot``; and ``[search] max_states``, the memory budget that prunes
children before they are trained. Searches train on the quick ``quadratic`` task in-process."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from evosearch import Program, cli, reference
from evosearch.lang.liveness import live_statements, live_states
from evosearch.search import evolution
from evosearch.search.config import ConfigError, SearchConfig, parse_config
from evosearch.search.driver import run_search
from evosearch.search.evolution import EvolutionConfig, RegularizedEvolution
from evosearch.search.front import FAILURE, bucket, fronts, length_front, state_front
from runs import TASK, Hook, check_run_store, tiny_config
from tasks.results import FAILURE_FITNESS

# AdamW's moments, but the update reads only m: v is a dead state, one mutation away from live
ONE_LIVE_STATE = """
def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, m, 0.9)
    v = interp(g2, v, 0.999)
    update = sign(m)
    lr = lr * 0.001
    update = update * lr
    return update, m, v
"""

OLD_RUN = Path(__file__).parent / "data" / "run_before_layout"


def entry(cid: int, fitness: float, states: int, length: int) -> dict:
    return {"id": cid, "fitness": fitness, "states": states, "length": length, "program": f"p{cid}",
            "canonical_hash": f"h{cid}"}


def shape_of(text: str) -> tuple[int, int]:
    prog = Program.parse(text)
    return len(live_states(prog)), len(live_statements(prog))


# ---- the fronts of a list of programs -----------------------------------------------------------

def test_the_state_front_is_the_best_per_bucket_and_marks_buckets_that_fewer_states_beat():
    entries = [entry(1, 0.90, 2, 8), entry(2, 0.95, 2, 9), entry(3, 0.70, 1, 6), entry(4, 0.96, 4, 12),
               entry(5, 0.94, 3, 10), entry(6, 0.80, 1, 7), entry(7, FAILURE, 0, 2)]
    front = fronts(entries)["states"]
    assert list(front) == ["0", "1", "2", "3+"]
    assert front["0"] is None                                 # the only stateless program failed
    assert (front["1"]["id"], front["2"]["id"], front["3+"]["id"]) == (6, 2, 4)   # 3 and 4 states share "3+"
    assert [front[b]["on_front"] for b in ("1", "2", "3+")] == [True, True, True]
    worse = state_front([entry(1, 0.9, 1, 5), entry(2, 0.8, 2, 5)])
    assert worse["2"]["id"] == 2 and worse["2"]["on_front"] is False and worse["1"]["on_front"] is True
    assert [bucket(n) for n in (0, 1, 2, 3, 7)] == ["0", "1", "2", "3+", "3+"]
    assert FAILURE == FAILURE_FITNESS


def test_the_length_front_keeps_the_programs_that_beat_every_shorter_one():
    entries = [entry(1, 0.5, 2, 3), entry(2, 0.4, 2, 4), entry(3, 0.9, 2, 6), entry(4, 0.7, 1, 5),
               entry(5, 0.9, 2, 7), entry(6, 0.95, 2, 9), entry(7, 0.6, 2, 3)]
    assert [e["id"] for e in length_front(entries)] == [7, 4, 3, 6]   # 5 only ties 3, 2 loses to 7
    assert [e["id"] for e in fronts(entries + [entry(8, FAILURE, 0, 1)])["length"]] == [7, 4, 3, 6]


# ---- a search: front.json, the hall of fame, show and plot --------------------------------------

def test_a_search_writes_the_fronts_and_show_prints_the_state_front(baselines, no_descriptions, tmp_path, capsys):
    folder = tmp_path / "run"
    outcome = run_search(tiny_config(max_evals=12, seed=3, in_process=True), folder, progress=Hook())
    rows = check_run_store(folder, outcome)
    trained = [r for r in rows if r["status"] == "evaluated" and r["failure"] is None]
    expected = {}
    for r in sorted(trained, key=lambda r: (-r["fitness"], r["id"])):
        expected.setdefault(bucket(shape_of(r["program"])[0]), r)

    front = json.loads((folder / "front.json").read_text())
    assert {b for b, e in front["states"].items() if e} == set(expected)
    for name, e in front["states"].items():
        if e:
            assert (e["id"], e["fitness"]) == (expected[name]["id"], expected[name]["fitness"])
            assert (e["states"], e["length"]) == shape_of(e["program"]) and e["bucket"] == name
    lengths = front["length"]
    assert lengths and all(a["length"] < b["length"] and a["fitness"] < b["fitness"]
                           for a, b in zip(lengths, lengths[1:]))
    assert lengths[-1]["fitness"] == outcome.best_fitness
    for r in trained:           # nothing as short as a front entry trains better than it
        length = shape_of(r["program"])[1]
        assert all(r["fitness"] <= e["fitness"] for e in lengths if e["length"] >= length)
    hof = json.loads((folder / "hall_of_fame.json").read_text())
    assert isinstance(hof, list) and all((e["states"], e["length"]) == shape_of(e["program"]) for e in hof)

    capsys.readouterr()
    assert cli.main(["show", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "best program per number of live state tensors" in out and "  states  candidate  fitness  length" in out
    for name, e in front["states"].items():
        row = f"  {name:>6}  {e['id']:>9}  {e['fitness']:7.4f}  {e['length']:>6}" if e else f"  {name:>6}  {'-':>9}"
        assert row in out
    assert cli.main(["show", str(folder), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["front"] == front

    assert cli.main(["plot", str(folder), "--out", str(tmp_path / "png")]) == 0
    assert (tmp_path / "png" / "fitness_front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_recorded_before_shapes_has_its_fronts_computed_and_is_not_written(tmp_path, capsys):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    before = sorted((p.name, p.read_bytes()) for p in run.iterdir())
    assert main_json(["show", str(run), "--json"], capsys)["front"]["states"]["2"]["id"] == 9
    assert cli.main(["plot", str(run), "--out", str(tmp_path / "png")]) == 0
    assert (tmp_path / "png" / "fitness_front.png").is_file()
    db = sqlite3.connect(run / "run.sqlite")
    assert "shapes" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert sorted((p.name, p.read_bytes()) for p in run.iterdir() if not p.name.endswith(("-shm", "-wal"))) == \
        [b for b in before if not b[0].endswith(("-shm", "-wal"))]


def main_json(argv: list[str], capsys) -> dict:
    capsys.readouterr()
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


# ---- [search] max_states -------------------------------------------------------------------------

def test_max_states_prunes_children_over_the_limit_before_they_are_trained(monkeypatch):
    warm = Program.parse(ONE_LIVE_STATE)
    assert live_states(warm) == ("m",)
    most = {}
    for limit in (0, 1):
        evo = RegularizedEvolution(warm, EvolutionConfig(population_size=20, tournament_size=4, max_states=limit),
                                   seed=1)
        states = []
        for step in range(20):
            for c in evo.ask(4):
                states.append(len(live_states(c.program)))
                evo.tell(c.id, 0.5 + 0.01 * (step % 7))
            states += [len(live_states(h.candidate.program)) for h in evo.take_cache_hits()]
        most[limit] = max(states)
    assert most == {0: 2, 1: 1}, "without the limit some child reads v; with it none may"

    # one child over the limit, then one within it: the first is counted as pruned, never returned
    evo = RegularizedEvolution(warm, EvolutionConfig(population_size=4, tournament_size=2, max_states=1))
    evo.tell(evo.ask(1)[0].id, 0.5)
    reads_v = Program.parse(ONE_LIVE_STATE.replace("update = sign(m)", "update = m / v"))
    other = Program.parse(ONE_LIVE_STATE.replace("0.9)", "0.8)"))
    queue = [reads_v, other]
    monkeypatch.setattr(evolution, "mutate", lambda parent, rng, config: (queue.pop(0), "scripted"))
    rejected = evo.counters.rejected
    assert [c.program for c in evo.ask(1)] == [other]
    assert evo.counters.rejected == rejected + 1 and evo.counters.generated == 2


def test_a_search_under_max_states_trains_nothing_over_it(baselines, no_descriptions, tmp_path):
    program = tmp_path / "one_state.py"
    program.write_text(ONE_LIVE_STATE)
    cfg = parse_config({"search": {"warm_start": str(program), "max_states": 1, "population_size": 10,
                                   "tournament_size": 3, "max_evals": 10, "seed": 1},
                        "tasks": {"names": [TASK]}, "executor": {"in_process": True}})
    outcome = run_search(cfg, tmp_path / "run", progress=Hook())
    rows = check_run_store(tmp_path / "run", outcome)
    assert outcome.evaluations == 10 and outcome.rejected > 0
    assert max(shape_of(r["program"])[0] for r in rows) == 1
    front = json.loads((tmp_path / "run" / "front.json").read_text())
    assert front["states"]["2"] is None and front["states"]["1"] is not None


def test_a_warm_start_over_max_states_is_refused_and_no_run_is_made(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"max_states = 1, but the warm start 'adamw' keeps 2 live state "
                                          r"tensors \(m, v\)"):
        parse_config({"search": {"max_states": 1}})
    with pytest.raises(ConfigError, match=r"\[search\] max_states must be an integer >= 0, not -1"):
        parse_config({"search": {"max_states": -1}})
    assert parse_config({"search": {"max_states": 2}}).max_states == 2
    assert parse_config({"search": {"warm_start": "lion", "max_states": 1}}).evolution().max_states == 1
    with pytest.raises(ValueError, match="max_states is 1, but the warm start keeps 2"):
        RegularizedEvolution(reference.load("adamw"), EvolutionConfig(max_states=1))
    config = tmp_path / "cfg.toml"
    config.write_text('[search]\nmax_states = 1\n[tasks]\nnames = ["quadratic"]\n')
    assert cli.main(["search", str(config), "--out", str(tmp_path / "run"), "--in-process"]) == 2
    assert "max_states = 1, but the warm start" in capsys.readouterr().err
    assert not (tmp_path / "run" / "run.sqlite").exists()


def test_a_config_saved_before_max_states_loads_without_a_limit():
    saved = replace(SearchConfig(), tasks=(TASK,)).to_dict()
    del saved["max_states"]
    assert SearchConfig.from_dict(saved).max_states == 0
