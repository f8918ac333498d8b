"""The learning-rate rule (``evosearch.lang.pruning``; README, "Search"): by default the search trains
only children whose update is proportional to the ``lr`` input, so that every discovery follows the
lr a user passes and any scheduler; ``[search] lr_proportional = false`` turns it off, and then an
optimizer made from a program that ignores lr says so and warns. Every optimizer, exported or made by
``to_optimizer``, accepts ``weight_decay``."""

from __future__ import annotations

import random
import warnings

import pytest
import torch

from evosearch import Program, reference, to_optimizer
from evosearch.lang.pruning import follows_lr, lr_reason, why_pruned
from evosearch.search.config import SearchConfig, parse_config
from evosearch.search.evolution import EvolutionConfig, RegularizedEvolution
from evosearch.search.mutation import MutationConfig

from equivalence import load_exported
from programs import checked_walk

ADAMW = reference.load("adamw")


def variant(old: str, new: str) -> Program:
    """The warm start with its learning-rate statement replaced."""
    return Program.parse(str(ADAMW).replace("    lr = lr * 0.001\n", new))


# what the quickstart and the one-hour searches found: a constant step, or lr bent out of shape
CONSTANT_STEP = variant("", "    lr = wd * 0.002253\n")
CLIPPED_LR = variant("", "    lr = clip(lr, 0.001)\n")
SQRT_LR = variant("", "    lr = sqrt(lr)\n    lr = lr * 0.000719\n")
LR_IN_STATE = Program.parse("def train(w, g, m, lr):\n    d = g * lr\n    m = m + d\n    update = m * 1.0\n"
                            "    return update, m\n")


@pytest.mark.parametrize("name", reference.names())
def test_every_reference_program_follows_lr(name):
    assert lr_reason(reference.load(name)) is None


@pytest.mark.parametrize("prog", [CONSTANT_STEP, CLIPPED_LR, SQRT_LR], ids=["constant", "clip", "sqrt"])
def test_programs_that_bend_or_drop_lr_are_pruned(prog):
    assert "not proportional to lr" in lr_reason(prog)
    assert "not proportional to lr" in why_pruned(prog)
    assert why_pruned(prog, lr_proportional=False) is None
    assert not follows_lr(prog)


def test_lr_kept_inside_a_state_still_follows_the_schedule():
    assert follows_lr(LR_IN_STATE)


def test_the_runs_laid_end_to_end_say_what_three_runs_apart_say():
    """lr_reason runs lr x 1, 0.1 and 3.7 as one numpy run over three copies of the parameter tensors;
    on the search's own children, per-tensor reductions included, its verdicts are those of three
    separate runs (programs with a global reduction always take the separate runs)."""
    from evosearch.lang.pruning import _lr_reason
    rng, verdicts, reducing = random.Random(5), [], 0
    for start in ("adamw", "lion", "rmsprop"):
        for child, _ in checked_walk(reference.load(start), rng, MutationConfig(), 300):
            verdicts.append((lr_reason(child), _lr_reason(child, together=False)))
            reducing += any(s.primitive.reduces == "tensor" for s in child.statements)
    assert [a for a, _ in verdicts] == [b for _, b in verdicts]
    passed = sum(a is None for a, _ in verdicts)
    assert passed >= 50 and len(verdicts) - passed >= 50 and reducing >= 20
    # a global norm of something lr scales: laid end to end, the three runs would share one norm
    normalised = Program.parse("def train(w, g, lr):\n    u = g * lr\n    n = global_norm(u)\n    d = u / n\n"
                               "    update = d * lr\n    return update\n")
    assert lr_reason(normalised) is None


@pytest.mark.parametrize("rule", [True, False])
def test_evolution_trains_only_children_that_follow_lr_unless_the_rule_is_off(rule):
    evo = RegularizedEvolution(ADAMW, EvolutionConfig(population_size=20, tournament_size=4, lr_proportional=rule),
                               seed=3)
    rng = random.Random(0)
    children = []
    while len(children) < 300:
        for c in evo.ask(4):
            children.append(c.program)
            evo.tell(c.id, rng.random())
    ignoring = [p for p in children if not follows_lr(p)]
    if rule:
        assert ignoring == []
    else:
        assert len(ignoring) >= 5      # the rule is what keeps them out: without it, searches find them


def test_the_config_switch_and_old_runs():
    assert SearchConfig().lr_proportional and parse_config({}).lr_proportional
    assert not parse_config({"search": {"lr_proportional": False}}).evolution().lr_proportional
    saved = SearchConfig().to_dict()
    del saved["lr_proportional"]            # a run folder written before the rule existed
    assert SearchConfig.from_dict(saved).lr_proportional is False


def test_an_optimizer_that_ignores_lr_says_so_and_warns(tmp_path):
    made = to_optimizer(CONSTANT_STEP, "Found")
    exported, path = load_exported(CONSTANT_STEP, tmp_path, "Found")
    text = path.read_text()
    assert "not proportional to its lr input" in made.__doc__ and "not proportional to its lr" in text
    for cls in (made, exported):
        with pytest.warns(UserWarning, match="not proportional to its lr input"):
            cls([torch.nn.Parameter(torch.ones(3))], lr=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # one that follows lr is silent
        to_optimizer(ADAMW)([torch.nn.Parameter(torch.ones(3))])
        load_exported(ADAMW, tmp_path, "Warm")[0]([torch.nn.Parameter(torch.ones(3))])


def steps_taken(cls, lr: float, scheduler=None, weight_decay: float = 0.0) -> torch.Tensor:
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(20))
    opt = cls([w], lr=lr, weight_decay=weight_decay)
    sched = scheduler(opt) if scheduler else None
    for k in range(10):
        opt.zero_grad()
        ((w - 1.0) ** 2 * torch.arange(20.0)).sum().backward()
        opt.step()
        if sched:
            sched.step()
    return w.detach()


@pytest.mark.parametrize("source", ["to_optimizer", "export"])
def test_a_program_that_follows_lr_responds_to_lr_schedulers_and_weight_decay(source, tmp_path):
    signum = reference.load("signum")            # no decay literal: weight_decay is decoupled
    cls = to_optimizer(signum) if source == "to_optimizer" else load_exported(signum, tmp_path, "Signum")[0]
    start = steps_taken(cls, 0.0)
    small, large = steps_taken(cls, 1e-3) - start, steps_taken(cls, 1e-2) - start
    assert torch.allclose(large, 10 * small, rtol=1e-4)
    frozen = steps_taken(cls, 1e-2, lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.0))
    assert torch.equal(frozen, start) and not torch.equal(small, torch.zeros_like(small))   # lr 0: no step
    decayed = steps_taken(cls, 1e-2, weight_decay=0.5)
    assert not torch.allclose(decayed, steps_taken(cls, 1e-2))
