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
import os
import random
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .program import Program
from .tune_space import SearchSpace, Setting, TUNABLE, _fmt, rounded, search_space, tuned_program

RETRAINED = 3                 # the best final configurations re-trained from scratch
CHECKPOINT_FILE = "training_state.pt"

# -- training in chunks, with checkpoints ---------------------------------------------------------

class TrainingRun:
    """``Task.train``'s loop (same seed handling, schedule, batches and failure checks), cut into
    chunks of steps, with a checkpoint of everything it needs to continue exactly: model and
    optimizer ``state_dict``, the batch sampler's generator, torch's RNG, the step and the recent
    losses. Loading a checkpoint keeps this run's own setting (PBT's exploit: another trial's state,
    this trial's hyperparameters)."""

    def __init__(self, task, prog: Program, setting: Setting, seed: int = 0, flat: bool = True):
        from tasks.base import torch_threads
        from . import to_optimizer
        self.task, self.setting, self.seed = task, setting, seed
        _, _, x_val, y_val = task.data
        torch.manual_seed(seed)
        self.model = task.make_model()
        with torch.no_grad(), torch_threads(1):
            self.initial_loss = task.metrics(self.model, x_val, y_val)["val_loss"]
        cls = to_optimizer(prog, flat=flat)
        self.optimizer = cls(self.model.parameters(), lr=setting.lr, **setting.hyper)
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self.step = 0
        self.recent: list[float] = []      # the last training losses (divergence check)
        self.failure: str | None = None

    def advance(self, steps: int) -> None:
        """Train ``steps`` more steps (fewer at the end). After a failure the run only counts steps."""
        from tasks import TrainingFailure
        from tasks.base import torch_threads
        end = min(self.step + steps, self.task.steps)
        try:
            if self.failure is None:
                with torch_threads(1):     # as Task.train: bit-for-bit reproducible
                    self._train(end)
        except TrainingFailure as exc:
            self.failure = str(exc)
        except Exception as exc:  # noqa: BLE001 - a program's arithmetic must not kill the trial
            self.failure = f"exception during training: {type(exc).__name__}: {exc}"
        self.step = end

    def _train(self, end: int) -> None:
        from tasks import TrainingFailure
        from tasks.base import DIVERGENCE_WINDOW, loss_failure, lr_factor, weight_failure
        task, opt, model = self.task, self.optimizer, self.model
        x_train, y_train, _, _ = task.data
        n, total = len(x_train), task.steps
        for step in range(self.step, end):
            for group in opt.param_groups:
                group["lr"] = self.setting.lr * lr_factor(step, total)
            idx = (torch.randint(0, n, (task.batch_size,), generator=self.generator)
                   if task.batch_size < n else None)
            xb, yb = (x_train, y_train) if idx is None else (x_train[idx], y_train[idx])
            opt.zero_grad()
            loss = task.loss(model(xb), yb)
            value = float(loss.detach())
            self.recent = (self.recent + [value])[-DIVERGENCE_WINDOW:]
            failure = loss_failure(self.recent, self.initial_loss, step)
            if failure:
                raise TrainingFailure(failure)
            loss.backward()
            opt.step()
            if step % 10 == 9 or step == total - 1:
                with torch.no_grad():
                    biggest = max(float(p.detach().abs().max()) for p in model.parameters())
                failure = weight_failure(biggest, step)
                if failure:
                    raise TrainingFailure(failure)

    def val_loss(self) -> float:
        if self.failure is not None:
            return math.inf
        from tasks.base import torch_threads
        _, _, x_val, y_val = self.task.data
        with torch.no_grad(), torch_threads(1), torch.random.fork_rng():  # must not move the RNG
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
        for group in self.optimizer.param_groups:   # this run's hyperparameters, not the donor's
            group.update(self.setting.hyper)          # (lr follows the schedule at every step)
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
    pbt_fitness: float            # the best PBT trial at the end (hyperparameters changed during training)
    pbt_step: int                 # ... and the step it reached (the task's steps unless time ran out)
    steps: int
    trials: tuple                 # (final Setting, final fitness) of each PBT trial, best first
    retrained: tuple[Outcome, ...]
    exploits: int
    seconds: float
    space: SearchSpace
    history: tuple = ()           # (trial id, iteration, step, fitness) of every PBT report, in order
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
        lines.append(f"  best PBT trial after {self.pbt_step}/{self.steps} steps (hyperparameters changing "
                     f"during training): fitness {self.pbt_fitness:.4f}")
        if self.path:
            lines.append(f"  tuned program: {self.path}")
        return "\n".join(lines)


