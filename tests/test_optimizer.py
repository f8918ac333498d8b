"""``to_optimizer`` gives a real ``torch.optim.Optimizer``: param groups, lazy per-parameter state,
closures, state_dict round trips, LR schedulers, the foreach path, constructor checks, no aliasing.

The numerics of each reference program are tested step by step in test_reference.py; here the
library optimizers are the oracle for the plumbing (which lr, which betas, which step count reach
the program). A plumbing error (a group's lr or betas ignored, a schedule not followed, the step
count reset) moves the weights by 1e-2 or more within these 20 steps, far above PLUMBING_RTOL.
"""

from __future__ import annotations

import copy
import io

import pytest
import torch
from lion_pytorch import Lion as LibraryLion
from torch import nn

from evosearch import Program, reference, to_optimizer

STEPS = 20
PLUMBING_RTOL = 1e-5

Lion = to_optimizer(reference.load("lion"), name="Lion")
Adam = to_optimizer(reference.load("adam"), name="Adam")

# (our class, library class, hyperparameters for group 0, for group 1); lr is part of each group.
FAMILIES = {
    "lion": (Lion, LibraryLion,
             dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01),
             dict(lr=3e-4, betas=(0.8, 0.95), weight_decay=0.3)),
    "adam": (Adam, torch.optim.Adam,
             dict(lr=1e-2, betas=(0.9, 0.999)),
             dict(lr=3e-3, betas=(0.8, 0.99))),
}
FAMILY = pytest.mark.parametrize("family", sorted(FAMILIES))


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))


def make_data(steps: int = 2 * STEPS):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(steps, 32, 8, generator=gen), torch.randint(0, 4, (steps, 32), generator=gen)


DATA = make_data()


def train_step(model, opt, step: int):
    x, y = DATA
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x[step]), y[step])
    loss.backward()
    opt.step()
    return loss


def train(model, opt, steps: range, scheduler=None):
    for step in steps:
        train_step(model, opt, step)
        if scheduler is not None:
            scheduler.step()


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def assert_close_models(a: nn.Module, b: nn.Module, rtol: float, what: str):
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        d = rel_diff(pa.detach(), pb.detach())
        assert d < rtol, f"{what}: parameter {name} differs by {d:.3g} (relative)"


def assert_moved(model: nn.Module, start: nn.Module, at_least: float = 1e-3):
    moved = max(rel_diff(p.detach(), s.detach()) for p, s in zip(model.parameters(), start.parameters()))
    assert moved > at_least, f"the weights barely moved ({moved:.3g}); the comparison would mean nothing"


# ---- param groups ----

class Together:
    """Several optimizers over disjoint parameters, stepped as one."""

    def __init__(self, *opts):
        self.opts = opts

    def zero_grad(self):
        for opt in self.opts:
            opt.zero_grad()

    def step(self):
        for opt in self.opts:
            opt.step()


@FAMILY
def test_param_groups_match_two_library_optimizers(family):
    ours_cls, lib_cls, hyper0, hyper1 = FAMILIES[family]
    ours_model, lib_model = make_model(), make_model()
    start = copy.deepcopy(ours_model)
    first, second = list(ours_model[0].parameters()), list(ours_model[2].parameters())
    opt = ours_cls([dict(params=first, **hyper0), dict(params=second, **hyper1)])
    assert opt.param_groups[1]["betas"] == hyper1["betas"]

    both = Together(lib_cls(lib_model[0].parameters(), **hyper0),
                    lib_cls(lib_model[2].parameters(), **hyper1))
    for step in range(STEPS):
        train_step(ours_model, opt, step)
        train_step(lib_model, both, step)
        assert_close_models(ours_model, lib_model, PLUMBING_RTOL, f"{family} groups, step {step + 1}")
    assert_moved(lib_model, start)


def test_group_without_overrides_uses_constructor_defaults():
    model = make_model()
    opt = Lion([dict(params=model[0].parameters()), dict(params=model[2].parameters(), lr=0.5)],
               lr=0.25, betas=(0.7, 0.8), weight_decay=0.125)
    assert opt.param_groups[0]["lr"] == 0.25 and opt.param_groups[1]["lr"] == 0.5
    assert all(g["betas"] == (0.7, 0.8) and g["weight_decay"] == 0.125 for g in opt.param_groups)


# ---- lazy per-parameter state ----

@FAMILY
def test_state_is_created_lazily_and_only_for_parameters_with_grads(family):
    ours_cls = FAMILIES[family][0]
    model = make_model()
    unused = nn.Parameter(torch.randn(5))
    unused_before = unused.detach().clone()
    opt = ours_cls(list(model.parameters()) + [unused], lr=1e-3)
    assert len(opt.state) == 0
    train(model, opt, range(3))
    assert unused not in opt.state
    assert torch.equal(unused.detach(), unused_before)
    names = set(reference.load(family).state_names)
    for p in model.parameters():
        state = opt.state[p]
        assert set(state) == names | {"step"} and state["step"] == 3
        for name in names:
            assert state[name].shape == p.shape and state[name].dtype == p.dtype


