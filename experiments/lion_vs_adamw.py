"""Which proxy tasks favour Lion: tuned Lion against tuned AdamW across batch sizes and training lengths.

For every (task, batch size, training length) each optimizer is tuned over a learning-rate x
weight-decay grid on the mean validation loss over the tuning seeds; the winning setting of each is
then re-trained on fresh confirmation seeds, and the comparison is made on those (so the winner's
curse of tuning does not favour either side). Lion is lion-pytorch's, betas (0.9, 0.99); AdamW is
torch's, betas (0.9, 0.999). With ``--optimizers adamw,signum,lion`` a third rung sits between them:
Signum (Bernstein et al. 2018), the sign of one momentum, beta 0.9, i.e. Lion with beta1 = beta2, so
that AdamW -> Signum -> Lion separates what the sign buys from what Lion's two betas add. With
``adamw_small_beta2`` AdamW at betas (0.77, 0.52), where m / sqrt(v) is close to a sign of the
momentum, is set against each of them (the report's "Beyond the ladder"). All decay weights the
decoupled way, w <- w (1 - lr wd).

The grids are half-decade learning rates and decade weight decays, with Lion's shifted the way the
paper advises (lr 3-10x smaller, wd 3-10x larger, so the products lr wd span the same range);
Signum, a sign method too, has Lion's. They are searched in three steps, the same for every
optimizer: every learning rate at the middle weight decay; at each other weight decay, the learning
rates within two grid steps of the best so far (and a decade more weight decay while the largest
wins); last, the best learning rate refined by a quarter decade either side. A learning-rate edge
that wins is extended, up to two grid steps.

    python experiments/lion_vs_adamw.py --tasks digits_mlp,char_lm --batch-sizes 16,128,1024 \\
        --steps-multipliers 1,4 --seeds 2 --budget-minutes 40 --out experiments/results/lion_vs_adamw
    python experiments/lion_vs_adamw.py --tasks digits_vit --batch-sizes 128 --steps 400,600 \\
        --optimizers adamw,signum,lion --confirm-seeds 8 --out experiments/results/lion_vs_adamw --append

The cost of every configuration is estimated from short timed runs before anything is trained; the
script refuses to start when the estimate exceeds --budget-minutes (unless --force), and stops taking
new configurations once the budget is spent. Results are written after every configuration: OUT.json
(each setting's summary and tuning grids), OUT.csv (one row per training run) and OUT.md (tables,
written by ``lion_vs_adamw_report.py``; a "## Findings" section already in OUT.md is kept). With
--append, settings already in OUT.json are skipped and new ones added, so a study can be built from
several invocations, or resumed; a setting there that lacks one of the requested optimizers is run
again in full (all requested optimizers, so that one code version measured every side) and replaces
the old one. An invocation with nothing left to run just rewrites OUT.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import tasks  # noqa: E402
import lion_vs_adamw_report as report  # noqa: E402
from tasks import TrainingFailure  # noqa: E402

LION_LRS = (3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
LION_WDS = (0.0, 0.1, 1.0)
ADAMW_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
ADAMW_WDS = (0.0, 0.01, 0.1)
MAX_EXTENSIONS = 2          # grid points added beyond an edge that keeps winning
SPAN = 2                    # at the other weight decays, lrs within this many grid steps of the best
REFINE = 10 ** 0.25         # the final learning-rate refinement, a quarter decade
CONFIRM_SEED_BASE = 100     # confirmation seeds are 100, 101, ...; tuning seeds 0, 1, ...
EXPECTED_POINTS = 23        # grid points a search typically evaluates (for the cost estimate)


def make_lion(wd: float):
    from lion_pytorch import Lion
    return lambda params, lr: Lion(params, lr=lr, betas=(0.9, 0.99), weight_decay=wd)


def make_adamw(wd: float):
    return lambda params, lr: torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), weight_decay=wd,
                                                foreach=True)


class Signum(torch.optim.Optimizer):
    """Signum (Bernstein et al. 2018, "signSGD", Algorithm 3) with decoupled weight decay:
    m <- beta m + (1 - beta) g;  w <- w (1 - lr wd) - lr sign(m). It is Lion with beta1 = beta2 = beta,
    and its arithmetic is lion-pytorch's (same operations, same order), so the two agree bit for bit."""

    def __init__(self, params, lr: float = 1e-4, beta: float = 0.9, weight_decay: float = 0.0):
        if not lr > 0 or not 0 <= beta < 1:
            raise ValueError(f"Signum needs lr > 0 and 0 <= beta < 1, got lr={lr}, beta={beta}")
        super().__init__(params, dict(lr=lr, beta=beta, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, beta, wd = group["lr"], group["beta"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["momentum"] = torch.zeros_like(p)
                m = state["momentum"]
                p.mul_(1.0 - lr * wd)
                m.mul_(beta).add_(p.grad, alpha=1.0 - beta)
                p.add_(m.sign(), alpha=-lr)
        return loss


def make_signum(wd: float):
    return lambda params, lr: Signum(params, lr=lr, beta=0.9, weight_decay=wd)


# AdamW with a small beta2, at the betas of the best program of the rediscovery's AdamW-constants-only
# baseline (results/lion_rediscovery.md). A second moment that follows the last few g^2 makes m / sqrt(v)
# close to a sign of the momentum, so its updates are Lion-sized: tuned on Lion's grid, as Signum is.
SMALL_BETAS = (0.773121, 0.521463)


def make_adamw_small_beta2(wd: float):
    return lambda params, lr: torch.optim.AdamW(params, lr=lr, betas=SMALL_BETAS, weight_decay=wd, foreach=True)


OPTIMIZERS = {"adamw": (make_adamw, ADAMW_LRS, ADAMW_WDS), "signum": (make_signum, LION_LRS, LION_WDS),
              "lion": (make_lion, LION_LRS, LION_WDS),
              "adamw_small_beta2": (make_adamw_small_beta2, LION_LRS, LION_WDS)}


@dataclass(frozen=True)
class Setting:
    task: str
    batch_size: int
    steps: int

    def __str__(self) -> str:
        return f"{self.task} batch {self.batch_size} steps {self.steps}"


@dataclass
class Run:
    task: str
    batch_size: int
    steps: int
    optimizer: str
    lr: float
    weight_decay: float
    seed: int
    purpose: str            # "tune" or "confirm"
    val_loss: float         # inf when training failed
    val_accuracy: float | None
    train_loss: float | None
    seconds: float
    failure: str | None = None


@dataclass
class Tuned:
    lr: float
    weight_decay: float
    tune_loss: float                  # mean over the tuning seeds at the chosen setting
    points: int                       # (lr, wd) settings evaluated
    confirm_losses: list = field(default_factory=list)
    confirm_accuracies: list = field(default_factory=list)
    grid: dict = field(default_factory=dict)   # "lr,wd" -> mean tuning loss

    @property
    def mean(self) -> float:
        return statistics.fmean(self.confirm_losses)

    @property
    def std(self) -> float:
        if not all(map(math.isfinite, self.confirm_losses)):
            return float("inf")     # a confirmation run failed
        return statistics.stdev(self.confirm_losses) if len(self.confirm_losses) > 1 else float("nan")


def configure(setting: Setting, shift: int = 0) -> tasks.Task:
    """The task at the setting's batch size and length; with ``shift``, its training images are
    shifted at random by up to ``shift`` pixels each way (``ShiftedBatches``)."""
    task = tasks.get(setting.task)
    task.batch_size = setting.batch_size
    task.steps = setting.steps
    if shift:
        plain = task.sampler
        task.sampler = lambda seed: ShiftedBatches(plain(seed), shift)
    return task


class ShiftedBatches:
    """A task's minibatches with each square image (flattened, as the digits are) shifted by a random
    whole number of pixels in ``-shift .. shift`` along each axis, zeros shifted in: augmentation, so
    that a long run sees more distinct images than the training set holds. The shifts are drawn from
    the sampler's own ``generator`` after its indices, so a seed gives the same batches every time."""

    def __init__(self, inner, shift: int):
        self.inner, self.shift, self.generator = inner, shift, inner.generator

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.inner.next()
        b, side = len(x), math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ValueError(f"--augment-shift needs square images, got {x.shape[1]} pixels")
        d = self.shift
        dy, dx = torch.randint(-d, d + 1, (2, b), generator=self.generator).to(x.device)
        padded = torch.nn.functional.pad(x.reshape(b, side, side), (d, d, d, d))
        ar = torch.arange(side, device=x.device)
        rows = (ar[None, :] + d - dy[:, None])[:, :, None]          # the output pixel (i, j) reads
        cols = (ar[None, :] + d - dx[:, None])[:, None, :]          # the input (i - dy, j - dx)
        out = padded[torch.arange(b, device=x.device)[:, None, None], rows, cols]
        return out.reshape(b, side * side), y


def usable_seeds(setting: Setting, first: int, count: int) -> list[int]:
    """``count`` seeds from ``first`` on, skipping those whose first minibatch already trips the
    task's divergence check before any update (heavy_tail's Student-t targets can: the check compares
    the noisy training loss with the clean initial validation loss). That failure is a property of
    the seed, not of an optimizer, so both optimizers see the same replacement seed."""
    probe = configure(Setting(setting.task, setting.batch_size, 1))
    seeds, seed = [], first
    while len(seeds) < count:
        try:
            probe.train(lambda params, lr: torch.optim.SGD(params, lr=lr), seed=seed, lr=0.0,
                        time_limit=float("inf"))
            seeds.append(seed)
        except TrainingFailure:
            pass
        seed += 1
    return seeds


def train_once(task, setting: Setting, name: str, lr: float, wd: float, seed: int, purpose: str) -> Run:
    make = OPTIMIZERS[name][0](wd)
    start = time.perf_counter()
    try:
        m = task.train(make, seed=seed, lr=lr, time_limit=float("inf"))
        return Run(setting.task, setting.batch_size, setting.steps, name, lr, wd, seed, purpose,
                   m["val_loss"], m.get("val_accuracy"), m["train_loss"], time.perf_counter() - start)
    except TrainingFailure as exc:
        return Run(setting.task, setting.batch_size, setting.steps, name, lr, wd, seed, purpose,
                   float("inf"), None, None, time.perf_counter() - start, str(exc))


def _axis(values: tuple, index: int, extend_low: bool) -> float | None:
    """The grid value at ``index``, extending past the ends geometrically (weight decay only upward,
    by a decade; learning rate both ways, by the grid's end ratio)."""
    if 0 <= index < len(values):
        return values[index]
    if index >= len(values) + MAX_EXTENSIONS or index < -MAX_EXTENSIONS:
        return None
    if index < 0:
        if not extend_low:
            return None
        return values[0] * (values[0] / values[1]) ** (-index)
    top, ratio = values[-1], values[-1] / values[-2] if values[-2] > 0 else 10.0
    return top * ratio ** (index - len(values) + 1)


def tune(task, setting: Setting, name: str, seeds: list[int], runs: list[Run]) -> Tuned:
    """Search the (lr, wd) grid on the mean validation loss over ``seeds``; see the module doc."""
    _, lrs, wds = OPTIMIZERS[name]
    cache: dict[tuple[int, int], float] = {}      # grid indices -> mean loss

    def value(i: int, j: int):
        lr, wd = _axis(lrs, i, True), _axis(wds, j, False)
        return None if lr is None or wd is None else (lr, wd)

    def mean_loss(lr: float, wd: float) -> float:
        losses = []
        for seed in seeds:
            run = train_once(task, setting, name, lr, wd, seed, "tune")
            runs.append(run)
            losses.append(run.val_loss)
        return statistics.fmean(losses) if all(map(math.isfinite, losses)) else float("inf")

    def scan(j: int, lo: int, hi: int) -> int:
        """Evaluate lr indices lo..hi at wd index j, extending while an end wins; the best index."""
        todo = [i for i in range(lo, hi + 1) if value(i, j) is not None]
        while todo:
            for i in todo:
                if (i, j) not in cache:
                    cache[i, j] = mean_loss(*value(i, j))
            done = sorted(i for (i, jj) in cache if jj == j)
            best = min(done, key=lambda i: cache[i, j])
            todo = [k for k in (best - 1, best + 1) if value(k, j) is not None and (k, j) not in cache]
        return min((i for (i, jj) in cache if jj == j), key=lambda i: cache[i, j])

    # the whole learning-rate grid at the middle weight decay: val loss against lr is not always
    # unimodal at two seeds (sign descent at a high lr is noisy), so no hill-climbing along lr
    j0 = len(wds) // 2
    best_i = scan(j0, 0, len(lrs) - 1)
    for j in range(len(wds)):
        if j != j0:
            scan(j, best_i - SPAN, best_i + SPAN)
    while True:         # a decade more weight decay while the largest tried wins
        i, j = min(cache, key=cache.get)
        top = max(jj for (_, jj) in cache)
        if j != top or value(i, top + 1) is None:
            break
        scan(top + 1, i - SPAN, i + SPAN)
    (i, j), best_loss = min(cache.items(), key=lambda kv: kv[1])
    lr, wd = value(i, j)
    grid = {f"{value(*k)[0]:.3g},{value(*k)[1]:g}": v for k, v in sorted(cache.items())}
    for candidate in (lr / REFINE, lr * REFINE):
        loss = mean_loss(candidate, wd)
        grid[f"{candidate:.3g},{wd:g}"] = loss
        if loss < best_loss:
            best_loss, lr = loss, candidate
    return Tuned(lr, wd, best_loss, len(grid), grid=grid)


def confirm(task, setting: Setting, name: str, tuned: Tuned, seeds: list[int], runs: list[Run]) -> None:
    for seed in seeds:
        run = train_once(task, setting, name, tuned.lr, tuned.weight_decay, seed, "confirm")
        runs.append(run)
        tuned.confirm_losses.append(run.val_loss)
        tuned.confirm_accuracies.append(run.val_accuracy)


def verdict(first: Tuned, second: Tuned, labels: tuple[str, str] = ("AdamW", "Lion")) -> dict:
    """``first`` against ``second`` on the confirmation seeds. Positive difference: ``second``'s
    validation loss is lower. Noise: twice the pooled per-seed std. Wins: the seeds on which
    ``second``'s loss is lower (a seed fixes the initialisation and the batches of both)."""
    diff = first.mean - second.mean
    pooled = math.sqrt((first.std ** 2 + second.std ** 2) / 2)
    paired = [a - b for a, b in zip(first.confirm_losses, second.confirm_losses)]
    finite = all(map(math.isfinite, paired))
    if not math.isfinite(diff) or not finite:
        call = "failed"
    elif abs(diff) > 2 * pooled:
        call = labels[1] if diff > 0 else labels[0]
    else:
        call = "tie"
    return {"difference": diff, "pooled_std": pooled, "winner": call,
            "paired_mean": statistics.fmean(paired) if finite else float("nan"),
            "paired_std": statistics.stdev(paired) if finite and len(paired) > 1 else float("nan"),
            "wins": sum(d > 0 for d in paired), "n": len(paired)}


# -- cost ------------------------------------------------------------------------------------------

def seconds_per_run(setting: Setting, short: int = 10, long: int = 40) -> float:
    """A training run's cost, from two timed runs (a fixed part and a per-step part)."""
    seed = usable_seeds(setting, 0, 1)[0]
    make = make_adamw(0.01)
    times = []
    for steps in (short, short, long):       # the first is a warm-up
        task = configure(Setting(setting.task, setting.batch_size, steps))
        _ = task.data
        t0 = time.perf_counter()
        task.train(make, seed=seed, lr=1e-3, time_limit=float("inf"))
        times.append(time.perf_counter() - t0)
    per_step = max(0.0, (times[2] - times[1]) / (long - short))
    return max(0.0, times[1] - short * per_step) + per_step * setting.steps


def runs_per_setting(tune_seeds: int, confirm_seeds: int, optimizers: int = 2) -> int:
    return optimizers * (EXPECTED_POINTS * tune_seeds + confirm_seeds)


# -- output ----------------------------------------------------------------------------------------

def write(out: Path, meta: dict, results: list[dict], runs: list[Run]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    with out.with_suffix(".csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(Run.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(r) for r in runs)
    md = out.with_suffix(".md")
    md.write_text(report.markdown(meta, results, report.kept_findings(md), CONFIRM_SEED_BASE, SMALL_BETAS))


def read_runs(path: Path) -> list[Run]:
    def number(text: str, kind=float):
        return None if text == "" else kind(text)
    with path.open(newline="") as fh:
        return [Run(r["task"], int(r["batch_size"]), int(r["steps"]), r["optimizer"], float(r["lr"]),
                    float(r["weight_decay"]), int(r["seed"]), r["purpose"], float(r["val_loss"]),
                    number(r["val_accuracy"]), number(r["train_loss"]), float(r["seconds"]),
                    r["failure"] or None) for r in csv.DictReader(fh)]


def summarise(setting: Setting, n_train: int, tuned: dict[str, Tuned]) -> dict:
    """One setting's result: each optimizer's side (by name), ``verdict`` (AdamW against Lion, when
    both ran) and ``comparisons``, every pair in the order the optimizers were given ("a-b":
    a against b, positive when b is better)."""
    def side(t: Tuned) -> dict:
        d = {k: getattr(t, k) for k in ("lr", "weight_decay", "tune_loss", "points", "confirm_losses",
                                        "confirm_accuracies", "grid")}
        d.update(mean=t.mean, std=t.std)
        return d
    names = list(tuned)
    r = {"task": setting.task, "batch_size": setting.batch_size, "steps": setting.steps,
         "epochs": setting.steps * setting.batch_size / n_train}
    r.update((name, side(t)) for name, t in tuned.items())
    if "adamw" in tuned and "lion" in tuned:
        r["verdict"] = verdict(tuned["adamw"], tuned["lion"])
    r["comparisons"] = {f"{a}-{b}": verdict(tuned[a], tuned[b], (report.LABELS[a], report.LABELS[b]))
                        for i, a in enumerate(names) for b in names[i + 1:]}
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="digits_mlp,noisy_digits,heavy_tail,large_batch,char_lm",
                    help="comma-separated task names (proxy size)")
    ap.add_argument("--batch-sizes", default="16,128,1024", help="comma-separated batch sizes")
    ap.add_argument("--steps-multipliers", default="1,4",
                    help="comma-separated multiples of each task's proxy step count")
    ap.add_argument("--steps", default="",
                    help="comma-separated training lengths in steps (instead of --steps-multipliers)")
    ap.add_argument("--optimizers", default="adamw,lion",
                    help=f"comma-separated, compared in this order; of {', '.join(OPTIMIZERS)}")
    ap.add_argument("--seeds", type=int, default=2, help="tuning seeds (the grid is tuned on their mean)")
    ap.add_argument("--confirm-seeds", type=int, default=5,
                    help="fresh seeds the tuned settings are compared on")
    ap.add_argument("--budget-minutes", type=float, default=40.0)
    ap.add_argument("--force", action="store_true", help="start even when the estimate exceeds the budget")
    ap.add_argument("--dry-run", action="store_true", help="print the cost estimate and stop")
    ap.add_argument("--append", action="store_true",
                    help="add to the results already in OUT.json, skipping settings it has")
    ap.add_argument("--augment-shift", type=int, default=0, metavar="PIXELS",
                    help="shift each training image at random by up to PIXELS each way (square image tasks; "
                         "a study of its own: --append only to an output made with the same value)")
    ap.add_argument("--out", default="experiments/results/lion_vs_adamw",
                    help="output path without suffix (.json, .csv, .md are written)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    names = [n for n in args.tasks.split(",") if n]
    for n in names:
        tasks.get(n)    # fail early on an unknown name
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    multipliers = [float(m) for m in args.steps_multipliers.split(",")]
    lengths = [int(s) for s in args.steps.split(",") if s]
    optimizers = [o for o in args.optimizers.split(",") if o]
    if args.seeds < 1 or args.confirm_seeds < 2:
        ap.error("need at least 1 tuning seed and 2 confirmation seeds")
    if not optimizers or set(optimizers) - set(OPTIMIZERS) or len(set(optimizers)) < len(optimizers):
        ap.error(f"--optimizers: distinct names of {', '.join(OPTIMIZERS)}, got {args.optimizers!r}")
    if any(s < 1 for s in lengths):
        ap.error("--steps: positive step counts")
    if args.augment_shift < 0:
        ap.error("--augment-shift: a number of pixels, 0 or more")

    out = Path(args.out)
    command = "python experiments/lion_vs_adamw.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results, runs, commands, wall = [], [], [], 0.0
    if args.append and out.with_suffix(".json").exists():
        old = json.loads(out.with_suffix(".json").read_text())
        results, runs = old["results"], read_runs(out.with_suffix(".csv"))
        commands, wall = old["meta"]["commands"], old["meta"]["wall_minutes"]
        if old["meta"].get("augment_shift", 0) != args.augment_shift:
            ap.error(f"--augment-shift {args.augment_shift}: {out.with_suffix('.json')} was made with "
                     f"{old['meta'].get('augment_shift', 0)}; write this study to another --out")
    done = {(r["task"], r["batch_size"], r["steps"]) for r in results if all(o in r for o in optimizers)}
    settings = [Setting(n, b, steps) for n in names
                for steps in (lengths or [max(1, round(tasks.get(n).steps * m)) for m in multipliers])
                for b in batch_sizes]
    settings = [s for s in settings if (s.task, s.batch_size, s.steps) not in done]
    per_run = runs_per_setting(args.seeds, args.confirm_seeds, len(optimizers))
    estimates = {}
    print(f"cost estimate ({per_run} training runs per setting, ~{EXPECTED_POINTS} grid points per optimizer, "
          f"{', '.join(optimizers)}):")
    for s in settings:
        estimates[s] = seconds_per_run(s) * per_run
        print(f"  {str(s):<40} {estimates[s] / 60:6.1f} min", flush=True)
    total = sum(estimates.values())
    print(f"  total {total / 60:.1f} min; budget {args.budget_minutes:.1f} min", flush=True)
    if args.dry_run:
        return 0
    if total > 60 * args.budget_minutes and not args.force:
        print("estimate exceeds the budget: drop settings or pass --force", file=sys.stderr)
        return 2

    meta = {"commands": commands + ([command] if settings else []), "torch": torch.__version__,
            "tune_seeds": args.seeds, "confirm_seeds": args.confirm_seeds, "estimate_minutes": total / 60,
            "skipped": [], "augment_shift": args.augment_shift,
            "grids": {k: {"lrs": list(v[1]), "wds": list(v[2])}
                      for k, v in OPTIMIZERS.items()}}
    start = time.perf_counter()
    for s in settings:
        if time.perf_counter() - start > 60 * args.budget_minutes:
            meta["skipped"].append(str(s))
            continue
        t0 = time.perf_counter()
        task = configure(s, args.augment_shift)
        tuned = {}
        seeds = usable_seeds(s, 0, args.seeds)
        fresh = usable_seeds(s, CONFIRM_SEED_BASE, args.confirm_seeds)
        new_runs = []
        for name in optimizers:
            tuned[name] = tune(task, s, name, seeds, new_runs)
            confirm(task, s, name, tuned[name], fresh, new_runs)
        r = summarise(s, len(task.data[0]), tuned)
        r.update(tune_seeds=seeds, confirm_seeds=fresh)
        key = (s.task, s.batch_size, s.steps)
        # a setting run again (it lacked an optimizer) replaces the old result and its runs
        results = [old for old in results if (old["task"], old["batch_size"], old["steps"]) != key] + [r]
        runs = [old for old in runs if (old.task, old.batch_size, old.steps) != key] + new_runs
        sides = "  ".join(f"{name} {r[name]['mean']:.4f}±{r[name]['std']:.4f} "
                          f"(lr {report.fmt_lr(r[name]['lr'])}, wd {r[name]['weight_decay']:g})" for name in optimizers)
        calls = "  ".join(f"{pair} {v['difference']:+.4f} t {report.paired_t(v, r[pair.split('-')[0]]):+.1f} "
                          f"{v['wins']}/{v['n']} -> {v['winner']}" for pair, v in r["comparisons"].items())
        print(f"{str(s):<40} {sides}  {calls}  [{time.perf_counter() - t0:.0f} s, est {estimates[s]:.0f} s]",
              flush=True)
        meta["wall_minutes"] = wall + (time.perf_counter() - start) / 60
        write(out, meta, results, runs)
    meta["wall_minutes"] = wall + (time.perf_counter() - start) / 60
    write(out, meta, results, runs)
    print(f"done in {meta['wall_minutes']:.1f} min; wrote {out}.md/.json/.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
