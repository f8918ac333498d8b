"""The tuned-optimizer study (experiments/lion_vs_adamw.py): its Signum against the library Lion it
should equal, and a tiny end-to-end run of the three-rung ladder with --steps and --append."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "lion_vs_adamw.py"


@pytest.fixture(scope="module")
def study():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        return importlib.import_module("lion_vs_adamw")
    finally:
        sys.path.remove(str(SCRIPT.parent))


@pytest.fixture
def run(study, capsys):
    """The script's ``main`` in this process (a subprocess would spend seconds importing torch),
    returning what it printed; it sets torch to one thread, which is undone afterwards."""
    threads = torch.get_num_threads()

    def main(*args):
        capsys.readouterr()
        assert study.main([str(a) for a in args]) == 0
        return capsys.readouterr().out
    yield main
    torch.set_num_threads(threads)


@pytest.mark.parametrize("beta, wd", [(0.9, 0.0), (0.9, 1.0), (0.5, 0.1)])
def test_signum_is_lion_with_equal_betas_step_for_step(study, beta, wd):
    from lion_pytorch import Lion
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(7)]
    mine = [torch.nn.Parameter(w.clone()) for w in start]
    theirs = [torch.nn.Parameter(w.clone()) for w in start]
    signum = study.Signum(mine, lr=1e-2, beta=beta, weight_decay=wd)
    lion = Lion(theirs, lr=1e-2, betas=(beta, beta), weight_decay=wd)
    for _ in range(20):
        grads = [torch.randn_like(w) for w in start]
        for params, opt in ((mine, signum), (theirs, lion)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
        for a, b in zip(mine, theirs):
            assert torch.equal(a, b)
    assert not torch.equal(mine[0], start[0])


def test_signum_steps_by_the_sign_of_its_momentum_after_decay(study):
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = study.Signum([w], lr=0.1, beta=0.9, weight_decay=0.5)
    w.grad = torch.tensor([2.0, -0.5, 0.0])
    opt.step()
    # w (1 - lr wd) - lr sign(0.1 g); a zero momentum does not move the weight beyond the decay
    assert torch.allclose(w.detach(), torch.tensor([0.95 - 0.1, -1.9 + 0.1, 2.85]))
    assert torch.allclose(opt.state[w]["momentum"], torch.tensor([0.2, -0.05, 0.0]))


def test_ladder_study_runs_and_append_adds_an_optimizer(run, tmp_path, evosearch_cache):
    out = tmp_path / "study"
    common = ("--tasks", "quadratic", "--batch-sizes", "16", "--steps", "4", "--seeds", 1, "--confirm-seeds", 2,
              "--force", "--out", out)
    run(*common, "--optimizers", "adamw,lion")
    first = json.loads(out.with_suffix(".json").read_text())["results"]
    assert len(first) == 1 and "signum" not in first[0] and "verdict" in first[0]
    assert "AdamW → Signum" not in out.with_suffix(".md").read_text()

    # the setting lacks Signum, so --append runs it again with all three and replaces it
    run(*common, "--optimizers", "adamw,signum,lion", "--append")
    data = json.loads(out.with_suffix(".json").read_text())
    [r] = data["results"]
    assert set(r["comparisons"]) == {"adamw-signum", "adamw-lion", "signum-lion"}
    for pair, v in r["comparisons"].items():
        a, b = pair.split("-")
        assert v["n"] == 2 and 0 <= v["wins"] <= 2
        assert v["difference"] == pytest.approx(r[a]["mean"] - r[b]["mean"])
    assert r["verdict"]["difference"] == r["comparisons"]["adamw-lion"]["difference"]
    assert r["adamw"]["confirm_losses"] == first[0]["adamw"]["confirm_losses"]   # runs are seeded
    assert {"lrs", "wds"} <= set(data["meta"]["grids"]["signum"]) and len(data["meta"]["commands"]) == 2
    rows = out.with_suffix(".csv").read_text().splitlines()[1:]
    assert {row.split(",")[3] for row in rows} == {"adamw", "signum", "lion"}
    assert sum(",confirm," in row for row in rows) == 3 * 2      # the old runs were replaced
    text = out.with_suffix(".md").read_text()
    assert "### AdamW → Signum → Lion" in text and "| quadratic | 16 | 4 |" in text

    # with every requested optimizer present there is nothing left to run
    assert "total 0.0 min" in run(*common, "--optimizers", "signum,lion", "--append")


def test_small_beta2_adamw_is_compared_with_each_rung_beyond_the_ladder(run, study, tmp_path, evosearch_cache):
    """The sign-like AdamW (the rediscovery's constants-only betas) is torch's AdamW at those betas,
    tuned on Lion's grid, and the report sets it against each rung of the ladder."""
    opt = study.OPTIMIZERS["adamw_small_beta2"][0](0.5)([torch.nn.Parameter(torch.zeros(2))], 1e-3)
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["betas"] == study.SMALL_BETAS and opt.param_groups[0]["weight_decay"] == 0.5
    assert study.OPTIMIZERS["adamw_small_beta2"][1:] == study.OPTIMIZERS["lion"][1:]
    assert list(study.report.LABELS) == list(study.OPTIMIZERS)       # every optimizer has its label, in order

    out = tmp_path / "study"
    run("--tasks", "quadratic", "--batch-sizes", "16", "--steps", "4", "--seeds", 1, "--confirm-seeds", 2,
        "--force", "--out", out, "--optimizers", "adamw,signum,lion,adamw_small_beta2")
    [r] = json.loads(out.with_suffix(".json").read_text())["results"]
    text = out.with_suffix(".md").read_text()
    assert "### AdamW → Signum → Lion" in text and "### Beyond the ladder" in text
    [row] = [line for line in text.splitlines() if line.startswith("| quadratic | 16 | 4 | AdamW β (0.77, 0.52)")]
    for name, label in (("adamw", "AdamW"), ("signum", "Signum"), ("lion", "Lion")):
        v = r["comparisons"][f"{name}-adamw_small_beta2"]
        assert v["difference"] == pytest.approx(r[name]["mean"] - r["adamw_small_beta2"]["mean"])
        assert f"vs {label} {v['difference']:+.4f}" in row


def test_shifted_batches_move_each_image_within_the_shift_and_keep_its_label(study):
    """``--augment-shift``: each digit is the same image moved by at most the shift, zeros shifted
    in, with its label; the same seed gives the same batches, and the plain sampler's indices."""
    setting = study.Setting("digits_vit", 16, 4)
    plain, shifted = study.configure(setting), study.configure(setting, 1)
    a, b = plain.sampler(3), shifted.sampler(3)
    x0, y0 = a.next()
    x1, y1 = b.next()
    assert torch.equal(y0, y1) and x1.shape == x0.shape
    moved = 0
    for img0, img1 in zip(x0.reshape(-1, 8, 8), x1.reshape(-1, 8, 8)):
        found = []
        padded = torch.nn.functional.pad(img0, (1, 1, 1, 1))
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if torch.equal(padded[1 - dy:9 - dy, 1 - dx:9 - dx], img1):
                    found.append((dy, dx))
        assert found, "every image is its own shift by at most one pixel"
        moved += (0, 0) not in found
    assert moved > 0                                        # and most are moved
    again = study.configure(setting, 1).sampler(3).next()
    assert torch.equal(again[0], x1) and torch.equal(again[1], y1)


def test_a_shifted_study_is_kept_apart_from_a_plain_one(run, tmp_path, evosearch_cache):
    out = tmp_path / "study"
    common = ("--tasks", "digits_vit", "--batch-sizes", "16", "--steps", "2", "--seeds", 1, "--confirm-seeds", 2,
              "--force", "--out", out, "--optimizers", "adamw,lion")
    run(*common, "--augment-shift", "1")
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["meta"]["augment_shift"] == 1
    assert "shifted at random by up to 1 pixel" in out.with_suffix(".md").read_text()
    with pytest.raises(SystemExit):
        run(*common, "--append")
