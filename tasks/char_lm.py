"""A character-level transformer language model on text that an installed package ships: the data
set descriptions bundled with scikit-learn (``sklearn/datasets/descr/*.rst``, ~80 KB of English)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from . import register
from .base import Task


def corpus() -> str:
    """The text the task trains on (scikit-learn's bundled data-set descriptions)."""
    import sklearn
    folder = Path(sklearn.__file__).parent / "datasets" / "descr"
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.rst")))


class CharTransformer(nn.Module):
    """A one-layer causal transformer over characters."""

    def __init__(self, vocab: int, context: int, width: int, layers: int, heads: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(torch.randn(context, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocab)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(context), persistent=False)

    def forward(self, idx):
        h = self.embed(idx) + self.pos[: idx.shape[1]]
        h = self.blocks(h, mask=self.mask[: idx.shape[1], : idx.shape[1]], is_causal=True)
        return self.head(h)


@register
class CharLM(Task):
    """Next-character prediction (the task registered as ``char_lm``)."""
    name = "char_lm"
    description = "one-layer character transformer LM on scikit-learn's bundled data set descriptions"
    sizes = {"proxy": dict(steps=150, batch_size=32, context=32, width=32, layers=1, heads=2),
             "large": dict(steps=600, batch_size=64, context=64, width=64, layers=2, heads=4)}

    def make_data(self):
        text = corpus()
        chars = sorted(set(text))
        self.vocab = len(chars)
        ids = torch.tensor([chars.index(c) for c in text], dtype=torch.long)
        c = self.config["context"]
        n = (len(ids) - 1) // c
        x = ids[: n * c].reshape(n, c)
        y = ids[1: n * c + 1].reshape(n, c)
        split = int(n * 0.9)
        # validation: a fixed subset of held-out windows (the text's last 10%)
        return x[:split], y[:split], x[split:][:256], y[split:][:256]

    def make_model(self):
        _ = self.data
        cfg = self.config
        return CharTransformer(self.vocab, cfg["context"], cfg["width"], cfg["layers"], cfg["heads"])

    def loss(self, out, y):
        return torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    def metrics(self, model, x, y):
        out = model(x)
        return {"val_loss": float(self.loss(out, y)),
                "val_accuracy": float((out.argmax(-1) == y).float().mean())}
