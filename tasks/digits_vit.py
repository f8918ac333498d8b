"""A small vision transformer on the 8x8 digits (2x2 patches, 16 tokens): the paper's proxy family
(a small ViT, few examples, many epochs, so regularisation-bound), scaled to a second on one core."""

from __future__ import annotations

import torch
from torch import nn

from . import register
from .base import Task
from .digits import digits


class PatchTransformer(nn.Module):
    """A small vision transformer on 8x8 images: patches, pre-norm encoder, mean-pooled tokens."""

    def __init__(self, patch: int, width: int, layers: int, heads: int, classes: int = 10):
        super().__init__()
        self.patch = patch
        tokens = (8 // patch) ** 2
        self.embed = nn.Linear(patch * patch, width)
        self.pos = nn.Parameter(torch.randn(tokens, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        b, p = x.shape[0], self.patch
        patches = x.reshape(b, 8 // p, p, 8 // p, p).permute(0, 1, 3, 2, 4).reshape(b, -1, p * p)
        h = self.blocks(self.embed(patches) + self.pos)
        return self.head(self.norm(h.mean(1)))   # mean-pooled tokens, as in small-data ViTs


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
