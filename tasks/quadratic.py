"""An ill-conditioned quadratic with noisy gradients: 0.5 (x - x*)' A (x - x*), A rotated with
eigenvalues log-spaced over three decades, plus seeded Gaussian gradient noise."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import register
from .base import Task


class _Point(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.x = nn.Parameter(torch.randn(dim))

    def forward(self, noise):
        return self.x, noise


@register
class Quadratic(Task):
    """The ``quadratic`` task: the model is the point x, the data the gradient noise."""
    name = "quadratic"
    description = "rotated ill-conditioned quadratic (condition number 1e3), noisy gradients"
    classification = False
    sizes = {"proxy": dict(steps=300, batch_size=1, dim=64, noise=0.1),
             "large": dict(steps=3000, batch_size=1, dim=256, noise=0.1)}

    def make_data(self):
        d = self.config["dim"]
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        eig = np.logspace(-3, 0, d)
        self.A = torch.tensor((q * eig) @ q.T, dtype=torch.float32)
        self.x_star = torch.tensor(rng.standard_normal(d), dtype=torch.float32)
        # "data" are the per-step gradient-noise vectors; validation sees no noise
        noise = torch.tensor(rng.standard_normal((4096, d)) * self.config["noise"], dtype=torch.float32)
        zeros = torch.zeros(1, d)
        return noise, torch.zeros(4096), zeros, torch.zeros(1)

    def make_model(self):
        return _Point(self.config["dim"])

    def loss(self, out, y):
        x, noise = out
        if self.A.device != x.device:      # once, on a task moved to another device
            self.A, self.x_star = self.A.to(x.device), self.x_star.to(x.device)
        diff = x - self.x_star
        return 0.5 * diff @ (self.A @ diff) + (noise.mean(0) * x).sum()

    def metrics(self, model, x, y):
        _ = self.data
        return {"val_loss": float(self.loss(model(x.new_zeros(1, self.config["dim"])), y))}
