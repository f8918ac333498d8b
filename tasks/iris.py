"""A tiny task on scikit-learn's bundled iris (150 flowers, shipped with the package): a 4-16-3 MLP
trained full batch for 51 steps. An evaluation takes about 10 ms, so a search on it measures the
search machinery (driver, executors, pruning, caches) rather than training: the throughput
benchmark's task (``experiments/bench_search.py --task iris_mlp``)."""

from __future__ import annotations

import numpy as np
import torch

from . import register
from .base import Task
from .digits import mlp

_VAL = 30  # the last 30 of a fixed shuffle are the validation set; 120 train


def iris():
    """scikit-learn's iris, standardised (by the training set's statistics), shuffled once and split."""
    from sklearn.datasets import load_iris
    x, y = load_iris(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(y))
    x, y = x[perm], y[perm]
    mean, std = x[:-_VAL].mean(0), x[:-_VAL].std(0)
    x = torch.tensor((x - mean) / std, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    return x[:-_VAL], y[:-_VAL], x[-_VAL:], y[-_VAL:]


@register
class IrisMLP(Task):
    """The ``iris_mlp`` task."""
    name = "iris_mlp"
    description = "MLP 4-16-3 on scikit-learn's iris, full batch (tiny: ~10 ms per evaluation)"
    sizes = {"proxy": dict(steps=51, batch_size=120, width=16),
             "large": dict(steps=300, batch_size=120, width=64)}
    time_limit = 5.0

    def make_data(self):
        return iris()

    def make_model(self):
        return mlp([4, self.config["width"], 3])
