"""The numeric screen (``evosearch.lang.screen``): children that cannot survive training are failed
before training, and nothing that trains well is: every reference program passes, and a program
whose dead state overflows passes too. Evolution records a screened child as a failure, untrained;
the run store keeps it with its reason, and ``show`` counts it."""

from __future__ import annotations

import json

import pytest
from programs import ADAMW_TEXT

from evosearch import cli, reference
from evosearch.lang.program import Program
from evosearch.lang.screen import WEIGHT_LIMIT, screen_reason
from evosearch.search import evolution
from evosearch.search.evolution import EvolutionConfig, RegularizedEvolution
from tasks.results import FAILURE_FITNESS
from tasks.training import weight_failure

ADAMW = reference.load("adamw")


def variant(old: str, new: str) -> Program:
    assert old in ADAMW_TEXT
    return Program.parse(ADAMW_TEXT.replace(old, new))


@pytest.mark.parametrize("name", reference.names())
def test_every_reference_program_passes_the_screen(name):
    assert screen_reason(reference.load(name)) is None


# exp's guard stops at 1e30; the product that follows is unguarded and overflows float32, as in training
OVERFLOW = "    big = exp(update)\n    big = exp(big)\n    big = exp(big)\n    big = exp(big)\n    big = big * big\n"


@pytest.mark.parametrize("program, reason", [
    (variant("    wd = w * 0.01\n", OVERFLOW + "    update = update * big\n    wd = w * 0.01\n"),
     "the update is not finite at step 1"),
    (variant("    lr = lr * 0.001\n", "    lr = lr * -100.0\n"), "the weights blew up at step"),
    (variant("    lr = lr * 0.001\n", "    lr = lr * -3.0\n"), "the loss diverged by step"),
    (variant("v = interp(g2, v, 0.999)", "v = interp(g2, v, 0.999)\n    v = exp(v)\n    v = v * v"),
     "state 'v' is not finite at step"),
])
def test_programs_that_training_would_fail_are_screened_out(program, reason):
    assert reason in screen_reason(program)


def test_a_state_the_update_never_reads_may_overflow():
    overflow_m = OVERFLOW + "    m = big * 1.0\n    return update, m, v"
    text = ADAMW_TEXT.replace("m = interp(g, m, 0.9)", "m = interp(g, g, 0.9)")      # m: never read
    dead = Program.parse(text.replace("    return update, m, v", overflow_m))
    assert screen_reason(dead) is None
    live = Program.parse(ADAMW_TEXT.replace("    return update, m, v", overflow_m))
    assert "state 'm' is not finite" in screen_reason(live)


def test_the_weight_limit_is_the_one_training_stops_at():
    assert weight_failure(WEIGHT_LIMIT * 0.99, 0) is None and weight_failure(WEIGHT_LIMIT * 1.01, 0) is not None


def test_a_screened_child_joins_as_a_failure_untrained_and_its_twin_is_a_cache_hit(monkeypatch):
    blows_up = variant("    lr = lr * 0.001\n", "    lr = lr * -100.0\n")
    twin = Program.parse(str(blows_up).replace("wd = w * 0.01", "wd = 0.01 * w"))
    good = variant("interp(g2, v, 0.999)", "interp(g2, v, 0.99)")
    queue = [blows_up, twin, good]
    monkeypatch.setattr(evolution, "mutate", lambda parent, rng, config: (rng.random(), queue.pop(0))[1:] + ("s",))
    evo = RegularizedEvolution(ADAMW, EvolutionConfig(population_size=5, tournament_size=2), seed=0)
    (warm,) = evo.ask(1)
    evo.tell(warm.id, 0.5)
    (child,) = evo.ask(1)
    assert child.program == good                         # the only one returned for training
    (screened,) = evo.take_screened()
    assert screened.candidate.program == blows_up and "weights blew up" in screened.reason
    assert screened.fitness == FAILURE_FITNESS
    assert [h.source_id for h in evo.take_cache_hits()] == [screened.candidate.id]
    assert evo.counters.screened == 1 and evo.counters.evaluated == 1
    assert evo.population[-1].fitness == FAILURE_FITNESS


def test_with_the_screen_off_the_child_is_trained(monkeypatch):
    blows_up = variant("    lr = lr * 0.001\n", "    lr = lr * -100.0\n")
    monkeypatch.setattr(evolution, "mutate", lambda parent, rng, config: (blows_up, "s"))
    evo = RegularizedEvolution(ADAMW, EvolutionConfig(population_size=5, tournament_size=2, screen=False),
                               seed=0)
    (warm,) = evo.ask(1)
    evo.tell(warm.id, 0.5)
    assert [c.program for c in evo.ask(1)] == [blows_up]


def test_screened_children_are_stored_and_counted_by_show(tmp_path, capsys, monkeypatch):
    from evosearch.search.driver import run_search
    from runs import Hook, tiny_config
    blows_up = variant("    lr = lr * 0.001\n", "    lr = lr * -100.0\n")
    real = evolution.mutate
    calls = iter(range(10**6))

    def sometimes_blows_up(parent, rng, config):
        return (blows_up, "scripted") if next(calls) == 3 else real(parent, rng, config)
    monkeypatch.setattr(evolution, "mutate", sometimes_blows_up)
    folder = tmp_path / "run"
    outcome = run_search(tiny_config(max_evals=4, in_process=True), folder, progress=Hook())
    assert outcome.screened == 1 and outcome.evaluations == 4
    capsys.readouterr()
    assert cli.main(["show", str(folder), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["screened"] == 1 and shown["evaluations"] == 4
    (reason,) = shown["screen_reasons"]
    assert reason.startswith("numeric screen: the weights blew up at step #")
    assert cli.main(["show", str(folder)]) == 0
    assert "failed the numeric screen, untrained: 1 children" in capsys.readouterr().out


def test_check_says_when_the_search_would_fail_a_program_untrained(tmp_path, capsys):
    path = tmp_path / "ascent.py"
    path.write_text(str(variant("    lr = lr * 0.001\n", "    lr = lr * -100.0\n")))
    assert cli.main(["check", str(path)]) == 0
    assert "search would score it a failure untrained, numeric screen: the weights blew up" in capsys.readouterr().out
    assert cli.main(["check", "adamw"]) == 0
    assert "search would train it" in capsys.readouterr().out
