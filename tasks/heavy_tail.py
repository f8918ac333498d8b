"""Linear regression whose training targets carry heavy-tailed (Student-t, 1.5 degrees of freedom:
infinite variance) noise, so minibatch gradients are heavy-tailed; validation targets are clean."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import register
from .base import Task


@register
class HeavyTailRegression(Task):
    """The ``heavy_tail`` task."""
    name = "heavy_tail"
    description = "regression, Student-t(1.5) target noise: heavy-tailed gradients"
    classification = False
    sizes = {"proxy": dict(steps=300, batch_size=32, dim=32, hidden=32),
             "large": dict(steps=2000, batch_size=64, dim=64, hidden=128)}

    def make_data(self):
        d, n = self.config["dim"], 4096
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n + 1024, d))
        w = rng.standard_normal(d) / np.sqrt(d)
        y = np.tanh(x @ w) * 2.0 + 0.5 * (x[:, 0] * x[:, 1])
        noisy = y[:n] + rng.standard_t(1.5, n) * 0.5
        t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        return t(x[:n]), t(noisy), t(x[n:]), t(y[n:])

    def make_model(self):
        h = self.config["hidden"]
        return nn.Sequential(nn.Linear(self.config["dim"], h), nn.Tanh(), nn.Linear(h, 1), nn.Flatten(0))

    def loss(self, out, y):
        return torch.nn.functional.mse_loss(out, y)
