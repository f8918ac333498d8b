"""Population-based tuning of a program's learning rate and constants, on Ray Tune.

``evosearch tune PROGRAM --task NAME`` runs Ray Tune's ``PopulationBasedTraining`` (Jaderberg et al.
2017): ``samples`` models train side by side with the program's optimizer, each with its own
hyperparameters; every ``perturbation_interval`` training iterations (one iteration = a chunk of the
task's steps) the worst quarter copies the model and optimizer state of the best quarter (PBT's
*exploit*, restored from the checkpoint that trial reported: model ``state_dict``, the exported
optimizer's ``state_dict``, batch-sampler and RNG state) and perturbs the copied hyperparameters
(*explore*: each x0.8 or x1.2, or resampled with probability 0.25).

What is tuned (``search_space``):

- ``lr``, the value fed to the program's ``lr`` input (times the task's cosine schedule), log-uniform
  over two decades either side of the program's default: 1.0 for a program that scales ``lr`` by a
  literal itself (the warm start's ``lr = lr * 0.001``, so every program a search finds), else 1e-3
  (programs written like torch optimizers, e.g. Lion). ``--lr`` sets another default.
- the constants ``evosearch.hyperparams.infer`` names (the exported optimizer's constructor
  arguments): ``weight_decay`` log-uniform over two decades either side of its value, and each of
  ``betas`` (the literal ``interp`` weights, bias corrections follow them) as ``1 - beta``,
  log-uniform from a tenth to ten times its value (capped at 0.5), so that 0.999 moves towards 0.9999
  as easily as towards 0.99. A beta outside (0, 1) stays fixed.

PBT changes the hyperparameters during training, so the population's final configurations are
re-trained from scratch with fixed settings (rounded to 3 significant digits) next to the program's
defaults; the best of those is reported, and is what the written program contains. All fitnesses use
the task's definition (``tasks.base``): 1.0 is tuned AdamW at the same seed and budget.

The written program is calibrated for ``lr`` input 1.0, like every program a search finds: the
tuned learning rate is folded into the program, into its ``lr = lr * c`` statement when it has one,
else as a new first statement ``lr = lr * c``; ``task.evaluate(written)`` reproduces the tuned run.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from . import hyperparams
from .analysis import dataflow, needed_statements, reads_input
from .program import LR, Const, Program, Statement, Var, const

TUNABLE = ("lr", "weight_decay", "betas")
LR_DEFAULT_SCALED = 1.0       # programs that scale lr themselves are searched and scored at lr 1
LR_DEFAULT_RAW = 1e-3         # torch-style programs (update * lr): the usual optimizer default
LR_DECADES = 2.0              # lr and weight decay range: this many decades either side of the default
BETA_GAP_RANGE = 10.0         # 1 - beta ranges over [gap / 10, gap * 10]
BETA_GAP_MAX = 0.5            # ... but beta stays >= 0.5
SIGNIFICANT_DIGITS = 3        # tuned settings are rounded to this before the final re-training
RETRAINED = 3                 # the best final configurations re-trained from scratch
CHECKPOINT_FILE = "training_state.pt"


# -- the search space (pure) --------------------------------------------------------------------

@dataclass(frozen=True)
class Hyperparameter:
    """One tuned quantity: the Ray Tune config key ``key`` holds the sampled value, which is the
    hyperparameter itself or, for a beta (``complement``), ``1 - beta``; log-uniform on [low, high]."""

    key: str
    target: str                   # "lr", "weight_decay" or "betas"
    index: int | None             # position in betas
    low: float
    high: float
    default: float                # default of the sampled value
    complement: bool = False

    def value(self, sampled: float) -> float:
        return 1.0 - sampled if self.complement else sampled

    def clip(self, sampled: float) -> float:
        return min(max(float(sampled), self.low), self.high)

    def __str__(self) -> str:
        what = f"1 - betas[{self.index}]" if self.complement else self.target
        return f"{what} in [{self.low:.3g}, {self.high:.3g}] (log), default {self.default:.3g}"


@dataclass(frozen=True)
class Setting:
    """What an optimizer is trained with: the ``lr`` input and the constructor hyperparameters."""

    lr: float
    hyper: dict = field(default_factory=dict)     # betas (tuple), weight_decay

    def __str__(self) -> str:
        parts = [f"lr {_fmt(self.lr)}"]
        for k, v in self.hyper.items():
            parts.append(f"{k} ({', '.join(map(_fmt, v))})" if isinstance(v, tuple) else f"{k} {_fmt(v)}")
        return ", ".join(parts)

    def as_dict(self) -> dict:
        return {"lr": self.lr, **{k: list(v) if isinstance(v, tuple) else v for k, v in self.hyper.items()}}


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Hyperparameter, ...]
    default: Setting

    def setting(self, config: dict) -> Setting:
        """The setting of a Ray Tune config (keys not in the config keep their defaults)."""
        lr, hyper = self.default.lr, dict(self.default.hyper)
        betas = list(hyper.get("betas", ()))
        for p in self.params:
            if p.key not in config:
                continue
            v = p.value(p.clip(config[p.key]))
            if p.target == "lr":
                lr = v
            elif p.target == "betas":
                betas[p.index] = v
            else:
                hyper[p.target] = v
        if betas:
            hyper["betas"] = tuple(betas)
        return Setting(lr, hyper)

    def config(self, setting: Setting) -> dict:
        out = {}
        for p in self.params:
            v = setting.lr if p.target == "lr" else setting.hyper[p.target]
            v = v[p.index] if p.index is not None else v
            out[p.key] = 1.0 - v if p.complement else v
        return out

    def clip(self, config: dict) -> dict:
        """PBT's explore step multiplies values by 0.8 or 1.2; keep them inside the space."""
        return {**config, **{p.key: p.clip(config[p.key]) for p in self.params if p.key in config}}

    def initial_population(self, n: int, seed: int = 0) -> list[dict]:
        """The program's defaults, then n - 1 configurations spread over the space by Latin
        hypercube sampling on the log scale (deterministic for a seed)."""
        rng = np.random.default_rng(seed)
        population = [self.config(self.default)]
        m = n - 1
        columns = []
        for p in self.params:
            u = (rng.permutation(m) + rng.random(m)) / max(m, 1)
            columns.append(np.exp(np.log(p.low) + u * (np.log(p.high) - np.log(p.low))))
        for j in range(m):
            population.append({p.key: float(col[j]) for p, col in zip(self.params, columns)})
        return population[:n]

    def __str__(self) -> str:
        return "; ".join(map(str, self.params))


