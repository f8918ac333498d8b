"""Smoke tests for the experiment scripts (tiny budgets): each must run end to end and write its
report, so that the long runs behind experiments/results/ can be rerun by anyone."""

from __future__ import annotations

import importlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evosearch.search.config import load_config

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"


@pytest.fixture(autouse=True)
def _cache(evosearch_cache):
    yield


def script(name: str):
    """An experiment script imported as a module (its sibling imports resolve in experiments/)."""
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXPERIMENTS))


def run(*args, timeout=600):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_shipped_configs_load():
    for path in EXPERIMENTS.glob("*.toml"):
        cfg = load_config(path)
        assert cfg.tasks and cfg.warm_start == "adamw"


def test_lion_rediscovery_smoke(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text('[search]\nwarm_start = "adamw"\npopulation_size = 4\ntournament_size = 2\n'
                      '[tasks]\nnames = ["quadratic"]\n[funnel]\nenabled = true\n')
    report = tmp_path / "report.md"
    out = run(EXPERIMENTS / "lion_rediscovery.py", config, "--seeds", 0, "--max-evals", 4,
              "--time-per-seed", 120, "--in-process", "--out", tmp_path / "runs", "--report", report,
              "--held-out", "heavy_tail")
    assert "lion_family_found: " in out
    text = report.read_text()
    assert "## Seed 0" in text and "lion_family_found: " in text and "random search" in text
    assert (tmp_path / "lion_rediscovery.png").exists()
    results = json.loads(report.with_suffix(".json").read_text())
    assert results["seeds"]["0"]["evaluations"] == 4
    assert results["seeds"]["0"]["best_large_fitness"] is not None       # the funnel score
    assert results["seeds"]["0"]["best_meta"]["large_fitness"] is not None
    assert "by meta-validation" in text
    assert set(results["seeds"]["0"]["held_out"]) == {"heavy_tail"}
    for label in ("random search", "AdamW constants only"):     # baselines are compared on both scores
        assert results["baselines"][label]["best_meta"]["large_fitness"] is not None
        assert f"| {label} | {results['baselines'][label]['evaluations']} |" in text
    assert "| seed 0 | 4 |" in text                                # the summary table
    # beside every fitness, the readings: trained again by the code that scored the search, so on the
    # same machine they give the recorded fitness exactly
    seed = results["seeds"]["0"]
    for size, recorded in (("proxy", seed["best_fitness"]), ("large", seed["best_large_fitness"])):
        quadratic = seed["best_readings"][size]["tasks"]["quadratic"]
        assert seed["best_readings"][size]["fitness"] == pytest.approx(recorded, abs=1e-12)
        assert quadratic["loss_ratio"] == pytest.approx(quadratic["val_loss"] / quadratic["adamw_val_loss"])
        assert "val_accuracy" not in quadratic                          # a regression task
    meta = seed["best_meta"]       # recorded, and so trained again, in its simplified form
    assert meta["readings"]["large"]["fitness"] == pytest.approx(meta["large_fitness"], abs=1e-3)
    held = seed["held_out"]["heavy_tail"]
    assert held["found_reading"]["fitness"] == pytest.approx(held["found"], abs=1e-12)
    assert held["found_reading"]["loss_ratio"] > 0 and held["adamw_val_loss"] > 0
    for label in ("random search", "AdamW constants only"):     # their proxy best is recorded, and read
        assert results["baselines"][label]["best_readings"]["proxy"]["tasks"]["quadratic"]["val_loss"] > 0
    summary = text.split("Each run's best programs and their readings:")[1]
    row = next(line for line in summary.splitlines() if line.startswith("| seed 0 |")).split("|")
    assert all(float(row[k]) > 0 for k in (4, 6, 8)), row         # each ÷ AdamW column has its ratio
    assert "re-measured after the searches" in text and "| best by proxy fitness | large |" in text
    check_ladder(results, text)
    # --report-only rewrites the report from the JSON, keeping a hand-written Findings section and the
    # History of earlier runs, and with --odds sets each run's trained candidates against an odds sample
    odds = tmp_path / "odds.json"
    odds.write_text(json.dumps({"parent": "adamw", "n": 1000, "seed": 0, "generated": 200000,
                                "counts": {"signum-family": 2, "lion-family": 0},
                                "rates": {"signum-family": 1e-5, "lion-family": 0.0}, "trained_per_generated": 0.1}))
    history = "## History\n\n### earlier runs\n\n| run | evaluations |\n| --- | ---: |\n| seed 0 | 9 |\n\n"
    report.write_text(text.replace("\n## Rungs", "\n## Findings\n\nkept by hand\n\n## Rungs")
                      .replace("\nlion_family_found: ", "\n" + history + "lion_family_found: "))
    again = run(EXPERIMENTS / "lion_rediscovery.py", config, "--out", tmp_path / "runs", "--report", report,
                "--report-only", "--odds", odds)
    assert again.strip().splitlines()[-1] == out.strip().splitlines()[-1]
    new = report.read_text()
    assert new.splitlines()[-1] == out.strip().splitlines()[-1] and history in new
    stood = [line for line in new.splitlines() if line.startswith("- seed 0: ")]
    assert "signum-family child of adamw: 1 per 1e+05 generated, ~1e+04 trained" in stood[0]
    assert "lion-family: none of 200000 children of adamw" in stood[0]
    baselines = [line for line in new.splitlines()
                 if line.startswith(("- random search: ", "- AdamW constants only: "))]
    assert len(baselines) == 2 and not any("odds.py" in line for line in baselines)    # not their mutation's odds

    def without_runs_lines(md):         # (the "what stood in the way" lines, which now name the odds)
        return "\n".join(line for line in md.splitlines() if not line.startswith("- "))
    assert "kept by hand" in new
    kept = new.replace("## Findings\n\nkept by hand\n\n", "").replace(history, "")
    assert without_runs_lines(kept) == without_runs_lines(text)
    # --report-only --readings measures them again from the programs the JSON records, without the
    # run folders (and leaves the plot made from them)
    shutil.rmtree(tmp_path / "runs")
    plotted = (tmp_path / "lion_rediscovery.png").read_bytes()
    del seed["best_readings"], seed["best_meta"]["readings"], held["found_reading"], results["readings"]
    report.with_suffix(".json").write_text(json.dumps(results))
    run(EXPERIMENTS / "lion_rediscovery.py", config, "--out", tmp_path / "runs", "--report", report,
        "--report-only", "--readings")
    measured = json.loads(report.with_suffix(".json").read_text())
    assert measured["seeds"]["0"]["best_readings"]["large"]["fitness"] == pytest.approx(seed["best_large_fitness"],
                                                                                      abs=1e-12)
    assert measured["seeds"]["0"]["held_out"]["heavy_tail"]["found_reading"]["loss_ratio"] > 0
    assert measured["readings"]["command"].endswith("--report-only --readings")
    assert (tmp_path / "lion_rediscovery.png").read_bytes() == plotted
    # without the run folders the ladder the JSON records is kept, and the rungs are not trained again
    for key in ("ladder", "counts", "front"):
        assert measured["seeds"]["0"][key] == seed[key]
    assert measured["rungs"] == results["rungs"]


def check_ladder(results: dict, text: str) -> None:
    """The rediscovery smoke run's ladder: each run's climb, its counts and population consistent with
    each other, and the rungs table with its six programs, each one the search would train."""
    rediscovery_ladder = script("lion_rediscovery_ladder")
    programs = results["rungs"]["programs"]
    assert [p["name"] for p in programs] == [name for name, _ in rediscovery_ladder.RUNG_PROGRAMS]
    assert [p["rung"].split(" ")[0] for p in programs] == ["adamw-like"] + ["signum-family"] * 3 + ["lion-family"] * 2
    assert all(p["admission"] is None and p["fitness"] is not None for p in programs)
    assert programs[0]["fitness"] == pytest.approx(results["seeds"]["0"]["ladder"]["warm_start_fitness"], abs=1e-12)
    runs = [results["seeds"]["0"], *results["baselines"].values()]
    for r in runs:
        lad, counts = r["ladder"], r["counts"]
        assert counts["trained"] == r["evaluations"] == lad["trained"] == sum(lad["rung_counts"].values())
        assert counts["early_stopped"] == 0 and counts["trained_per_hour"] > 0
        for table in ("first", "first_beating_warm_start", "first_in_hall_of_fame"):
            for e in lad[table].values():
                assert e is None or 1 <= e["evaluations"] <= counts["trained"]
        assert lad["population"]["size"] == 4 == sum(lad["population"]["counts"].values())     # population_size
        assert lad["best_over_time"][-1]["evaluations"] == counts["trained"]
        assert lad["best_over_time"][-1]["fitness"] == lad["hall_of_fame"][0]["fitness"]
        assert set(r["front"]) == {"0", "1", "2", "3+"}
        assert lad["lion_found"] == any(e["rung"].startswith("lion-family") for e in lad["hall_of_fame"])
    assert "## Rungs under the search's own fitness" in text and "### random search" in text
    rows = text.split("## Rungs under the search's own fitness")[1].split("\n\n<details>")[0]
    assert sum(line.startswith("| the warm start") or line.startswith(("| the same", "| Signum", "| Lion"))
               for line in rows.splitlines()) == 6
    k = sum(r["ladder"]["lion_found"] for r in results["seeds"].values())
    assert text.rstrip().splitlines()[-1] == f"lion_family_found: {k}/1"
    assert "## What stood in the way" in text                   # fewer than 5 seeds
    assert "| seed 0 | 4 | " in text.split("Each run's best programs")[0]      # the ladder's summary line


def test_lion_rediscovery_ladder_reads_when_each_rung_was_first_trained_and_beat_the_warm_start(monkeypatch):
    rediscovery_ladder = script("lion_rediscovery_ladder")
    adamw, sign, _, _, lion, lion_wd1 = (text for _, text in rediscovery_ladder.RUNG_PROGRAMS)
    # (id, fitness, program, recorded at): the second session starts an hour after the first ended
    rows = [(0, 0.90, adamw, 0.0), (1, 0.80, sign, 60.0), (2, 0.95, sign.replace("0.999", "0.99"), 420.0),
            (3, 0.85, lion, 4000.0), (4, 0.97, lion_wd1, 4300.0)]
    trained = [{"id": i, "fitness": f, "failure": None, "program": p, "canonical_hash": f"h{i}", "recorded_at": t}
               for i, f, p, t in rows]
    clock = rediscovery_ladder.search_clock([t for *_, t in rows])
    assert (clock[4000.0], clock[4300.0]) == (420.0, 720.0)          # the hour between sessions left out
    monkeypatch.setattr(rediscovery_ladder, "HALL_OF_FAME", 2)
    population = [(c["canonical_hash"], c["program"], c["fitness"]) for c in trained[1:]]
    lad = rediscovery_ladder.read_ladder(trained, clock, 0.90, rediscovery_ladder.RungOf(), population, trained[3:4])

    def when(table, label):
        e = lad[table][label]
        return e["id"], e["evaluations"], e["minutes"]
    assert when("first", "signum-family") == (1, 2, 1.0)
    assert when("first_beating_warm_start", "signum-family") == (2, 3, 7.0)
    assert when("first", "lion-family") == (3, 4, 7.0)
    assert when("first_beating_warm_start", "lion-family") == (4, 5, 12.0)
    assert when("first_in_hall_of_fame", "lion-family") == (4, 5, 12.0)     # 0.85 is not in a top two
    assert lad["rung_counts"] == {"adamw-like": 1, "signum-family": 2, "lion-family": 2, "other": 0}
    assert lad["population"]["counts"] == {"adamw-like": 0, "signum-family": 2, "lion-family": 2, "other": 0}
    assert lad["population"]["best"]["lion-family"] == 0.97
    assert (lad["highest_rung"], lad["highest_rung_beating_warm_start"]) == ("lion-family", "lion-family")
    fitted = lad["fitted"]["lion-family"]
    assert fitted["id"] == 4 and fitted["weight_decay"] == pytest.approx(1.0)
    assert (fitted["beta1"], fitted["beta2"]) == (pytest.approx(0.9), pytest.approx(0.99))
    # the best so far every 5 minutes of search and at the end: the warm start, then Signum, then Lion
    assert [(row["minute"], row["evaluations"], row["id"], row["rung"].split(" ")[0])
            for row in lad["best_over_time"]] == [(5.0, 2, 0, "adamw-like"), (10.0, 4, 2, "signum-family"),
                                                  (12.0, 5, 4, "lion-family")]
    assert lad["lion_produced"] and lad["lion_found"]                     # candidate 3 in the hall given
    assert not rediscovery_ladder.read_ladder(trained, clock, 0.90, rediscovery_ladder.RungOf(), population,
                                              trained[:1])["lion_found"]


def test_lion_vs_adamw_dry_run(tmp_path):
    out = run(EXPERIMENTS / "lion_vs_adamw.py", "--tasks", "quadratic", "--batch-sizes", "16",
              "--steps-multipliers", "1", "--dry-run", "--out", tmp_path / "study")
    assert "estimate" in out.lower() or "minutes" in out.lower()


def test_lion_claims_batch_size_smoke(tmp_path):
    out = tmp_path / "bs"
    run(EXPERIMENTS / "lion_claims.py", "batch-size", "--task", "quadratic", "--batch-sizes", "16,64",
        "--steps", 10, "--seeds", 1, "--confirm-seeds", 2, "--out", out, "--jobs", 2,
        "--program", EXPERIMENTS / "results" / "quickstart_best.py")
    result = json.loads(out.with_suffix(".json").read_text())
    assert [r["batch_size"] for r in result["rows"]] == [16, 64]
    for row in result["rows"]:
        for name in ("adamw", "lion", "found"):
            assert len(row[name]["losses"]) == 2 and row[name]["lr"] > 0
    text = out.with_suffix(".md").read_text()
    assert "| 16 |" in text and "| 64 |" in text and out.with_suffix(".png").exists()
    # the Findings section survives a rewrite
    out.with_suffix(".md").write_text(text.replace("## Results", "## Findings\n\nkept\n\n## Results"))
    # --append adds batch sizes (and replaces those it runs again), keeping the Findings section
    run(EXPERIMENTS / "lion_claims.py", "batch-size", "--task", "quadratic", "--batch-sizes", "32,64",
        "--steps", 10, "--seeds", 1, "--confirm-seeds", 2, "--out", out, "--append",
        "--program", EXPERIMENTS / "results" / "quickstart_best.py")
    merged = json.loads(out.with_suffix(".json").read_text())
    assert [r["batch_size"] for r in merged["rows"]] == [16, 32, 64] and len(merged["commands"]) == 2
    assert merged["rows"][0] == result["rows"][0]
    text = out.with_suffix(".md").read_text()
    assert "kept" in text and "| 32 |" in text and text.count("lion_claims.py batch-size") == 2


def test_lion_claims_batch_table_tests_the_found_program_against_each_optimizer():
    claims = script("lion_claims")
    assert claims.paired_t([2.0, 3.0, 4.0], [1.0, 1.5, 2.5]) == pytest.approx(8.0)
    assert math.isnan(claims.paired_t([1.0], [0.5]))                  # one pair
    assert math.isnan(claims.paired_t([1.0, 2.0], [0.0, 1.0]))        # no spread
    assert math.isnan(claims.paired_t([1.0, 2.0], [math.inf, 1.0]))   # a failed run

    def entry(losses):
        return {"mean": sum(losses) / len(losses), "std": 0.1, "lr": 0.01, "weight_decay": 0.0,
                "edge": False, "losses": losses}
    row = {"batch_size": 16, "epochs": 1.0, "adamw": entry([2.0, 3.0, 4.0]), "lion": entry([1.0, 1.5, 2.5]),
           "found": entry([1.0, 1.5, 2.5]), "lion_minus_adamw": -1.333, "paired_t": 8.0}
    head, rule, line = claims.batch_size_table({"names": ["adamw", "lion", "found"], "rows": [row]}).splitlines()
    assert head.endswith("| paired t (AdamW − Lion) | paired t (AdamW − found) | paired t (Lion − found) |")
    assert rule.count("|") == head.count("|") and line.endswith("| +8.0 | +8.0 | n/a |")
    # without a discovered program, the table is as before
    del row["found"]
    head, _, line = claims.batch_size_table({"names": ["adamw", "lion"], "rows": [row]}).splitlines()
    assert head.endswith("| paired t (AdamW − Lion) |") and line.endswith("| -1.3330 | +8.0 |")


def test_lion_claims_heatmap_smoke(tmp_path):
    out = tmp_path / "hm"
    run(EXPERIMENTS / "lion_claims.py", "heatmap", "--task", "quadratic", "--steps", 10, "--seeds", 1,
        "--out", out)
    result = json.loads(out.with_suffix(".json").read_text())
    for name in ("adamw", "lion"):
        o = result["optimizers"][name]
        assert len(o["loss"]) == len(o["wds"]) and len(o["loss"][0]) == len(o["lrs"])
        assert 0 < o["robustness"]["within_10pct"] <= 1
    assert out.with_suffix(".png").exists() and "within 10%" in out.with_suffix(".md").read_text()


def test_lion_claims_robustness_measures():
    robustness = script("lion_claims").robustness
    lrs, wds = (1e-3, 1e-2, 1e-1, 1.0), (0.0,)
    # the best at 1e-2, 1e-1 within 10%, 1e-3 far off, 1.0 failed
    grid = {(1e-3, 0.0): 5.0, (1e-2, 0.0): 1.0, (1e-1, 0.0): 1.05, (1.0, 0.0): math.inf}
    r = robustness(grid, lrs, wds)
    assert (r["best_lr"], r["failed"]) == (1e-2, 1) and r["within_10pct"] == 0.5
    assert r["lr_decades_within_10pct"] == pytest.approx(1.0)
    # an unbroken run only: a good cell beyond a bad one does not widen the span
    grid[1.0, 0.0] = 1.01
    grid[1e-1, 0.0] = 3.0
    assert robustness(grid, lrs, wds)["lr_decades_within_10pct"] == 0.0
    failed = robustness({k: math.inf for k in grid}, lrs, wds)
    assert failed["best_lr"] is None and math.isnan(failed["lr_decades_within_10pct"])


def test_lion_rediscovery_report_marks_a_tuned_lr_at_its_grid_edge():
    report = script("lion_rediscovery_report").report
    seed = {"evaluations": 1, "cache_hits": 0, "pruned": 0, "seconds": 1.0, "best_fitness": 1.0,
            "best_large_fitness": 1.0, "family": None, "constants": {}, "first_lion": None,
            "best": "", "simplified": "", "best_meta": None,
            "held_out": {"a": {"found": 0.9, "found_lr": 0.001, "lion": 0.8, "lion_lr": 1e-3},
                         "b": {"found": 0.9, "found_lr": 0.1, "lion": 0.8, "lion_lr": 1e-1},
                         "c": {"found": 0.9, "found_lr": None, "lion": 0.8, "lion_lr": 1e-3}}}
    results = {"suite": ["s"], "held_out": ["a", "b", "c"], "seeds": {"0": seed}, "baselines": {},
               "time_per_seed": 1.0, "lr_grids": {"found": [0.001, 0.1, 30.0], "lion": [1e-5, 1e-3, 1e-1]}}
    rows = [line for line in report(results, [], "cmd").splitlines() if line.startswith(("| a", "| b", "| c"))]
    assert rows == ["| a | 0.900 (x0.001 (grid edge)) | 0.800 (lr 0.001) | 1.000 |",
                    "| b | 0.900 (x0.1) | 0.800 (lr 0.1 (grid edge)) | 1.000 |",
                    "| c | 0.900 (the same at every lr) | 0.800 (lr 0.001) | 1.000 |"]
    del results["lr_grids"]                     # a report made before the grids were recorded
    assert "grid edge" not in report(results, [], "cmd")


def reading(fitness: float, ratios: dict) -> dict:
    """A suite reading as ``add_readings`` stores it: tuned AdamW's loss 0.5 on every task."""
    return {"fitness": fitness, "failure": None,
            "tasks": {t: {"val_loss": 0.5 * r, "adamw_val_loss": 0.5, "loss_ratio": r, "val_accuracy": 0.9}
                      for t, r in ratios.items()}}


def test_lion_rediscovery_summary_has_a_line_per_run_with_each_task_loss_beside_each_fitness():
    summary_table = script("lion_rediscovery_report").summary_table
    seed = {"evaluations": 7, "best_fitness": 1.02, "best_large_fitness": 0.3,
            "best_readings": {"proxy": reading(1.02, {"a": 0.59, "b": 1.08}),
                              "large": reading(0.3, {"a": 2.8})},            # b failed at the large size
            "best_meta": {"id": 12, "large_fitness": 1.04, "fitness": 1.01,
                          "readings": {"proxy": reading(1.01, {"a": 0.9, "b": 0.95}),
                                       "large": reading(1.04, {"a": 0.97, "b": 0.99})}}}
    old_baseline = {"evaluations": 9, "best_fitness": 1.005}      # from before meta-validation was recorded
    lines = summary_table({"suite": ["a", "b"], "seeds": {"0": seed}, "baselines": {"random search": old_baseline}})
    assert lines[0].count("÷ AdamW") == 3
    assert lines[2:] == ["| seed 0 | 7 | 1.020 | 0.59 / 1.08 | 0.300 | 2.80 / failed | 1.040 (12) | 0.97 / 0.99 |",
                         "| random search | 9 | 1.005 | - | - | - | - | - |"]


def test_lion_rediscovery_report_gives_the_readings_and_says_they_were_re_measured():
    lion_rediscovery_report = script("lion_rediscovery_report")
    seed = {"evaluations": 1, "cache_hits": 0, "pruned": 0, "seconds": 1.0, "best_fitness": 1.02,
            "best_large_fitness": 0.3, "family": None, "constants": {}, "first_lion": None,
            "best": "", "simplified": "", "best_meta": None,
            "best_readings": {"proxy": reading(1.0203, {"a": 0.59}), "large": reading(0.28, {"a": 2.8})},
            "held_out": {"h": {"found": 0.98, "found_lr": 0.1, "lion": 0.95, "lion_lr": 1e-3,
                               "found_reading": {"fitness": 0.9806, "val_loss": 1.1, "adamw_val_loss": 1.0,
                                                 "loss_ratio": 1.1},
                               "lion_reading": {"fitness": 0.95, "failure": "diverged"},
                               "adamw_val_loss": 1.0}}}
    results = {"suite": ["a"], "held_out": ["h"], "seeds": {"0": seed}, "baselines": {}, "time_per_seed": 1.0,
               "lr_grids": {"found": [0.01, 0.1, 1.0], "lion": [1e-4, 1e-3, 1e-2]},
               "readings": {"command": "python experiments/lion_rediscovery.py c.toml --report-only --readings",
                            "date": "2026-11-30", "seconds": 600.0, "machine": "x86_64, 2 cores"}}
    text = lion_rediscovery_report.report(results, [], "cmd")
    assert "re-measured after the searches" in text and results["readings"]["command"] in text
    # the largest difference between a recorded and a re-measured fitness is named (seed 0's large size)
    assert "3 of 4 within 0.001; the largest difference is -0.0200 (seed 0, best by proxy fitness, large" in text
    rows = [line for line in text.splitlines() if line.startswith("| best by proxy fitness")]
    assert rows == ["| best by proxy fitness | proxy | 1.020 | 1.020 | 0.295 (0.59x), acc 0.900 |",
                    "| best by proxy fitness | large | 0.300 | 0.280 | 1.4 (2.80x), acc 0.900 |"]
    assert "| tuned AdamW | large | 1.000 | | 0.5 |" in text
    assert "| h | 0.980 (x0.1) | 0.981; 1.1 (1.10x) | 0.950 (lr 0.001) | 0.950; failed | 1 |" in text
    del results["readings"]                     # a report made before readings were measured says so
    assert "has no readings" in lion_rediscovery_report.report(results, [], "cmd")


def test_lion_rediscovery_tuning_says_when_the_lr_made_no_difference():
    tuned = script("lion_rediscovery").tuned
    assert tuned("t", lambda task, lr: -abs(lr - 0.1), (0.01, 0.1, 1.0)) == (0.0, 0.1)
    # a program that overwrites its lr input: every multiple gives the same run
    assert tuned("t", lambda task, lr: 0.97, (0.01, 0.1, 1.0)) == (0.97, None)


def test_lr_response_tells_an_optimizer_that_follows_lr_from_one_that_ignores_it(tmp_path):
    from evosearch import Program, reference
    from evosearch.optim.export import export
    warm = str(reference.load("adamw"))
    constant = Program.parse(warm.replace("    lr = lr * 0.001\n", "    lr = wd * 0.002253\n"))
    export(reference.load("adamw"), tmp_path / "follows.py", "Discovered", lr=1.0)
    export(constant, tmp_path / "ignores.py", "Discovered", lr=1.0)
    out = run(EXPERIMENTS / "lr_response.py", tmp_path / "follows.py", tmp_path / "ignores.py")
    rows = {line.split("|")[1].strip(): [float(v) for v in line.split("|")[2:6]]
            for line in out.splitlines() if line.startswith(f"| {tmp_path}")}
    follows, ignores = rows[str(tmp_path / "follows.py")], rows[str(tmp_path / "ignores.py")]
    assert len(set(ignores)) == 1                       # the same loss whatever the lr
    assert len(set(follows[:3])) == 3 and follows[3] > max(follows[:3])    # lr held at 0: untrained


def test_score_gives_each_task_loss_beside_the_fitness_the_search_would_give():
    import tasks
    from evosearch import reference
    from evosearch.search.suite import SuiteSpec
    [scored] = script("score").score(["adamw"], SuiteSpec(("quadratic",), seeds=(0,)))
    task = tasks.get("quadratic")
    alone = task.evaluate(reference.load("adamw"), seed=0)
    assert scored["fitness"] == alone.fitness and scored["failure"] is None
    quadratic = scored["tasks"]["quadratic"]
    assert quadratic["val_loss"] == alone.metrics["val_loss"]
    assert quadratic["loss_ratio"] == pytest.approx(alone.metrics["val_loss"] / task.baseline(0).best_loss)
    out = run(EXPERIMENTS / "score.py", "adamw", "--tasks", "quadratic")
    assert out.startswith(f"adamw: fitness {alone.fitness:.4f}; quadratic: val loss ") and "x tuned AdamW's" in out


def test_gpu_check_dry_run_on_the_cpu(tmp_path):
    """``gpu_check.py`` runs every step with ``--device cpu`` (the same code paths as on CUDA, where
    it is meant to run) and writes its figures."""
    out = tmp_path / "gpu_check.json"
    printed = run(EXPERIMENTS / "gpu_check.py", "--device", "cpu", "--quick", "--vit", "digits_mlp", "--out", out)
    report = json.loads(out.read_text())
    row = report["throughput"]["digits_mlp"]
    assert row["one_at_a_time"]["device"] == "cpu" and row["one_at_a_time"]["evaluations_per_s"] > 0
    assert row["one_at_a_time"]["adamw_fitness"] == row["host_cpu"]["adamw_fitness"]     # the same device
    assert set(row["batched"]) == {"2", "3"} and all(b["exact"] == "exact" for b in row["batched"].values())
    assert report["search"][0]["evaluations"] == 6 and report["search"][0]["devices"] == ["cpu"]
    d = report["determinism"]["digits_mlp"]
    assert d["default"]["bit_for_bit"] and d["deterministic"]["bit_for_bit"]
    assert "exported Lion (fused)" in report["export"] and "lion-pytorch" in printed