def test_parameter_that_starts_late_counts_its_own_steps():
    """The step count (and with it Adam's bias correction) is per parameter, like torch.optim.Adam."""
    models = make_model(), make_model()
    opts = Adam(models[0].parameters(), lr=1e-2), torch.optim.Adam(models[1].parameters(), lr=1e-2)
    x, y = DATA
    for step in range(10):
        for model, opt in zip(models, opts):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[step]), y[step]).backward()
            if step < 4:
                for p in model[2].parameters():  # the last layer is frozen for the first 4 steps
                    p.grad = None
            opt.step()
    assert opts[0].state[models[0][2].weight]["step"] == 6
    assert opts[0].state[models[0][0].weight]["step"] == 10
    assert_close_models(*models, PLUMBING_RTOL, "late-starting parameter")


# ---- step(closure) ----

@FAMILY
def test_step_returns_the_closures_loss(family):
    ours_cls = FAMILIES[family][0]
    model = make_model()
    before = copy.deepcopy(model)
    opt = ours_cls(model.parameters(), lr=1e-2)
    x, y = DATA
    calls = []

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x[0]), y[0])
        loss.backward()
        calls.append(loss)
        return loss

    result = opt.step(closure)
    assert len(calls) == 1 and result is calls[0]
    assert result.requires_grad  # the closure ran with gradients enabled despite step's no_grad
    assert_moved(model, before, 1e-4)
    assert opt.step() is None


# ---- state_dict / load_state_dict ----

@FAMILY
def test_state_dict_resume_is_exact(family):
    ours_cls, _, hyper0, hyper1 = FAMILIES[family]

    def build(seed):
        model = make_model(seed)
        opt = ours_cls([dict(params=model[0].parameters(), **hyper0),
                        dict(params=model[2].parameters(), **hyper1)])
        return model, opt

    straight, straight_opt = build(0)
    train(straight, straight_opt, range(2 * STEPS))

    model, opt = build(0)
    train(model, opt, range(STEPS))
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)

    resumed, resumed_opt = build(seed=123)  # a different initialisation: everything must come from the file
    resumed.load_state_dict(saved["model"])
    resumed_opt.load_state_dict(saved["opt"])
    assert [g["lr"] for g in resumed_opt.param_groups] == [hyper0["lr"], hyper1["lr"]]
    train(resumed, resumed_opt, range(STEPS, 2 * STEPS))

    for (name, a), b in zip(resumed.named_parameters(), straight.parameters()):
        assert torch.equal(a, b), f"{family}: {name} differs after resuming"
    for a, b in zip(resumed.parameters(), straight.parameters()):
        sa, sb = resumed_opt.state[a], straight_opt.state[b]
        assert sa.keys() == sb.keys() and sa["step"] == sb["step"] == 2 * STEPS
        assert all(torch.equal(sa[k], sb[k]) for k in sa if k != "step")


def test_state_dict_without_state_resumes_lazily():
    model = make_model()
    opt = Lion(model.parameters(), lr=1e-3)
    fresh = Lion(make_model().parameters(), lr=1e-3)
    fresh.load_state_dict(opt.state_dict())
    assert len(fresh.state) == 0


# ---- LR schedulers ----

SCHEDULERS = {
    "step": lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.3),
    "lambda": lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1.0 + s)),
}


@FAMILY
@pytest.mark.parametrize("schedule", sorted(SCHEDULERS))
def test_lr_scheduler_drives_the_programs_lr(family, schedule):
    ours_cls, lib_cls, hyper0, _ = FAMILIES[family]
    ours_model, lib_model, plain_model = make_model(), make_model(), make_model()
    ours_opt, lib_opt = ours_cls(ours_model.parameters(), **hyper0), lib_cls(lib_model.parameters(), **hyper0)
    plain_opt = ours_cls(plain_model.parameters(), **hyper0)
    ours_sched, lib_sched = SCHEDULERS[schedule](ours_opt), SCHEDULERS[schedule](lib_opt)
    for step in range(STEPS):
        train_step(ours_model, ours_opt, step)
        train_step(lib_model, lib_opt, step)
        train_step(plain_model, plain_opt, step)
        ours_sched.step()
        lib_sched.step()
        assert ours_opt.param_groups[0]["lr"] == lib_opt.param_groups[0]["lr"]
        assert_close_models(ours_model, lib_model, PLUMBING_RTOL, f"{family}/{schedule}, step {step + 1}")
    assert ours_opt.param_groups[0]["lr"] < 0.1 * hyper0["lr"]
    # Without the scheduler the trajectory is measurably different, so the comparison above can fail.
    with pytest.raises(AssertionError):
        assert_close_models(ours_model, plain_model, 1e-3, "unscheduled")


