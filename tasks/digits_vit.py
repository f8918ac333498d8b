"""A small vision transformer on the 8x8 digits (2x2 patches, 16 tokens): the paper's proxy family
(a small ViT, few examples, many epochs, so regularisation-bound), scaled to a second on one core."""

from __future__ import annotations

from . import register
from .base import Task
from .digits import digits
from .vit import PatchTransformer


@register
class DigitsViT(Task):
    """The ``digits_vit`` task."""
    name = "digits_vit"
    description = "a one-layer vision transformer (2x2 patches) on scikit-learn's digits"
    # "ladder": the proxy model trained long enough that AdamW, Signum and Lion rank in that order
    # beyond seed noise on 8 seeds; at 600 steps it takes 16 (experiments/results/lion_vs_adamw.md)
    sizes = {"proxy": dict(steps=150, batch_size=64, patch=2, width=32, layers=1, heads=2),
             "large": dict(steps=1000, batch_size=128, patch=2, width=48, layers=2, heads=4),
             "ladder": dict(steps=800, batch_size=128, patch=2, width=32, layers=1, heads=2)}

    def make_data(self):
        return digits()

    def make_model(self):
        cfg = self.config
        return PatchTransformer(cfg["patch"], cfg["width"], cfg["layers"], cfg["heads"])
