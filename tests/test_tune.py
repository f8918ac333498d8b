"""Population-based tuning (``evosearch.tune``; README, "Tuning a discovered optimizer"): the search
space, the tuned program, checkpoints that carry model and optimizer state across PBT's exploit
step, and small real runs on a local Ray instance."""

from __future__ import annotations

import math

import pytest
import torch

import tasks
from evosearch import Program, reference, to_optimizer
from evosearch.cli import build_parser
from evosearch.tune.pbt import trial_run, tune
from evosearch.tune.space import Setting, rounded, scales_lr, search_space, tuned_program

LION = reference.load("lion")
ADAMW = reference.load("adamw")          # the paper's warm start: lr scaled inside (lr * 0.001)


@pytest.fixture(autouse=True)
def _cache(evosearch_cache):
    """Baselines go to the session's temporary cache (never the user's)."""


@pytest.fixture(scope="module")
def local_ray():
    import ray
    from evosearch.search.executors import init_ray
    started = not ray.is_initialized()
    init_ray(None, 2)
    yield
    if started:
        ray.shutdown()


def _train(task, prog, setting: Setting, seed: int = 0) -> dict:
    cls = to_optimizer(prog, flat=True)
    return task.train(lambda params, lr: cls(params, lr=lr, **setting.hyper), seed, setting.lr)


# -- the search space ------------------------------------------------------------------------------

def test_a_searched_lr_chain_counts_as_the_programs_own_scale():
    # A quickstart search found `lr = sqrt(lr); lr = lr * 0.000719`: scored at lr 1, so tuned around 1.
    found = Program.parse(str(ADAMW).replace("    lr = lr * 0.001\n", "    lr = sqrt(lr)\n    lr = lr * 0.000719\n"))
    assert scales_lr(found) and search_space(found).default.lr == 1.0
    # ... but a chain through the tensors (the update itself times lr) is not a scale of lr.
    assert not scales_lr(Program.parse("def train(w, g, lr):\n    u = g * lr\n    u = u * 0.5\n    return u\n"))


def test_search_space_of_lion_and_of_the_warm_start():
    lion, adamw = search_space(LION), search_space(ADAMW)
    assert not scales_lr(LION) and scales_lr(ADAMW)
    assert lion.default == Setting(1e-3, {"betas": (0.9, 0.99), "weight_decay": 0.01})
    assert adamw.default == Setting(1.0, {"betas": (0.9, 0.999), "weight_decay": 0.01})
    ranges = {p.key: pytest.approx((p.low, p.high)) for p in lion.params}
    assert ranges == {"lr": (1e-5, 1e-1), "weight_decay": (1e-4, 1.0),
                      "one_minus_beta1": (0.01, 0.5), "one_minus_beta2": (1e-3, 0.1)}
    assert {p.key: p.low for p in adamw.params}["lr"] == pytest.approx(0.01)
    assert [p.key for p in search_space(LION, tunables=["lr"]).params] == ["lr"]
    assert [p.key for p in search_space(reference.load("sgd")).params] == ["lr"]
    with pytest.raises(ValueError, match="cannot tune"):
        search_space(LION, tunables=["momentum"])


def test_initial_population_starts_at_the_defaults_and_stays_inside_the_space():
    space = search_space(LION)
    pop = space.initial_population(8, seed=3)
    assert pop == space.initial_population(8, seed=3) and pop != space.initial_population(8, seed=4)
    assert space.setting(pop[0]) == space.default
    for config in pop:
        assert space.clip(config) == config
    # Latin hypercube: the 7 sampled learning rates fall in 7 different sevenths of the log range
    cells = sorted(int(7 * math.log(c["lr"] / 1e-5) / math.log(1e4)) for c in pop[1:])
    assert cells == list(range(7))
    # PBT's explore step can leave the range; clipping brings it back
    assert space.clip({**pop[0], "lr": 5.0})["lr"] == pytest.approx(0.1)


# -- the tuned program -----------------------------------------------------------------------------

