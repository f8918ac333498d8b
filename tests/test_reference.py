"""Every reference program against the implementation that already exists, step by step (README,
"Reference programs"), and the shipped programs themselves.

The same model, the same data, two optimizers, and the parameters compared after every one of 60
steps (the harness is in equivalence.py). Where a library implements the rule (torch.optim,
lion-pytorch) it is the reference; otherwise (signSGD, Signum, PowerSign, AddSign, the paper's AdamW
warm start) the reference is a plain torch transcription of the published formula, written here.
"""

from __future__ import annotations

import math

import pytest
import torch

from evosearch import Program, reference, to_optimizer
from equivalence import LIBRARY_CASES, WORST, compare
from programs import ADAMW_TEXT


def ours(name: str, lr: float, foreach: bool, **hyper):
    cls = to_optimizer(reference.load(name), name="Ref_" + name)
    return lambda params: cls(params, lr=lr, foreach=foreach, **hyper)


FOREACH = pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "per_tensor"])


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
    """The warm start of docs/design.md ("The program language"), verbatim, is the shipped adamw
    program."""
    text = ADAMW_TEXT
    prog = Program.parse(text)
    assert prog == reference.load("adamw")
    assert str(prog) == text


def teardown_module(module):
    if WORST:
        print("\nlargest relative parameter difference over 60 steps:")
        for case in sorted(WORST):
            print(f"  {case:28s} {WORST[case]:.3g}")