def scales_lr(prog: Program) -> bool:
    """Does the program multiply its ``lr`` input by a literal itself (the warm start's ``lr * 0.001``)?"""
    return _lr_scale_statement(prog) is not None


def _lr_scale_statement(prog: Program) -> tuple[int, int] | None:
    """(statement, literal position) of the one statement that reads the ``lr`` input, when it is
    ``x = lr * c`` with a plain literal c; None otherwise."""
    flow = dataflow(prog)
    readers = [i for i in needed_statements(prog) if ("in", LR) in flow.reads[i]]
    if len(readers) != 1:
        return None
    s = prog.statements[readers[0]]
    if s.op != "multiply":
        return None
    for pos in (0, 1):
        a, other = s.args[pos], s.args[1 - pos]
        if isinstance(a, Const) and not a.name and isinstance(other, Var) and other.name == LR:
            return readers[0], pos
    return None


def search_space(prog: Program, lr: float | None = None, tunables=None) -> SearchSpace:
    """What ``tune`` searches for ``prog`` (see the module docstring). ``tunables`` is a subset of
    ``("lr", "weight_decay", "betas")``; by default all that the program has."""
    wanted = TUNABLE if tunables is None else tuple(tunables)
    unknown = set(wanted) - set(TUNABLE)
    if unknown:
        raise ValueError(f"cannot tune {', '.join(sorted(unknown))}; tunable: {', '.join(TUNABLE)}")
    spec = hyperparams.infer(prog)
    if lr is None:
        lr = LR_DEFAULT_SCALED if scales_lr(prog) else LR_DEFAULT_RAW
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"the default learning rate must be positive, got {lr}")
    span = 10.0 ** LR_DECADES
    params = []
    if "lr" in wanted and reads_input(prog, LR):
        params.append(Hyperparameter("lr", "lr", None, lr / span, lr * span, lr))
    wd = spec.defaults.get("weight_decay")
    if "weight_decay" in wanted and wd is not None:
        centre = abs(wd) if wd != 0 else 1e-3
        params.append(Hyperparameter("weight_decay", "weight_decay", None, centre / span, centre * span,
                                     min(max(wd, centre / span), centre * span)))
    if "betas" in wanted:
        for k, beta in enumerate(spec.defaults.get("betas", ())):
            if 0.0 < beta < 1.0:
                gap = 1.0 - beta
                low, high = gap / BETA_GAP_RANGE, min(gap * BETA_GAP_RANGE, BETA_GAP_MAX)
                params.append(Hyperparameter(f"one_minus_beta{k + 1}", "betas", k, low, max(high, gap),
                                             gap, complement=True))
    return SearchSpace(tuple(params), Setting(float(lr), dict(spec.defaults)))


