"""The Lion paper's claims, measured at this scale: batch size, and robustness to lr x weight decay.

    python experiments/lion_claims.py batch-size --task digits_vit \\
        --batch-sizes 16,32,64,128,256,512,1024 --program PROGRAM.py \\
        --out experiments/results/lion_batch_size
    python experiments/lion_claims.py heatmap --task digits_vit --out experiments/results/lion_heatmap

``batch-size``: at each batch size (the task's proxy step count, so a larger batch also sees more
data), torch's AdamW, lion-pytorch's Lion and optionally a discovered program are each tuned over
their whole grid (AdamW and Lion: lr x weight decay, the grids of ``lion_vs_adamw.py``; the
program: multiples of its own learning-rate scale, its own constants otherwise) on the mean
validation loss over the tuning seeds, then compared at their tuned settings on fresh seeds. The
paper's claims: Lion is no better than AdamW at small batches (64), and its advantage grows with
the batch size.

``heatmap``: the final validation loss of AdamW and Lion over a full lr x weight-decay grid (mean
over seeds), as two PNG heatmaps. The paper's claim: Lion is more robust to these two. Robustness is
measured as the fraction of each grid within 10% (and 25%) of that optimizer's best loss, and as the
decades of learning rate within 10% of the best at the best weight decay. The grids are shifted the
way the paper advises (Lion's lr half a decade smaller, wd a decade larger) and have the same number of
points (8 learning rates x 4 weight decays).

Each writes OUT.json (every run), OUT.md (a table, the command and a "## Findings" section that is
kept when OUT.md is rewritten) and OUT.png.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lion_vs_adamw as study  # noqa: E402
from lion_vs_adamw import CONFIRM_SEED_BASE, Setting, configure, train_once, usable_seeds  # noqa: E402
from lion_vs_adamw_report import kept_findings  # noqa: E402

PROGRAM_MULTIPLIERS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
# Lion's lrs half a decade below AdamW's, its wds a decade above, as the paper
# advises; 8 x 4 points each. (A first grid, Lion 1e-5..1e-2, put Lion's best at its top edge on
# digits_vit, hence the wide range.)
HEATMAP = {"adamw": ((1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1), (0.0, 0.01, 0.1, 1.0)),
           "lion": ((3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1), (0.0, 0.1, 1.0, 10.0))}


def add_program(path: str | None) -> str | None:
    """Register the program at ``path`` as the optimizer "found" (lr = a multiple of its own scale)."""
    if not path:
        return None
    from evosearch import Program, to_optimizer
    prog = Program.parse(Path(path).read_text())
    cls = to_optimizer(prog, flat=True)
    study.OPTIMIZERS["found"] = (lambda wd: (lambda params, lr: cls(params, lr=lr)),
                                 PROGRAM_MULTIPLIERS, (0.0,))
    return str(prog)


def train_safely(task, setting: Setting, name: str, lr: float, wd: float, seed: int, purpose: str):
    """``train_once``, with any exception (say, in a discovered program's arithmetic) a failed run."""
    try:
        return train_once(task, setting, name, lr, wd, seed, purpose)
    except Exception as exc:  # noqa: BLE001 - one run must not lose a study
        return study.Run(setting.task, setting.batch_size, setting.steps, name, lr, wd, seed, purpose,
                         math.inf, None, None, 0.0, f"exception: {type(exc).__name__}: {exc}")


def grid_losses(task, setting: Setting, name: str, lrs, wds, seeds, runs: list) -> dict:
    """(lr, wd) -> mean validation loss over ``seeds`` (inf when any run failed)."""
    out = {}
    for wd in wds:
        for lr in lrs:
            losses = []
            for seed in seeds:
                run = train_safely(task, setting, name, lr, wd, seed, "tune")
                runs.append(run)
                losses.append(run.val_loss)
            out[lr, wd] = statistics.fmean(losses) if all(map(math.isfinite, losses)) else math.inf
    return out


# -- batch size ----------------------------------------------------------------------------------

def paired_t(first: list[float], second: list[float]) -> float:
    """The paired t statistic of first − second over the same seeds (positive: ``second`` has the
    lower loss); nan when it is undefined (fewer than 2 pairs, a failed run, no spread)."""
    paired = [a - b for a, b in zip(first, second)]
    if len(paired) < 2 or not all(map(math.isfinite, paired)) or statistics.stdev(paired) == 0:
        return math.nan
    return statistics.fmean(paired) / (statistics.stdev(paired) / math.sqrt(len(paired)))


def batch_row(task_name: str, steps: int, b: int, names: list, n_seeds: int, n_confirm: int):
    """One batch size: every optimizer tuned on ``n_seeds`` seeds and compared on ``n_confirm`` fresh
    ones. Returns (the row, the runs as dicts)."""
    torch.set_num_threads(1)
    setting = Setting(task_name, b, steps)
    task = configure(setting)
    seeds = usable_seeds(setting, 0, n_seeds)
    fresh = usable_seeds(setting, CONFIRM_SEED_BASE, n_confirm)
    row = {"batch_size": b, "steps": setting.steps, "epochs": setting.steps * b / len(task.data[0])}
    runs = []
    t0 = time.perf_counter()
    for name in names:
        _, lrs, wds = study.OPTIMIZERS[name]
        lrs = list(lrs)
        grid = grid_losses(task, setting, name, lrs, wds, seeds, runs)
        for _ in range(study.MAX_EXTENSIONS):     # a winning lr at the grid's end: extend it
            (lr, wd), tune_loss = min(grid.items(), key=lambda kv: kv[1])
            if lr not in (lrs[0], lrs[-1]) or not math.isfinite(tune_loss):
                break
            new = lrs[-1] * lrs[-1] / lrs[-2] if lr == lrs[-1] else lrs[0] * lrs[0] / lrs[1]
            lrs = sorted(lrs + [new])
            grid.update(grid_losses(task, setting, name, [new], wds, seeds, runs))
        (lr, wd), tune_loss = min(grid.items(), key=lambda kv: kv[1])
        if not math.isfinite(tune_loss):      # every setting failed: nothing to confirm
            row[name] = {"lr": math.nan, "weight_decay": math.nan, "tune_loss": tune_loss, "losses": [],
                         "mean": math.inf, "std": math.nan, "edge": False, "failed": True}
            continue
        confirm = [train_safely(task, setting, name, lr, wd, s, "confirm") for s in fresh]
        runs.extend(confirm)
        losses = [r.val_loss for r in confirm]
        row[name] = {"lr": lr, "weight_decay": wd, "tune_loss": tune_loss, "losses": losses,
                     "mean": statistics.fmean(losses),
                     "std": statistics.stdev(losses) if all(map(math.isfinite, losses)) else math.inf,
                     "edge": lr in (lrs[0], lrs[-1])}
    row["lion_minus_adamw"] = row["lion"]["mean"] - row["adamw"]["mean"]
    row["paired_t"] = paired_t(row["adamw"]["losses"], row["lion"]["losses"])
    print(f"batch {b:5d}: " + "  ".join(f"{n} {row[n]['mean']:.4f}±{row[n]['std']:.4f} (lr {row[n]['lr']:.3g}, "
                                        f"wd {row[n]['weight_decay']:g})" for n in names)
          + f"  paired t (AdamW − Lion) {row['paired_t']:+.1f}  [{time.perf_counter() - t0:.0f} s]", flush=True)
    return row, [asdict(r) for r in runs]


def batch_size_study(args) -> dict:
    """Every batch size, ``args.jobs`` at a time (forked processes; the largest batches first)."""
    names = ["adamw", "lion"] + (["found"] if args.program_text else [])
    steps = args.steps or study.tasks.get(args.task).steps
    jobs = [(args.task, steps, b, names, args.seeds, args.confirm_seeds)
            for b in sorted(args.batch_sizes, reverse=True)]
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        # fork: the workers inherit the registered program ("found")
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            done = list(pool.map(batch_row, *zip(*jobs)))
    else:
        done = [batch_row(*job) for job in jobs]
    done.sort(key=lambda rr: rr[0]["batch_size"])
    return {"names": names, "rows": [r for r, _ in done], "runs": [x for _, runs in done for x in runs]}


def _t(t: float) -> str:
    return "n/a" if math.isnan(t) else f"{t:+.1f}"


def batch_size_table(result: dict) -> str:
    """The study's table; with a discovered program, also its paired t against each (from the
    stored confirmation losses, so a study's JSON alone rebuilds it)."""
    names = result["names"]
    others = [n for n in ("adamw", "lion") if "found" in names]
    labels = {"adamw": "AdamW", "lion": "Lion"}
    head = ("| batch | epochs | " + " | ".join(f"{n} val loss (lr, wd)" for n in names)
            + " | Lion − AdamW | paired t (AdamW − Lion) |"
            + "".join(f" paired t ({labels[n]} − found) |" for n in others)
            + "\n|---:|---:|" + "---|" * len(names) + "---:|---:|" + "---:|" * len(others) + "\n")
    lines = []
    for r in result["rows"]:
        cells = [f"{r[n]['mean']:.4f} ± {r[n]['std']:.4f} ({r[n]['lr']:.3g}, {r[n]['weight_decay']:g})"
                 + (" edge" if r[n]["edge"] else "") for n in names]
        lines.append(f"| {r['batch_size']} | {r['epochs']:.3g} | " + " | ".join(cells)
                     + f" | {r['lion_minus_adamw']:+.4f} | {_t(r['paired_t'])} |"
                     + "".join(f" {_t(paired_t(r[n]['losses'], r['found']['losses']))} |" for n in others))
    return head + "\n".join(lines) + "\n"


def batch_size_plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r["batch_size"] for r in result["rows"]]
    for n in result["names"]:
        ax.errorbar(xs, [r[n]["mean"] for r in result["rows"]], yerr=[r[n]["std"] for r in result["rows"]],
                    marker="o", capsize=3, label=n)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("validation loss (tuned, mean ± std over fresh seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- heatmap -------------------------------------------------------------------------------------

def robustness(grid: dict, lrs, wds) -> dict:
    """How much of the grid is near its best: fractions of all cells within 10% / 25% of the best
    loss, and the decades spanned by the unbroken run of learning rates within 10% around the best
    (at the best weight decay). NaN where every cell failed."""
    best = min(grid.values())
    finite = [v for v in grid.values() if math.isfinite(v)]
    (best_lr, best_wd) = min(grid, key=grid.get)
    if not math.isfinite(best):
        return {"best": best, "best_lr": None, "best_wd": None, "failed": len(grid), "within_10pct": 0.0,
                "within_25pct": 0.0, "lr_decades_within_10pct": math.nan}
    lrs = list(lrs)
    lo = hi = lrs.index(best_lr)
    while lo > 0 and grid[lrs[lo - 1], best_wd] <= 1.1 * best:
        lo -= 1
    while hi < len(lrs) - 1 and grid[lrs[hi + 1], best_wd] <= 1.1 * best:
        hi += 1
    return {"best": best, "best_lr": best_lr, "best_wd": best_wd, "failed": len(grid) - len(finite),
            "within_10pct": sum(v <= 1.1 * best for v in finite) / len(grid),
            "within_25pct": sum(v <= 1.25 * best for v in finite) / len(grid),
            "lr_decades_within_10pct": math.log10(lrs[hi] / lrs[lo])}


def heatmap_study(args) -> dict:
    setting = Setting(args.task, args.batch_size or study.tasks.get(args.task).batch_size,
                      args.steps or study.tasks.get(args.task).steps)
    task = configure(setting)
    seeds = usable_seeds(setting, 0, args.seeds)
    out, runs = {"setting": asdict(setting), "seeds": seeds, "optimizers": {}}, []
    for name, (lrs, wds) in HEATMAP.items():
        t0 = time.perf_counter()
        grid = grid_losses(task, setting, name, lrs, wds, seeds, runs)
        out["optimizers"][name] = {"lrs": list(lrs), "wds": list(wds),
                                   "loss": [[grid[lr, wd] for lr in lrs] for wd in wds],
                                   "robustness": robustness(grid, lrs, wds)}
        print(f"{name}: {out['optimizers'][name]['robustness']}  [{time.perf_counter() - t0:.0f} s]", flush=True)
    out["runs"] = [asdict(r) for r in runs]
    return out


def heatmap_plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    opts = result["optimizers"]
    fig, axes = plt.subplots(1, len(opts), figsize=(5.5 * len(opts), 3.8))
    for ax, (name, o) in zip(np.atleast_1d(axes), opts.items()):
        loss = np.array(o["loss"], dtype=float)
        rel = loss / o["robustness"]["best"]
        im = ax.imshow(np.where(np.isfinite(rel), rel, np.nan), origin="lower", cmap="viridis_r",
                       vmin=1.0, vmax=2.0, aspect="auto")
        for (i, j), v in np.ndenumerate(rel):
            ax.text(j, i, "fail" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if np.isfinite(v) and v > 1.5 else "black")
        ax.set_xticks(range(len(o["lrs"])), [f"{x:g}" for x in o["lrs"]], rotation=45)
        ax.set_yticks(range(len(o["wds"])), [f"{x:g}" for x in o["wds"]])
        ax.set_xlabel("learning rate")
        ax.set_ylabel("weight decay")
        ax.set_title(f"{name}: val loss / its best ({o['robustness']['best']:.3f})")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def heatmap_table(result: dict) -> str:
    lines = ["| optimizer | best val loss | at lr, wd | grid within 10% of best | within 25% | "
             "lr decades within 10% (at the best wd) | failed |", "|---|---:|---|---:|---:|---:|---:|"]
    for name, o in result["optimizers"].items():
        r = o["robustness"]
        if r["best_lr"] is None:
            lines.append(f"| {name} | every run failed | | | | | {r['failed']} |")
            continue
        edge = " (grid edge)" if r["best_lr"] in (o["lrs"][0], o["lrs"][-1]) else ""
        lines.append(f"| {name} | {r['best']:.4f} | {r['best_lr']:g}{edge}, {r['best_wd']:g} | {r['within_10pct']:.0%} "
                     f"| {r['within_25pct']:.0%} | {r['lr_decades_within_10pct']:.2f} | {r['failed']} |")
    return "\n".join(lines) + "\n"


# -- output --------------------------------------------------------------------------------------

def write(out: Path, title: str, command: str, body: str, result: dict, minutes: float) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float))
    md = out.with_suffix(".md")
    findings = kept_findings(md)
    md.write_text(f"# {title}\n\nGenerated by\n\n    {command}\n\n({minutes:.1f} min of training in all, one CPU thread per run, "
                  f"torch {torch.__version__}.)\n\n{findings}## Results\n\n![{out.name}]({out.name}.png)\n\n{body}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", choices=["batch-size", "heatmap"])
    ap.add_argument("--task", default="digits_vit")
    ap.add_argument("--batch-sizes", default="16,32,64,128,256,512,1024")
    ap.add_argument("--batch-size", type=int, default=0, help="heatmap: the batch size (default: the task's)")
    ap.add_argument("--steps", type=int, default=0, help="training steps (default: the task's proxy count)")
    ap.add_argument("--program", help="batch-size: a discovered program file to compare as well")
    ap.add_argument("--seeds", type=int, default=2, help="tuning (or heatmap) seeds")
    ap.add_argument("--confirm-seeds", type=int, default=4, help="batch-size: fresh comparison seeds")
    ap.add_argument("--out", required=True, help="output path without suffix")
    ap.add_argument("--jobs", type=int, default=1, help="batch-size: batch sizes trained in parallel processes")
    ap.add_argument("--append", action="store_true",
                    help="batch-size: add these batch sizes to the rows already in OUT.json (to split a study "
                         "over processes or sessions)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    study.tasks.get(args.task)          # fail early: an unknown name, a missing Lion, too few seeds
    import lion_pytorch  # noqa: F401
    if args.seeds < 1 or (args.study == "batch-size" and args.confirm_seeds < 2):
        ap.error("need at least 1 tuning seed and 2 confirmation seeds")
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    command = "python experiments/lion_claims.py " + " ".join(str(a) for a in (argv if argv is not None else sys.argv[1:]))
    out = Path(args.out)
    if args.study == "batch-size":
        args.program_text = add_program(args.program)
        meta = {"task": args.task, "steps": args.steps or study.tasks.get(args.task).steps, "seeds": args.seeds,
                "confirm_seeds": args.confirm_seeds, "program": args.program_text}
        old = json.loads(out.with_suffix(".json").read_text()) if args.append and out.with_suffix(".json").exists() else None
        if old is not None and old.get("meta") != meta:
            ap.error(f"{out}.json was made with other settings ({old.get('meta')}): cannot append")
        result = batch_size_study(args)
        result["program"] = args.program_text
        result["meta"] = meta
        result["commands"] = [command]
        if old is not None:
            mine = set(args.batch_sizes)
            result["rows"] = sorted([r for r in old["rows"] if r["batch_size"] not in mine] + result["rows"],
                                    key=lambda r: r["batch_size"])
            result["runs"] = [r for r in old["runs"] if r["batch_size"] not in mine] + result["runs"]
            result["commands"] = old.get("commands", []) + [command]
        body = (f"Task {args.task}, {result['rows'][0]['steps']} steps at every batch size; tuned on "
                f"{args.seeds} seeds, compared on {args.confirm_seeds} fresh seeds (mean ± std). \"edge\": the tuned lr is "
                "at its grid's end even after extending the grid twice. Negative Lion − AdamW favours Lion.\n\n" + batch_size_table(result)
                + (f"\nThe program (\"found\"):\n\n```python\n{args.program_text}```\n" if args.program_text else ""))
        result["minutes"] = sum(r["seconds"] for r in result["runs"]) / 60
        write(out, "Batch size: tuned Lion, AdamW and a discovered program", "\n    ".join(result["commands"]),
              body, result, result["minutes"])       # the results first: a plotting error loses nothing
        batch_size_plot(result, out.with_suffix(".png"))
    else:
        result = heatmap_study(args)
        s = result["setting"]
        body = (f"Task {s['task']}, batch {s['batch_size']}, {s['steps']} steps; each cell the mean final "
                f"validation loss over seeds {result['seeds']}, shown relative to that optimizer's best.\n\n"
                + heatmap_table(result))
        write(out, "Learning rate x weight decay: how robust are Lion and AdamW?", command, body, result,
              sum(r["seconds"] for r in result["runs"]) / 60)
        heatmap_plot(result, out.with_suffix(".png"))
    print(f"wrote {out}.md/.json/.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