def tune(prog: Program, task_name: str, samples: int = 8, time_limit: float | None = None,
         address: str | None = None, seed: int = 0, size: str = "proxy", *, lr: float | None = None,
         tunables=None, iterations: int = 10, perturbation_interval: int = 2,
         perturbation_factors: tuple[float, float] = (1.2, 0.8), resample_probability: float = 0.25,
         workers: int | None = None, storage_path: str | Path | None = None, out: str | Path | None = None,
         echo=print) -> TuneResult:
    """Tune ``prog``'s learning rate and constants with PBT on ``task_name`` (see the module
    docstring). ``iterations`` chunks of training, PBT every ``perturbation_interval`` of them
    (``perturbation_factors`` and ``resample_probability`` are PBT's explore step); ``time_limit``
    stops the trials after that many seconds; ``workers`` CPUs for an embedded local Ray;
    ``storage_path`` keeps Ray Tune's results (default: a temporary folder); ``out`` writes the
    tuned program."""
    import ray

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
    chunk = math.ceil(task.steps / max(1, iterations))
    job = TrialJob(str(prog), task_name, size, seed, (base.initial_loss, base.best_loss, base.best_lr),
                   space, chunk)
    init_ray(address, workers)
    echo(f"tuning on {task_name} ({size}, seed {seed}): {samples} trials, {math.ceil(task.steps / chunk)} "
         f"iterations of {chunk} steps, PBT every {perturbation_interval}, "
         f"{int(ray.cluster_resources().get('CPU', 1))} CPUs")
    pbt = dict(perturbation_interval=perturbation_interval, perturbation_factors=perturbation_factors,
               resample_probability=resample_probability)
    finals, exploits, history = _population_based_training(job, samples, time_limit, storage_path, pbt, echo)

    # PBT's hyperparameters changed during training: re-train the best final settings (rounded)
    # and the defaults from scratch with fixed settings, in parallel.
    candidates = []
    for setting, _, _ in finals:
        if rounded(setting, space) not in candidates:
            candidates.append(rounded(setting, space))
    settings = [space.default] + candidates[:RETRAINED]
    retrain = ray.remote(num_cpus=1)(_retrain)
    outcomes = [Outcome(s, *r) for s, r in zip(settings, ray.get([retrain.remote(job, s) for s in settings]))]
    best = max(outcomes, key=lambda o: o.fitness)
    result = TuneResult(
        task=task_name, size=size, seed=seed, program=tuned_program(prog, best.setting), best=best,
        defaults=outcomes[0], adamw_val_loss=base.best_loss, adamw_lr=base.best_lr,
        pbt_fitness=finals[0][1], pbt_step=finals[0][2], steps=task.steps,
        trials=tuple((s, f) for s, f, _ in finals), retrained=tuple(outcomes[1:]), exploits=exploits,
        seconds=time.perf_counter() - start, space=space, history=history)
    if out is not None:
        result = replace(result, path=write_program(result, out))
    return result


