"""Tasks on scikit-learn's bundled 8x8 digits (1,797 images, shipped with the package): an MLP, a
small CNN, and the MLP with 30% of the training labels replaced by random ones (clean validation)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import register
from .base import Task

_VAL = 397  # the last 397 of a fixed shuffle are the validation set; 1,400 train


def digits(noise: float = 0.0, image: bool = False):
    """scikit-learn's digits, shuffled once and split; ``noise`` of the training labels random;
    ``image``: 1x8x8."""
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(y))
    x = torch.tensor(x[perm] / 16.0, dtype=torch.float32)
    y = torch.tensor(y[perm], dtype=torch.long)
    if image:
        x = x.reshape(-1, 1, 8, 8)
    x_train, y_train, x_val, y_val = x[:-_VAL], y[:-_VAL].clone(), x[-_VAL:], y[-_VAL:]
    if noise:
        flip = torch.tensor(rng.random(len(y_train)) < noise)
        y_train[flip] = torch.tensor(rng.integers(0, 10, int(flip.sum())), dtype=torch.long)
    return x_train, y_train, x_val, y_val


def mlp(sizes: list[int]) -> nn.Module:
    """An MLP with ReLU between the given layer widths."""
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


@register
class DigitsMLP(Task):
    """The ``digits_mlp`` task."""
    name = "digits_mlp"
    description = "MLP 64-128-10 on scikit-learn's digits"
    sizes = {"proxy": dict(steps=300, batch_size=128, width=128),
             "large": dict(steps=1500, batch_size=128, width=384, depth=2)}

    def make_data(self):
        return digits()

    def make_model(self):
        w = self.config["width"]
        return mlp([64] + [w] * self.config.get("depth", 1) + [10])


@register
class NoisyDigits(DigitsMLP):
    """The ``noisy_digits`` task."""
    name = "noisy_digits"
    description = "the digits MLP with 30% of training labels random (clean validation labels)"

    def make_data(self):
        return digits(noise=0.3)


@register
class DigitsCNN(Task):
    """The ``digits_cnn`` task."""
    name = "digits_cnn"
    description = "a two-layer CNN on the 8x8 digits images"
    sizes = {"proxy": dict(steps=200, batch_size=64, channels=8),
             "large": dict(steps=1000, batch_size=128, channels=16)}

    def make_data(self):
        return digits(image=True)

    def make_model(self):
        c = self.config["channels"]
        return nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * c * 16, 10))
