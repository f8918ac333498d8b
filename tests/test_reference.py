"""Every reference program against the implementation that already exists, step by step.

In the manner of optax's ``equivalence_test.py``: the same model, the same data, two optimizers, and
the parameters compared after every one of 60 steps. Where a library implements the rule (torch.optim,
lion-pytorch) it is the reference; otherwise (signSGD, Signum, PowerSign, AddSign, the paper's AdamW
warm start) the reference is a plain torch transcription of the published formula, written here.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from lion_pytorch import Lion
from torch import nn

from evosearch import Program, reference, to_optimizer

STEPS = 60
RTOL = 1e-5

# Largest relative difference seen per case, for the report printed at the end of the module.
WORST: dict[str, float] = {}


def make_model() -> nn.Module:
    """A conv + MLP with 4-d, 2-d and 1-d parameters, fixed initialisation."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 6 * 6, 16), nn.Tanh(), nn.Linear(16, 10),
    )


def make_data():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS, 16, 1, 8, 8, generator=gen)
    y = torch.randint(0, 10, (STEPS, 16), generator=gen)
    return x, y


DATA = make_data()


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def compare(case: str, make_ours, make_ref, steps: int = STEPS) -> float:
    """Train two copies of the model, one per optimizer, on the same batches; return the largest
    relative parameter difference over all steps and tensors (asserting it stays below RTOL)."""
    model_a = make_model()
    model_b = copy.deepcopy(model_a)
    start = [p.detach().clone() for p in model_a.parameters()]
    opt_a, opt_b = make_ours(model_a.parameters()), make_ref(model_b.parameters())
    x, y = DATA
    worst = 0.0
    for step in range(steps):
        for model, opt in ((model_a, opt_a), (model_b, opt_b)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[step]), y[step]).backward()
            opt.step()
        for (name, a), b in zip(model_a.named_parameters(), model_b.parameters()):
            d = rel_diff(a.detach(), b.detach())
            assert d < RTOL, f"{case}: step {step + 1}, parameter {name}: relative difference {d:.3g}"
            worst = max(worst, d)
    # The comparison only means something if the optimizers actually moved the weights.
    moved = max(rel_diff(b.detach(), s) for b, s in zip(model_b.parameters(), start))
    assert moved > 1e-3, f"{case}: the reference optimizer barely moved the weights ({moved:.3g})"
    WORST[case] = max(WORST.get(case, 0.0), worst)
    return worst


def ours(name: str, lr: float, foreach: bool, **hyper):
    cls = to_optimizer(reference.load(name), name="Ref_" + name)
    return lambda params: cls(params, lr=lr, foreach=foreach, **hyper)


FOREACH = pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "per_tensor"])

LIBRARY_CASES = {
    "sgd": (0.1, lambda ps: torch.optim.SGD(ps, lr=0.1)),
    "sgd_momentum": (0.05, lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
    "adagrad": (0.05, lambda ps: torch.optim.Adagrad(ps, lr=0.05, eps=1e-8)),
    "rmsprop": (1e-3, lambda ps: torch.optim.RMSprop(ps, lr=1e-3)),
    "adam": (1e-2, lambda ps: torch.optim.Adam(ps, lr=1e-2)),
    "adamw_torch": (1e-2, lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.01)),
    "lion": (1e-3, lambda ps: Lion(ps, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)),
}


@FOREACH
@pytest.mark.parametrize("name", sorted(LIBRARY_CASES))
def test_matches_library(name, foreach):
    lr, make_ref = LIBRARY_CASES[name]
    compare(f"{name}/{'foreach' if foreach else 'per_tensor'}", ours(name, lr, foreach), make_ref)


# ---- Independent transcriptions of the published rules (no library implements them) ----

class Transcribed(torch.optim.Optimizer):
    """``rule(p, g, state, lr)`` updates p in place; state is a dict, empty on the first step."""

    def __init__(self, params, lr, rule):
        super().__init__(params, dict(lr=lr))
        self.rule = rule

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.rule(p, p.grad, self.state[p], group["lr"])


def _momentum(state, g, beta=0.9):
    m = state.setdefault("m", torch.zeros_like(g))
    m.mul_(beta).add_(g, alpha=1 - beta)
    return m