def rounded(setting: Setting, space: SearchSpace, digits: int = SIGNIFICANT_DIGITS) -> Setting:
    """The setting with every tuned value rounded to ``digits`` significant digits (a beta through
    ``1 - beta``), so that the written program has readable constants."""
    return space.setting({k: _round(v, digits) for k, v in space.config(setting).items()})


def _round(x: float, digits: int) -> float:
    return float(f"{x:.{digits}g}")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


# -- the tuned program (pure) -------------------------------------------------------------------

def tuned_program(prog: Program, setting: Setting) -> Program:
    """``prog`` with the setting's constants in place of its defaults and its learning rate folded
    in, so that it trains with ``setting`` when fed ``lr`` input 1.0."""
    spec = hyperparams.infer(prog)
    stmts = list(prog.statements)
    for (i, pos), (name, index) in spec.bindings.items():
        value = setting.hyper[name] if index is None else setting.hyper[name][index]
        args = list(stmts[i].args)
        args[pos] = const(value)
        stmts[i] = replace(stmts[i], args=tuple(args))
    prog = replace(prog, statements=tuple(stmts))
    if setting.lr == 1.0 or not reads_input(prog, LR):
        return prog
    where = _lr_scale_statement(prog)
    if where is not None:
        i, pos = where
        args = list(stmts[i].args)
        args[pos] = const(_round(float(args[pos].value) * setting.lr, 6))
        stmts[i] = replace(stmts[i], args=tuple(args))
    else:
        stmts.insert(0, Statement(LR, "multiply", (Var(LR), const(setting.lr))))
    return replace(prog, statements=tuple(stmts))


# -- training in chunks, with checkpoints ---------------------------------------------------------

