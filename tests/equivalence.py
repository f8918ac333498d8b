"""The harness that compares two optimizers step by step (test_reference.py, test_export.py): the
same model, the same data, the parameters compared after every one of 60 steps; the library
optimizers that implement some of the reference programs (README, "Reference programs"); and
``load_exported``, an exported module's class (test_export.py, test_pruning.py)."""

from __future__ import annotations

import copy
import importlib.util

import torch
from lion_pytorch import Lion
from torch import nn

from evosearch.optim.export import export

STEPS = 60
RTOL = 1e-5

# Largest relative difference seen per case, for the report test_reference.py prints at the end.
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


# Reference programs that a library implements: name -> (lr, the library optimizer over params).
LIBRARY_CASES = {
    "sgd": (0.1, lambda ps: torch.optim.SGD(ps, lr=0.1)),
    "sgd_momentum": (0.05, lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
    "adagrad": (0.05, lambda ps: torch.optim.Adagrad(ps, lr=0.05, eps=1e-8)),
    "rmsprop": (1e-3, lambda ps: torch.optim.RMSprop(ps, lr=1e-3)),
    "adam": (1e-2, lambda ps: torch.optim.Adam(ps, lr=1e-2)),
    "adamw_torch": (1e-2, lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.01)),
    "lion": (1e-3, lambda ps: Lion(ps, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)),
}


def load_exported(prog, tmp_path, class_name: str):
    path = export(prog, tmp_path / f"{class_name.lower()}_mod.py", class_name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, class_name), path
