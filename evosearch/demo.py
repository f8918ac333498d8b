"""The README's main job (until the search lands): every reference program parsed, checked,
hashed, exported to a standalone module, imported back, and used to train a small model."""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from . import reference
from .analysis import live_statements
from .export import export
from .program import Program

LR_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


def _digits(seed: int = 0):
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def train_digits(opt_cls, lr: float, steps: int = 200, batch: int = 64, seed: int = 0) -> tuple[float, float]:
    """Train a 64-64-10 MLP on scikit-learn's digits; returns (validation loss, accuracy)."""
    (xt, yt), (xv, yv) = _digits(seed)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = opt_cls(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(yt), (batch,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
        opt.step()
    with torch.no_grad():
        out = model(xv)
        loss = torch.nn.functional.cross_entropy(out, yv).item()
        acc = (out.argmax(1) == yv).float().mean().item()
    return (loss if np.isfinite(loss) else float("inf")), acc


def _import(path: Path, class_name: str):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, class_name)


def run(out_dir: str | None = None, echo=print) -> list[dict]:
    torch.set_num_threads(1)
    folder = Path(out_dir or tempfile.mkdtemp(prefix="evosearch-export-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    echo(f"{'program':<14}{'stmts':>6}{'live':>5}  {'canonical hash':<18}{'fingerprint':<18}"
         f"{'best lr':>8}{'val loss':>9}{'val acc':>8}{'secs':>6}")
    for name in reference.names():
        start = time.perf_counter()
        prog = Program.load(reference.path(name))      # parse + check from the shipped file
        class_name = "".join(part.capitalize() for part in name.split("_"))
        cls = _import(export(prog, folder / f"{name}.py", class_name), class_name)
        best = min(((train_digits(cls, lr), lr) for lr in LR_GRID), key=lambda r: r[0][0])
        (loss, acc), lr = best
        row = dict(program=name, statements=len(prog), live=len(live_statements(prog)),
                   canonical_hash=prog.canonical_hash(), fingerprint=prog.fingerprint(), best_lr=lr,
                   val_loss=loss, val_acc=acc, seconds=time.perf_counter() - start)
        rows.append(row)
        echo(f"{name:<14}{row['statements']:>6}{row['live']:>5}  {row['canonical_hash'][:16]:<18}"
             f"{row['fingerprint'][:16]:<18}{lr:>8g}{loss:>9.3f}{acc:>8.3f}{row['seconds']:>6.1f}")
    echo(f"exported modules: {folder}")
    return rows