def test_tuned_program_substitutes_constants_and_folds_lr():
    space = search_space(LION)
    setting = rounded(Setting(0.0031234, {"betas": (0.95123, 0.98765), "weight_decay": 0.123456}), space)
    # betas are rounded through 1 - beta: 0.95123 -> 1 - 0.0488
    assert setting == Setting(0.00312, {"betas": (0.9512, 0.9877), "weight_decay": 0.123})
    noisy = Setting(1e-3, {"betas": (0.9, 0.90669), "weight_decay": 0.01})     # 1 - 0.0933 = 0.90670...01
    assert str(rounded(noisy, space).hyper["betas"][1]) == "0.9067"
    text = str(tuned_program(LION, setting))
    assert Program.parse(text) == tuned_program(LION, setting)
    assert text.splitlines()[1] == "    lr = lr * 0.00312"         # Lion has no lr scale: one is added
    for literal in ("interp(g, m, 0.9512)", "interp(g, m, 0.9877)", "w * 0.123"):
        assert literal in text
    # the warm start's own `lr = lr * 0.001` absorbs the tuned lr
    warm = tuned_program(ADAMW, Setting(30.0, {"betas": (0.9, 0.99), "weight_decay": 0.1}))
    assert len(warm) == len(ADAMW) and "lr = lr * 0.03" in str(warm) and "w * 0.1" in str(warm)
    # Adam's bias corrections follow their betas
    adam = str(tuned_program(reference.load("adam"), Setting(1.0, {"betas": (0.8, 0.99)})))
    assert "power(0.8, t)" in adam and "power(0.99, t)" in adam


@pytest.mark.parametrize("prog, setting", [
    (LION, Setting(3e-3, {"betas": (0.95, 0.98), "weight_decay": 0.3})),
    (ADAMW, Setting(20.0, {"betas": (0.8, 0.99), "weight_decay": 0.05})),
])
def test_tuned_program_at_lr_1_trains_like_the_program_with_the_setting(prog, setting):
    task = tasks.get("quadratic")
    expected = _train(task, prog, setting)["val_loss"]
    got = _train(task, tuned_program(prog, setting), Setting(1.0))["val_loss"]
    assert got == pytest.approx(expected, rel=1e-4)


# -- checkpoints -----------------------------------------------------------------------------------

def _states_equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else
               _states_equal(a[k], b[k]) if isinstance(a[k], dict) else a[k] == b[k] for k in a)


def test_checkpoint_restores_model_and_optimizer_and_training_continues_identically(tmp_path):
    task = tasks.get("digits_mlp")
    setting = Setting(3.0, {"betas": (0.9, 0.999), "weight_decay": 0.01})
    uninterrupted = _train(task, ADAMW, setting)["val_loss"]

    first = trial_run(task, ADAMW, setting)
    first.advance(120)
    first.save(tmp_path)
    second = trial_run(task, ADAMW, setting)
    second.load(tmp_path)
    saved = first.optimizer.state_dict()
    restored = second.optimizer.state_dict()
    assert _states_equal(saved["state"], restored["state"])
    assert saved["param_groups"] == restored["param_groups"]
    assert any(float(s["m"].abs().sum()) > 0 for s in restored["state"].values())   # momentum, not zeros
    assert _states_equal(first.model.state_dict(), second.model.state_dict())
    assert second.step == 120
    for run in (first, second):
        while run.step < task.steps:
            run.advance(60)
    assert first.val_loss() == second.val_loss() == uninterrupted


def test_exploit_takes_the_donors_state_but_keeps_its_own_hyperparameters(tmp_path):
    task = tasks.get("quadratic")
    donor_setting = Setting(3e-3, {"betas": (0.9, 0.99), "weight_decay": 0.01})
    own = Setting(1e-3, {"betas": (0.8, 0.999), "weight_decay": 0.5})
    donor = trial_run(task, LION, donor_setting)
    donor.advance(100)
    donor.save(tmp_path)
    clone = trial_run(task, LION, own)
    clone.load(tmp_path)
    assert _states_equal(donor.optimizer.state_dict()["state"], clone.optimizer.state_dict()["state"])
    group = clone.optimizer.param_groups[0]
    assert group["betas"] == (0.8, 0.999) and group["weight_decay"] == 0.5