def signsgd(p, g, state, lr):
    # Bernstein et al. 2018, Algorithm 1: x <- x - lr * sign(g).
    p.sub_(lr * torch.sign(g))


def signum(p, g, state, lr):
    # Bernstein et al. 2018, Algorithm 3: m <- beta m + (1 - beta) g; x <- x - lr * sign(m).
    p.sub_(lr * torch.sign(_momentum(state, g)))


def powersign(p, g, state, lr):
    # Bello et al. 2017, Sec. 5: PowerSign update e ** (sign(g) * sign(m)) * g.
    m = _momentum(state, g)
    p.sub_(lr * math.e ** (torch.sign(g) * torch.sign(m)) * g)


def addsign(p, g, state, lr):
    # Bello et al. 2017, Sec. 5: AddSign update (1 + sign(g) * sign(m)) * g.
    m = _momentum(state, g)
    p.sub_(lr * (1 + torch.sign(g) * torch.sign(m)) * g)


def adamw_warm_start(p, g, state, lr):
    # Chen et al. 2023, Program 1 (the warm start): AdamW without bias correction, eps 1e-8,
    # decoupled weight decay 0.01, the schedule's lr scaled by 0.001.
    m = _momentum(state, g, 0.9)
    v = state.setdefault("v", torch.zeros_like(g))
    v.mul_(0.999).add_(g * g, alpha=0.001)
    update = m / (v.sqrt() + 1e-8) + 0.01 * p
    p.sub_(lr * 0.001 * update)


TRANSCRIBED_CASES = {
    "signsgd": (1e-3, signsgd),
    "signum": (1e-3, signum),
    "powersign": (0.02, powersign),
    "addsign": (0.05, addsign),
    "adamw": (5.0, adamw_warm_start),
}


@FOREACH
@pytest.mark.parametrize("name", sorted(TRANSCRIBED_CASES))
def test_matches_published_formula(name, foreach):
    lr, rule = TRANSCRIBED_CASES[name]
    compare(f"{name}/{'foreach' if foreach else 'per_tensor'}", ours(name, lr, foreach),
            lambda ps: Transcribed(ps, lr, rule))


def test_transcription_catches_a_wrong_rule():
    """The harness can fail: Signum with a different momentum is caught."""
    def signum_095(p, g, state, lr):
        p.sub_(lr * torch.sign(_momentum(state, g, 0.95)))
    with pytest.raises(AssertionError, match="relative difference"):
        compare("signum-vs-wrong", ours("signum", 1e-3, True), lambda ps: Transcribed(ps, 1e-3, signum_095))
    WORST.pop("signum-vs-wrong", None)


# ---- The shipped programs themselves ----

ALL_NAMES = ["adagrad", "adam", "adamw", "adamw_torch", "addsign", "lion", "powersign", "rmsprop",
             "sgd", "sgd_momentum", "signsgd", "signum"]


def test_names_lists_all_twelve():
    assert reference.names() == ALL_NAMES


@pytest.mark.parametrize("name", ALL_NAMES)
def test_reference_program_parses_and_round_trips(name):
    prog = reference.load(name)
    text = reference.path(name).read_text()
    assert Program.parse(text) == prog
    assert Program.parse(str(prog)) == prog
    assert prog.inputs[:2] == ("w", "g") and "lr" in prog.inputs
    assert reference.description(name)


def test_adamw_warm_start_parses_exactly_as_written():
    """DESIGN.md's warm start, verbatim, is the shipped adamw program."""
    text = (
        "def train(w, g, m, v, lr):\n"
        "    g2 = square(g)\n"
        "    m = interp(g, m, 0.9)\n"
        "    v = interp(g2, v, 0.999)\n"
        "    sqrt_v = sqrt(v)\n"
        "    update = m / sqrt_v\n"
        "    wd = w * 0.01\n"
        "    update = update + wd\n"
        "    lr = lr * 0.001\n"
        "    update = update * lr\n"
        "    return update, m, v\n"
    )
    prog = Program.parse(text)
    assert prog == reference.load("adamw")
    assert str(prog) == text


def teardown_module(module):
    if WORST:
        print("\nlargest relative parameter difference over 60 steps:")
        for case in sorted(WORST):
            print(f"  {case:28s} {WORST[case]:.3g}")