def _population_based_training(job: TrialJob, samples: int, time_limit: float | None,
                               storage_path, pbt: dict, echo) -> tuple[list, int, tuple]:
    """Run the trials under Ray Tune's PBT. Returns the final (setting, fitness, step) of every
    trial, most trained and best first; the number of exploits; every report (see ``TuneResult``)."""
    from ray import tune as ray_tune
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.search.basic_variant import BasicVariantGenerator

    import tasks
    space, steps = job.space, tasks.get(job.task, job.size).steps
    random.seed(job.seed)   # PBT's explore step draws from Python's global RNG
    # synch: the population is compared at the same training iteration, also when there are more
    # trials than CPUs (they then take turns)
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", metric="fitness", mode="max", synch=True,
        hyperparam_mutations={p.key: ray_tune.loguniform(p.low, p.high) for p in space.params},
        custom_explore_fn=space.clip, **pbt)
    trainable = ray_tune.with_resources(ray_tune.with_parameters(_trial, job=job), {"cpu": 1})
    progress = _progress(samples, math.ceil(steps / job.steps_per_iteration), echo)
    population = space.initial_population(samples, job.seed)
    with tempfile.TemporaryDirectory(prefix="evosearch-tune-") as scratch, _quiet_tune():
        tuner = ray_tune.Tuner(
            trainable,
            param_space={p.key: ray_tune.loguniform(p.low, p.high) for p in space.params},
            tune_config=ray_tune.TuneConfig(
                scheduler=scheduler, num_samples=samples, time_budget_s=time_limit, reuse_actors=True,
                search_alg=BasicVariantGenerator(points_to_evaluate=population, random_state=job.seed)),
            run_config=ray_tune.RunConfig(
                name=f"tune-{job.task}-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(Path(storage_path or scratch).resolve()),
                # a trial that has trained all steps stops before PBT sees its result: no pointless
                # exploit of a finished model
                stop={"step": steps}, verbose=0, callbacks=[progress],
                checkpoint_config=ray_tune.CheckpointConfig(num_to_keep=4)))
        grid = tuner.fit()
        exploits = _count_exploits(Path(grid.experiment_path))
        finals = [(space.setting(r.config), float(r.metrics["fitness"]), int(r.metrics["step"]))
                  for r in grid if r.metrics and "fitness" in r.metrics]
    if not finals and time_limit is not None:
        raise TimeoutError(f"no trial finished a training iteration within the time limit of "
                           f"{time_limit:g} s (starting Ray workers takes a few seconds); allow more time")
    if not finals:
        raise RuntimeError("no PBT trial reported a result (see the Ray Tune logs)")
    finals.sort(key=lambda f: (f[2], f[1]), reverse=True)
    return finals, exploits, tuple(progress.history)


@contextmanager
def _quiet_tune():
    """Ray Tune without its console tables and per-trial result files (we print our own summary)."""
    import logging
    names = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(names)
    log = logging.getLogger("ray.tune")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _progress(samples: int, iterations: int, echo):
    from ray.tune import Callback

    class Progress(Callback):
        """Records every trial report; prints one line when the population has finished an iteration."""

        def __init__(self, samples: int, iterations: int, echo):
            self.samples, self.iterations, self.echo = samples, iterations, echo
            self.history: list[tuple] = []
            self.at: dict[int, list[float]] = {}
            self.start = time.perf_counter()

        def on_trial_result(self, iteration, trials, trial, result, **info):
            it, fitness = int(result["training_iteration"]), float(result["fitness"])
            self.history.append((trial.trial_id, it, int(result["step"]), fitness))
            self.at.setdefault(it, []).append(fitness)
            if len(self.at[it]) == self.samples:
                f = sorted(self.at[it])
                self.echo(f"  iteration {it}/{self.iterations}: fitness best {f[-1]:.4f}, "
                          f"median {f[len(f) // 2]:.4f}  ({time.perf_counter() - self.start:.0f} s)")

    return Progress(samples, iterations, echo)


def _count_exploits(experiment: Path) -> int:
    log = experiment / "pbt_global.txt"
    return sum(1 for _ in log.open()) if log.is_file() else 0


def write_program(result: TuneResult, path: str | Path) -> Path:
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
    p.add_argument("--out", help="the tuned program file (default: tuned_<program>_<task>.py)")
    p.set_defaults(fn=_cmd_tune)


def _cmd_tune(args) -> int:
    import tasks
    from .cli import load_program_spec
    prog = load_program_spec(args.program)
    try:
        tasks.get(args.task, args.size)
    except KeyError as exc:          # an unknown task or size: a usage error, not a crash
        raise ValueError(exc.args[0]) from None
    tunables = [s.strip() for s in args.params.split(",") if s.strip()] if args.params else None
    out = args.out or f"tuned_{re.sub(r'[^0-9A-Za-z]+', '_', Path(args.program).stem)}_{args.task}.py"
    result = tune(prog, args.task, args.samples, args.time_limit, args.address, args.seed, args.size,
                  lr=args.lr, tunables=tunables, iterations=args.iterations,
                  perturbation_interval=args.perturbation_interval, workers=args.workers,
                  storage_path=args.storage, out=out)
    print(result)
    return 0
