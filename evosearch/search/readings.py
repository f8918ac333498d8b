"""What a fitness means, in the numbers a researcher compares: for each task, the validation loss
(and accuracy where the task has one) and its ratio to tuned AdamW's loss, from a candidate's stored
metrics and the run's baselines. Fitness itself is ``(L0 - L) / (L0 - L*)`` (``tasks.base``): 1.0
is tuned AdamW, and near 1.0 its scale hides large differences in loss (a loss 2.7 times AdamW's can
read as fitness 0.97), hence these numbers beside it."""

from __future__ import annotations


def task_readings(metrics: dict, baselines: dict) -> dict:
    """``{task: {"val_loss", "val_accuracy" (classification only), "adamw_val_loss", "loss_ratio"}}``:
    means over the seeds the candidate trained on; ``metrics`` is keyed ``"task/seed"`` (as the
    store keeps it), ``baselines`` is ``{task: {seed: [initial loss, tuned AdamW's loss, its lr]}}``.
    Tasks that failed have no metrics and no reading."""
    per_task: dict[str, list] = {}
    for key, values in (metrics or {}).items():
        task, _, seed = key.rpartition("/")
        base = baselines.get(task, {}).get(int(seed)) if seed.isdigit() else None
        if base is None or "val_loss" not in values:
            continue
        per_task.setdefault(task, []).append((values, base[1]))
    out = {}
    for task, rows in per_task.items():
        reading = {"val_loss": _mean(v["val_loss"] for v, _ in rows),
                   "adamw_val_loss": _mean(b for _, b in rows),
                   "loss_ratio": _mean(v["val_loss"] / b for v, b in rows if b > 0)}
        if all("val_accuracy" in v for v, _ in rows):
            reading["val_accuracy"] = _mean(v["val_accuracy"] for v, _ in rows)
        out[task] = reading
    return out


def readings_text(readings: dict) -> str:
    """One clause per task: ``digits_mlp: val loss 0.0402 (1.11x tuned AdamW's 0.0363), accuracy 0.987``."""
    parts = []
    for task, r in readings.items():
        text = (f"{task}: val loss {r['val_loss']:.4g} ({r['loss_ratio']:.3g}x tuned AdamW's "
                f"{r['adamw_val_loss']:.4g})")
        if "val_accuracy" in r:
            text += f", accuracy {r['val_accuracy']:.3f}"
        parts.append(text)
    return "; ".join(parts)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")