# ---- foreach ----

@FAMILY
def test_foreach_and_per_tensor_paths_agree(family):
    ours_cls, _, hyper0, hyper1 = FAMILIES[family]
    models = {}
    for foreach in (True, False):
        model = make_model()
        opt = ours_cls([dict(params=model[0].parameters(), **hyper0),
                        dict(params=model[2].parameters(), **hyper1)], foreach=foreach)
        train(model, opt, range(STEPS))
        models[foreach] = model
    assert_close_models(models[True], models[False], 1e-6, f"{family} foreach vs per-tensor")
    assert_moved(models[True], make_model())


# ---- constructor ----

@FAMILY
def test_unknown_constructor_arguments_are_named_in_a_type_error(family):
    ours_cls = FAMILIES[family][0]
    params = make_model().parameters()
    with pytest.raises(TypeError, match="momentum") as info:
        ours_cls(params, lr=1e-3, momentum=0.9, nesterov=True)
    assert "nesterov" in str(info.value)


@pytest.mark.parametrize("flat", [False, True])
def test_a_program_without_decay_takes_decoupled_weight_decay_as_adamw_does(flat):
    """The adam program has no ``w * c`` statement: its optimizer still accepts ``weight_decay``
    (default 0), applied decoupled before each step, so that Adam's program with it is AdamW."""
    cls = to_optimizer(reference.load("adam"), "Adam", flat=flat)
    assert cls([torch.nn.Parameter(torch.zeros(1))]).defaults["weight_decay"] == 0.0
    ours_model, lib_model, start = make_model(), make_model(), make_model()
    ours = cls(ours_model.parameters(), lr=1e-2, betas=(0.9, 0.999), weight_decay=0.1)
    lib = torch.optim.AdamW(lib_model.parameters(), lr=1e-2, betas=(0.9, 0.999), weight_decay=0.1, eps=1e-8)
    train(ours_model, ours, range(STEPS))
    train(lib_model, lib, range(STEPS))
    assert_moved(lib_model, start)
    assert_close_models(ours_model, lib_model, PLUMBING_RTOL, "Adam program + weight_decay vs torch AdamW")


def test_lion_constructor_has_lion_pytorchs_shape():
    ours_model, lib_model = make_model(), make_model()
    start = copy.deepcopy(ours_model)
    hyper = dict(betas=(0.95, 0.98), weight_decay=0.5)
    opt = Lion(ours_model.parameters(), 3e-3, **hyper)  # lr positional, as in lion-pytorch
    lib = LibraryLion(lib_model.parameters(), 3e-3, **hyper)
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"]) == (3e-3, (0.95, 0.98), 0.5)
    assert Lion(make_model().parameters()).param_groups[0]["betas"] == (0.9, 0.99)
    train(ours_model, opt, range(STEPS))
    train(lib_model, lib, range(STEPS))
    assert_close_models(ours_model, lib_model, PLUMBING_RTOL, "Lion(lr, betas, weight_decay)")
    assert_moved(lib_model, start)
    with pytest.raises(ValueError, match="betas"):
        Lion(make_model().parameters(), betas=(0.9,))
    with pytest.raises(ValueError, match="learning rate"):
        Lion(make_model().parameters(), lr=-1.0)


def test_optimizer_class_is_a_torch_optimizer_named_as_asked():
    assert issubclass(Lion, torch.optim.Optimizer) and Lion.__name__ == "Lion"
    assert str(reference.load("lion")) in Lion.__doc__
    with pytest.raises(ValueError):
        to_optimizer(reference.load("lion"), name="not an identifier")


# ---- no aliasing of inputs through state outputs ----

ALIASING = {
    "grad": "def train(w, g, m, lr):\n    u = g * lr\n    return u, g\n",
    "weight": "def train(w, g, m, lr):\n    u = g * lr\n    return u, w\n",
}


@pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "per_tensor"])
@pytest.mark.parametrize("source", sorted(ALIASING))
def test_state_output_does_not_alias_an_input(source, foreach):
    cls = to_optimizer(Program.parse(ALIASING[source]), name="Aliasing")
    model = make_model()
    opt = cls(model.parameters(), lr=0.1, foreach=foreach)
    x, y = DATA
    nn.functional.cross_entropy(model(x[0]), y[0]).backward()
    expected = {p: (p.grad if source == "grad" else p).detach().clone() for p in model.parameters()}
    opt.step()
    for p in model.parameters():
        assert torch.equal(opt.state[p]["m"], expected[p])
        p.grad.mul_(3.0)  # in-place changes to the gradient (and the weight update above) ...
    opt.zero_grad(set_to_none=False)
    for p in model.parameters():
        assert torch.equal(opt.state[p]["m"], expected[p])  # ... leave the state alone
        if source == "weight":
            assert not torch.equal(p.detach(), expected[p])  # the weight did move
