"""Per-task readings beside a fitness (``evosearch.search.readings``): means over seeds of the
validation loss, accuracy and ratio to tuned AdamW's loss, from stored metrics and baselines."""

from __future__ import annotations

import pytest

from evosearch.search.readings import readings_text, task_readings

BASELINES = {"digits_mlp": {0: [2.3, 0.04, 0.03], 1: [2.3, 0.05, 0.03]}, "quadratic": {0: [8.0, 0.1, 0.1]}}


def test_means_over_seeds_and_ratio_to_adamw():
    metrics = {"digits_mlp/0": {"val_loss": 0.08, "val_accuracy": 0.98}, "digits_mlp/1": {"val_loss": 0.05,
               "val_accuracy": 0.96}, "quadratic/0": {"val_loss": 0.3}}
    r = task_readings(metrics, BASELINES)
    assert r["digits_mlp"] == pytest.approx({"val_loss": 0.065, "adamw_val_loss": 0.045, "loss_ratio": 1.5,
                                             "val_accuracy": 0.97})
    assert r["quadratic"] == pytest.approx({"val_loss": 0.3, "adamw_val_loss": 0.1, "loss_ratio": 3.0})
    text = readings_text(r)
    assert "digits_mlp: val loss 0.065 (1.5x tuned AdamW's 0.045), accuracy 0.970" in text
    assert "quadratic: val loss 0.3 (3x tuned AdamW's 0.1)" in text


def test_failed_tasks_and_unknown_baselines_have_no_reading():
    assert task_readings({}, BASELINES) == {}
    assert task_readings({"other/0": {"val_loss": 1.0}}, BASELINES) == {}
    assert readings_text({}) == ""
