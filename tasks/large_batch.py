"""A large-batch regime: a 4-class problem on 20 generated features (interleaved Gaussian clusters,
as scikit-learn's make_classification), an MLP trained with batches of 1,024 for few steps."""

from __future__ import annotations

import torch

from . import register
from .base import Task
from .digits import mlp


@register
class LargeBatch(Task):
    """The ``large_batch`` task."""
    name = "large_batch"
    description = "generated 20-feature 4-class data, MLP 20-64-64-4, batch 1024"
    sizes = {"proxy": dict(steps=100, batch_size=1024, width=64),
             "large": dict(steps=600, batch_size=2048, width=128)}

    def make_data(self):
        from sklearn.datasets import make_classification
        x, y = make_classification(n_samples=12288, n_features=20, n_informative=12, n_redundant=4,
                                   n_classes=4, n_clusters_per_class=3, class_sep=1.0, flip_y=0.02,
                                   random_state=0)
        x = torch.tensor(x, dtype=torch.float32)
        y = torch.tensor(y, dtype=torch.long)
        return x[:10240], y[:10240], x[10240:], y[10240:]

    def make_model(self):
        w = self.config["width"]
        return mlp([20, w, w, 4])
