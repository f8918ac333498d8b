"""``evosearch demo``: every reference program exported, imported back and trained on the
``digits_mlp`` task with the task's own training loop."""

from __future__ import annotations

from evosearch import reference
from evosearch.demo import run


def test_every_reference_program_is_exported_and_trains(tmp_path, evosearch_cache):
    rows = run(str(tmp_path), echo=lambda *a: None)
    assert [r["program"] for r in rows] == reference.names()
    for r in rows:
        assert (tmp_path / f"{r['program']}.py").is_file()
        assert r["val_loss"] < 0.3 and r["val_acc"] > 0.9, r      # untrained: loss ~2.3, accuracy ~0.1
    assert len({r["canonical_hash"] for r in rows}) == len(rows)