def test_a_diverging_run_fails_and_its_checkpoint_says_so(tmp_path):
    task = tasks.get("quadratic")
    run = trial_run(task, LION, Setting(100.0, {"betas": (0.9, 0.99), "weight_decay": 0.0}))
    run.advance(100)
    assert run.failure and run.step == 100 and run.val_loss() == math.inf
    run.save(tmp_path)
    again = trial_run(task, LION, Setting(1e-3, {"betas": (0.9, 0.99), "weight_decay": 0.0}))
    again.load(tmp_path)
    again.advance(100)
    assert again.failure == run.failure and again.step == 200


# -- PBT on a local Ray instance -------------------------------------------------------------------

def test_pbt_exploit_continues_the_donors_training_exactly(local_ray, tmp_path):
    """With an explore step that changes nothing (factors 1.0, no resampling), the trial that
    exploits another must continue exactly as that one: same model, optimizer and sampler state."""
    result = tune(LION, "quadratic", samples=2, iterations=2, perturbation_interval=1,
                  perturbation_factors=(1.0, 1.0), resample_probability=0.0, seed=0,
                  out=tmp_path / "lion_tuned.py", echo=lambda *a: None)
    assert result.exploits >= 1
    by_iteration: dict[int, list] = {}
    for trial, iteration, step, fitness in result.history:
        assert step == iteration * 150          # restored trials continue, never restart at step 0
        by_iteration.setdefault(iteration, []).append(fitness)
    assert len(by_iteration[1]) == 2 and by_iteration[1][0] != by_iteration[1][1]
    assert by_iteration[2][0] == by_iteration[2][1]     # the copy trained on identically
    # Synchronous PBT pauses every trial at every exploit step, so both trials went through a
    # checkpoint: their final fitness must equal one uninterrupted run with the donor's setting.
    task = tasks.get("quadratic")
    (donor_setting, _), (other_setting, _) = result.trials
    assert donor_setting == other_setting
    uninterrupted = task.fitness(_train(task, LION, donor_setting)["val_loss"])
    assert by_iteration[2][0] == uninterrupted

    # what was written parses, holds the best setting, and reproduces its fitness at lr 1.0
    written = Program.load(tmp_path / "lion_tuned.py")
    assert written == result.program == tuned_program(LION, result.best.setting)
    assert f"lr = lr * {result.best.setting.lr!r}" in (tmp_path / "lion_tuned.py").read_text()
    assert task.evaluate(written, seed=0).fitness == pytest.approx(result.best.fitness, rel=1e-6)
    assert result.best.fitness >= result.defaults.fitness
    assert result.defaults.fitness == pytest.approx(task.fitness(_train(
        task, LION, search_space(LION).default)["val_loss"]), rel=1e-6)
    assert result.adamw_fitness == 1.0 and result.adamw_val_loss == task.baseline(0).best_loss


def _cli(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


def test_cli_tunes_a_reference_program_and_writes_it(local_ray, tmp_path, capsys):
    out = tmp_path / "adamw_tuned.py"
    assert _cli(["tune", "adamw", "--task", "quadratic", "--samples", "2", "--iterations", "1",
                 "--params", "lr,weight_decay", "--out", str(out)]) == 0
    report = capsys.readouterr().out
    for word in ("best", "defaults", "AdamW", "fitness", str(out)):
        assert word in report
    tuned = Program.load(out)
    text = out.read_text()
    assert "interp(g2, v, 0.999)" in text and "interp(g, m, 0.9)" in text      # betas not tuned
    assert len(tuned) == len(ADAMW)                                           # lr folded, not added


def test_cli_rejects_an_unknown_task(tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        _cli(["tune", "lion", "--task", "no_such_task", "--out", str(tmp_path / "x.py")])