class TrainingRun:
    """``Task.train``'s loop (same seed handling, schedule, batches and failure checks), cut into
    chunks of steps, with a checkpoint of everything it needs to continue exactly: model and
    optimizer ``state_dict``, the batch sampler's generator, torch's RNG, the step and the recent
    losses. Loading a checkpoint keeps this run's own setting (PBT's exploit: another trial's state,
    this trial's hyperparameters)."""

    def __init__(self, task, prog: Program, setting: Setting, seed: int = 0, flat: bool = True):
        from . import to_optimizer
        self.task, self.setting, self.seed = task, setting, seed
        x_train, _, x_val, y_val = task.data
        torch.manual_seed(seed)
        self.model = task.make_model()
        with torch.no_grad():
            self.initial_loss = task.metrics(self.model, x_val, y_val)["val_loss"]
        cls = to_optimizer(prog, flat=flat)
        self.optimizer = cls(self.model.parameters(), lr=setting.lr, **setting.hyper)
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self.step = 0
        self.recent: list[float] = []      # the last 10 training losses (divergence check)
        self.failure: str | None = None

    def advance(self, steps: int) -> None:
        """Train ``steps`` more steps (fewer at the end). After a failure the run only counts steps."""
        from tasks import TrainingFailure
        from tasks.base import lr_factor
        task, opt, model = self.task, self.optimizer, self.model
        x_train, y_train, _, _ = task.data
        n, total = len(x_train), task.steps
        end = min(self.step + steps, total)
        if self.failure is not None:
            self.step = end
            return
        try:
            for step in range(self.step, end):
                for group in opt.param_groups:
                    group["lr"] = self.setting.lr * lr_factor(step, total)
                idx = (torch.randint(0, n, (task.batch_size,), generator=self.generator)
                       if task.batch_size < n else None)
                xb, yb = (x_train, y_train) if idx is None else (x_train[idx], y_train[idx])
                opt.zero_grad()
                loss = task.loss(model(xb), yb)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingFailure(f"non-finite training loss at step {step}")
                self.recent = (self.recent + [value])[-10:]
                median = sorted(self.recent)[len(self.recent) // 2]
                if median > 10.0 * max(self.initial_loss, 1e-3) + 10.0:
                    raise TrainingFailure(f"training loss diverged at step {step}")
                loss.backward()
                opt.step()
                if step % 10 == 9 or step == total - 1:
                    with torch.no_grad():
                        biggest = max(float(p.detach().abs().max()) for p in model.parameters())
                    if not math.isfinite(biggest) or biggest > 1e4:
                        raise TrainingFailure(f"parameters blew up at step {step}")
            self.step = end
        except TrainingFailure as exc:
            self.failure, self.step = str(exc), end
        except Exception as exc:  # noqa: BLE001 - a program's arithmetic must not kill the trial
            self.failure, self.step = f"exception during training: {type(exc).__name__}: {exc}", end

    def val_loss(self) -> float:
        if self.failure is not None:
            return math.inf
        _, _, x_val, y_val = self.task.data
        with torch.no_grad(), torch.random.fork_rng():   # evaluating must not move the RNG
            loss = self.task.metrics(self.model, x_val, y_val)["val_loss"]
        return loss if math.isfinite(loss) else math.inf

    def state_dict(self) -> dict:
        return {"step": self.step, "recent": list(self.recent), "failure": self.failure,
                "initial_loss": self.initial_loss, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:      # this run's hyperparameters, not the donor's
            group.update(self.setting.hyper)
            group["lr"] = self.setting.lr
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.recent = int(state["step"]), [float(x) for x in state["recent"]]
        self.failure, self.initial_loss = state["failure"], float(state["initial_loss"])

    def save(self, directory: str | Path) -> None:
        torch.save(self.state_dict(), Path(directory) / CHECKPOINT_FILE)

    def load(self, directory: str | Path) -> None:
        # weights_only: a checkpoint holds tensors and plain values, never code
        self.load_state_dict(torch.load(Path(directory) / CHECKPOINT_FILE, weights_only=True))


# -- Ray Tune ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrialJob:
    """What every trial needs; plain values, so that it travels to Ray workers as data."""

    program: str                  # program text (parsed again in the worker, never unpickled)
    task: str
    size: str
    seed: int
    baseline: tuple               # (initial loss, tuned AdamW loss, its lr)
    space: SearchSpace
    steps_per_iteration: int


def _task(job: TrialJob):
    import tasks
    from tasks.base import Baseline
    task = tasks.get(job.task, job.size)
    task.known_baselines[job.seed] = Baseline(*job.baseline, {})
    return task


def _fitness(task, val_loss: float, seed: int) -> float:
    from tasks import FAILURE_FITNESS
    return task.fitness(val_loss, seed) if math.isfinite(val_loss) else FAILURE_FITNESS


def _trial(config: dict, job: TrialJob) -> None:
    """One PBT trial (a Ray Tune function trainable): train in chunks, report fitness and a
    checkpoint after each; start from the checkpoint Ray Tune hands over (a pause, or an exploit)."""
    from ray import tune as ray_tune
    torch.set_num_threads(1)
    task = _task(job)
    setting = job.space.setting(config)
    run = TrainingRun(task, Program.parse(job.program), setting, job.seed)
    checkpoint = ray_tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            run.load(folder)
    while run.step < task.steps:
        run.advance(job.steps_per_iteration)
        val = run.val_loss()
        metrics = {"fitness": _fitness(task, val, job.seed), "val_loss": val, "step": run.step,
                   "failed": run.failure is not None}
        with tempfile.TemporaryDirectory() as folder:
            run.save(folder)
            ray_tune.report(metrics, checkpoint=ray_tune.Checkpoint.from_directory(folder))


def _retrain(job: TrialJob, setting: Setting) -> tuple[float, float, str | None]:
    """A fresh training run with a fixed setting, scored as ``task.evaluate`` scores it:
    (fitness, validation loss, failure)."""
    from . import to_optimizer
    torch.set_num_threads(1)
    task = _task(job)
    cls = to_optimizer(Program.parse(job.program), flat=True)
    r = task.evaluate_optimizer(lambda params, lr: cls(params, lr=lr, **setting.hyper), job.seed,
                                setting.lr)
    return r.fitness, r.metrics.get("val_loss", math.inf), r.failure


@dataclass(frozen=True)
class Outcome:
    setting: Setting
    fitness: float
    val_loss: float
    failure: str | None = None


@dataclass(frozen=True)
class TuneResult:
    task: str
    size: str
    seed: int
    program: Program              # the tuned program (lr folded in; for lr input 1.0)
    best: Outcome                 # the best setting, re-trained from scratch
    defaults: Outcome             # the program's own constants, at the default lr
    adamw_val_loss: float         # tuned AdamW (fitness 1.0 by definition)
    adamw_lr: float
    pbt_fitness: float            # the best PBT trial at the end of training (hyperparameter schedule)
    trials: tuple                 # (final Setting, final fitness) of each PBT trial, best first
    retrained: tuple[Outcome, ...]
    exploits: int
    seconds: float
    space: SearchSpace
    path: Path | None = None      # where the tuned program was written

    adamw_fitness: float = 1.0

    def __str__(self) -> str:
        lines = [f"tuned on {self.task} ({self.size}, seed {self.seed}): {len(self.trials)} PBT trials, "
                 f"{self.exploits} exploits, {self.seconds:.0f} s",
                 f"  searched: {self.space}"]
        rows = [("best", self.best), ("defaults", self.defaults)]
        for label, o in rows:
            tail = f"  ({o.failure})" if o.failure else ""
            lines.append(f"  {label:<9} fitness {o.fitness:7.4f}  val loss {o.val_loss:.4f}  {o.setting}{tail}")
        lines.append(f"  {'AdamW':<9} fitness {self.adamw_fitness:7.4f}  val loss {self.adamw_val_loss:.4f}  "
                     f"tuned AdamW (lr {_fmt(self.adamw_lr)}, weight_decay 0.01)")
        lines.append(f"  best PBT trial (hyperparameters changing during training): fitness {self.pbt_fitness:.4f}")
        if self.path:
            lines.append(f"  tuned program: {self.path}")
        return "\n".join(lines)


def tune(prog: Program, task_name: str, samples: int = 8, time_limit: float | None = None,
         address: str | None = None, seed: int = 0, size: str = "proxy", *, lr: float | None = None,
         tunables=None, iterations: int = 10, perturbation_interval: int = 2, workers: int | None = None,
         storage_path: str | Path | None = None, out: str | Path | None = None, echo=print) -> TuneResult:
    """Tune ``prog``'s learning rate and constants with PBT on ``task_name`` (see the module
    docstring). ``iterations`` chunks of training, PBT every ``perturbation_interval`` of them;
    ``time_limit`` stops the trials after that many seconds; ``out`` writes the tuned program."""
    import ray
    from ray import tune as ray_tune
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search.basic_variant import BasicVariantGenerator

    import tasks
    from .executor import init_ray

    if samples < 2:
        raise ValueError("PBT needs at least 2 samples")
    start = time.perf_counter()
    task = tasks.get(task_name, size)
    space = search_space(prog, lr, tunables)
    if not space.params:
        raise ValueError("the program has nothing to tune (no lr input read, no weight decay, no betas)")
    base = task.baseline(seed)
    steps_per_iteration = math.ceil(task.steps / max(1, iterations))
    job = TrialJob(str(prog), task_name, size, seed, (base.initial_loss, base.best_loss, base.best_lr),
                   space, steps_per_iteration)
    init_ray(address, workers)
    echo(f"tuning on {task_name} ({size}, seed {seed}): {samples} trials, "
         f"{math.ceil(task.steps / steps_per_iteration)} iterations of {steps_per_iteration} steps, "
         f"PBT every {perturbation_interval}, {int(ray.cluster_resources().get('CPU', 1))} CPUs")

    random.seed(seed)   # PBT's explore step draws from Python's global RNG
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", metric="fitness", mode="max",
        perturbation_interval=perturbation_interval, synch=True,
        hyperparam_mutations={p.key: ray_tune.loguniform(p.low, p.high) for p in space.params},
        custom_explore_fn=space.clip)
    population = space.initial_population(samples, seed)
    trainable = ray_tune.with_resources(ray_tune.with_parameters(_trial, job=job), {"cpu": 1})
    with tempfile.TemporaryDirectory(prefix="evosearch-tune-") as scratch:
        storage = Path(storage_path or scratch).resolve()
        tuner = ray_tune.Tuner(
            trainable,
            param_space={p.key: ray_tune.loguniform(p.low, p.high) for p in space.params},
            tune_config=ray_tune.TuneConfig(
                scheduler=scheduler, num_samples=samples, time_budget_s=time_limit, reuse_actors=True,
                search_alg=BasicVariantGenerator(points_to_evaluate=population, random_state=seed)),
            run_config=ray_tune.RunConfig(
                name=f"tune-{task_name}-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=str(storage),
                verbose=0, checkpoint_config=ray_tune.CheckpointConfig(num_to_keep=4)))
        grid = tuner.fit()
        exploits = _count_exploits(Path(grid.experiment_path))
        finals = []
        for r in grid:
            if r.metrics and "fitness" in r.metrics:
                finals.append((space.setting(r.config), float(r.metrics["fitness"]), int(r.metrics["step"])))
    if not finals:
        raise RuntimeError("no PBT trial reported a result (see the Ray Tune logs)")
    finals.sort(key=lambda f: (f[2], f[1]), reverse=True)

    # Re-train the best final settings (rounded) and the defaults from scratch, in parallel.
    candidates = []
    for setting, _, _ in finals:
        s = rounded(setting, space)
        if s not in candidates:
            candidates.append(s)
        if len(candidates) == RETRAINED:
            break
    retrain = ray.remote(num_cpus=1)(_retrain)
    refs = [retrain.remote(job, s) for s in [space.default] + candidates]
    outcomes = [Outcome(s, *r) for s, r in zip([space.default] + candidates, ray.get(refs))]
    defaults = outcomes[0]
    best = max(outcomes, key=lambda o: o.fitness)
    tuned = tuned_program(prog, best.setting)
    result = TuneResult(task_name, size, seed, tuned, best, defaults, base.best_loss, base.best_lr,
                        finals[0][1], tuple((s, f) for s, f, _ in finals), tuple(outcomes[1:]),
                        exploits, time.perf_counter() - start, space)
    if out is not None:
        result = replace(result, path=write_program(result, prog, out))
    return result


def _count_exploits(experiment: Path) -> int:
    log = experiment / "pbt_global.txt"
    return sum(1 for _ in log.open()) if log.is_file() else 0


def write_program(result: TuneResult, original: Program, path: str | Path) -> Path:
    """Write the tuned program, with a header saying how it was tuned and how it scored."""
    path = Path(path)
    b, d = result.best, result.defaults
    header = [
        f"Tuned by `evosearch tune` (PBT, {len(result.trials)} trials) on {result.task} "
        f"({result.size}, seed {result.seed}).",
        f"Setting: {b.setting}.",
        f"Fitness {b.fitness:.4f} (program defaults, {d.setting}: {d.fitness:.4f}; tuned AdamW: 1.0).",
        "Calibrated for lr input 1.0: the tuned lr is folded into the program.",
    ]
    if b.setting == d.setting:
        header.insert(1, "The program's own defaults scored best.")
    text = "".join(f"# {line}\n" for line in header) + str(result.program)
    Program.parse(text)   # what we write must load
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- command line -----------------------------------------------------------------------------------

def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "tune", help="tune a program's lr and constants with population-based training (Ray Tune)",
        description="Tune a program's learning rate, weight decay and interpolation weights with Ray "
                    "Tune's PopulationBasedTraining on one task; report the best setting's fitness "
                    "against the program's defaults and tuned AdamW, and write the tuned program.")
    p.add_argument("program", help="a program file, a reference program name, or RUN:best / RUN:ID")
    p.add_argument("--task", required=True, help="the task to tune on (see tasks.names())")
    p.add_argument("--size", default="proxy", help="task size (default proxy)")
    p.add_argument("--samples", type=int, default=8, help="PBT population size (default 8)")
    p.add_argument("--time-limit", type=float, help="stop the trials after this many seconds")
    p.add_argument("--address", help="join the Ray cluster at this address (default $RAY_ADDRESS, "
                   "else an embedded local Ray)")
    p.add_argument("--workers", type=int, help="CPUs of the embedded local Ray (default: all)")
    p.add_argument("--seed", type=int, default=0, help="training seed and PBT seed (default 0)")
    p.add_argument("--lr", type=float, help="the default lr input (centre of the lr range; default 1 "
                   "for programs that scale lr themselves, else 1e-3)")
    p.add_argument("--params", help=f"comma-separated subset of {','.join(TUNABLE)} (default: all)")
    p.add_argument("--iterations", type=int, default=10, help="training chunks (default 10)")
    p.add_argument("--perturbation-interval", type=int, default=2,
                   help="iterations between PBT exploit/explore steps (default 2)")
    p.add_argument("--storage", help="folder for Ray Tune's results (default: a temporary folder)")
    p.add_argument("--out", help="the tuned program file (default: tuned_<task>.py)")
    p.set_defaults(fn=_cmd_tune)


def _cmd_tune(args) -> int:
    import tasks
    from .cli import load_program_spec
    prog = load_program_spec(args.program)
    if args.task not in tasks.names():
        raise ValueError(f"unknown task {args.task!r}; known: {', '.join(tasks.names())}")
    tunables = [s.strip() for s in args.params.split(",") if s.strip()] if args.params else None
    out = args.out or f"tuned_{args.task}.py"
    result = tune(prog, args.task, args.samples, args.time_limit, args.address, args.seed, args.size,
                  lr=args.lr, tunables=tunables, iterations=args.iterations,
                  perturbation_interval=args.perturbation_interval, workers=args.workers,
                  storage_path=args.storage, out=out)
    print(result)
    return 0
