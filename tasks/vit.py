"""The vision transformer of the image tasks: square images cut into square patches, a pre-norm
encoder, mean-pooled tokens (``digits_vit`` on 8x8 digits, ``cifar10_vit`` and ``imagenet64_vit`` on
RGB images from disk)."""

from __future__ import annotations

import torch
from torch import nn


class PatchTransformer(nn.Module):
    """A small vision transformer on ``channels`` x ``image`` x ``image`` inputs (or the same flattened
    channel-major, as the digits and the file formats store them): ``patch`` x ``patch`` patches,
    ``layers`` pre-norm encoder blocks of ``width`` with ``heads`` heads, mean-pooled tokens."""

    def __init__(self, patch: int, width: int, layers: int, heads: int, classes: int = 10, image: int = 8,
                 channels: int = 1):
        super().__init__()
        if image % patch:
            raise ValueError(f"patch size {patch} does not divide the image size {image}")
        self.patch, self.image, self.channels = patch, image, channels
        tokens = (image // patch) ** 2
        # the parameters are made in the order of the original 8x8 model, so a seed draws the same weights
        self.embed = nn.Linear(channels * patch * patch, width)
        self.pos = nn.Parameter(torch.randn(tokens, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        b, p, c, n = x.shape[0], self.patch, self.channels, self.image // self.patch
        # (b, c, rows of patches, p, columns of patches, p) -> one token per patch, its pixels channel-major
        patches = x.reshape(b, c, n, p, n, p).permute(0, 2, 4, 1, 3, 5).reshape(b, n * n, c * p * p)
        h = self.blocks(self.embed(patches) + self.pos)
        return self.head(self.norm(h.mean(1)))   # mean-pooled tokens, as in small-data ViTs
