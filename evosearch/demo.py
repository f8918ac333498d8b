"""``evosearch demo``: every reference program parsed, checked, hashed, exported to a standalone
module, imported back, and used to train the ``digits_mlp`` proxy task over a grid of learning
rates (the task's own training loop and schedule)."""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path

import torch

import tasks
from evosearch.lang import reference
from evosearch.lang.liveness import live_statements
from evosearch.lang.program import Program
from evosearch.optim.export import export
from tasks import TrainingFailure

LR_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
TASK = "digits_mlp"


def train(task, opt_cls, lr: float) -> tuple[float, float]:
    """(validation loss, accuracy) of the task's model trained with ``opt_cls`` at ``lr``; inf
    and 0 when training fails."""
    try:
        metrics = task.train(lambda params, lr_: opt_cls(params, lr=lr_), seed=0, lr=lr)
    except TrainingFailure:
        return float("inf"), 0.0
    return metrics["val_loss"], metrics["val_accuracy"]


def _import(path: Path, class_name: str):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, class_name)


def run(out_dir: str | None = None, echo=print) -> list[dict]:
    """Print one row per reference program; the exported modules go to ``out_dir`` (default: a
    temporary folder)."""
    torch.set_num_threads(1)
    task = tasks.get(TASK)
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
        best = min(((train(task, cls, lr), lr) for lr in LR_GRID), key=lambda r: r[0][0])
        (loss, acc), lr = best
        row = dict(program=name, statements=len(prog), live=len(live_statements(prog)),
                   canonical_hash=prog.canonical_hash(), fingerprint=prog.fingerprint(), best_lr=lr,
                   val_loss=loss, val_acc=acc, seconds=time.perf_counter() - start)
        rows.append(row)
        echo(f"{name:<14}{row['statements']:>6}{row['live']:>5}  {row['canonical_hash'][:16]:<18}"
             f"{row['fingerprint'][:16]:<18}{lr:>8g}{loss:>9.3f}{acc:>8.3f}{row['seconds']:>6.1f}")
    echo(f"exported modules: {folder}")
    return rows
