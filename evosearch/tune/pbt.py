"""Population-based tuning of a program's learning rate and constants, on Ray Tune.

``evosearch tune PROGRAM --task NAME`` runs Ray Tune's ``PopulationBasedTraining`` (Jaderberg et al.
2017): ``samples`` models train side by side with the program's optimizer, each with its own
hyperparameters; every ``perturbation_interval`` training iterations (one iteration = a chunk of the
task's steps) the worst quarter copies the model and optimizer state of the best quarter (PBT's
*exploit*, restored from the checkpoint that trial reported: model ``state_dict``, the exported
optimizer's ``state_dict``, batch-sampler and RNG state) and perturbs the copied hyperparameters
(*explore*: each x0.8 or x1.2, or resampled with probability 0.25). A trial trains with
``tasks.TrainingRun``, the loop of ``Task.train`` (same batches, schedule, failure checks and time
limit), advanced one iteration at a time and checkpointed between iterations.

What is tuned (``search_space``):

- ``lr``, the value fed to the program's ``lr`` input (times the task's cosine schedule), log-uniform
  over two decades either side of the program's default: 1.0 for a program that scales ``lr`` by a
  literal itself (the warm start's ``lr = lr * 0.001``, so every program a search finds), else 1e-3
  (programs written like torch optimizers, e.g. Lion). ``--lr`` sets another default.
- the constants ``evosearch.optim.hyperparams.infer`` names (the exported optimizer's constructor
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
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch

import tasks
from evosearch.lang.program import Program
from evosearch.optim.factory import to_optimizer
from evosearch.search.executors import init_ray
from tasks import FAILURE_FITNESS, TrainingRun, devices
from tasks.base import Baseline

from .space import SearchSpace, Setting, _fmt, rounded, search_space, tuned_program

RETRAINED = 3                 # the best final configurations re-trained from scratch

# -- training in chunks, with checkpoints ---------------------------------------------------------

def trial_run(task, prog: Program, setting: Setting, seed: int = 0) -> TrainingRun:
    """A training run of ``prog`` with ``setting`` on ``task`` (``tasks.training``: the loop of
    ``Task.train``, resumable from checkpoints): what one PBT trial trains."""
    cls = to_optimizer(prog, flat=True)
    return TrainingRun(task, lambda params, lr: cls(params, lr=lr, **setting.hyper), seed, setting.lr)


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
    modules: tuple[str, ...] = ()  # the researcher's task modules (absolute paths; tasks.external)
    device: str = "cpu"           # where trials train (tasks.devices), with ``gpus`` GPUs each from Ray
    gpus: float = 0.0

    def resources(self) -> dict:
        """What each trial asks Ray for."""
        return {"cpu": 1, "gpu": self.gpus} if self.gpus else {"cpu": 1}


def _task(job: TrialJob, with_baseline: bool = True):
    import ray
    tasks.load_modules(job.modules)
    gpus = len(ray.get_gpu_ids()) if ray.is_initialized() else None
    task = tasks.get(job.task, job.size, device=devices.resolve(job.device, gpus))
    if with_baseline:
        task.known_baselines[job.seed] = Baseline(*job.baseline, {})
    return task


def _baseline(job: TrialJob) -> tuple:
    """Tuned AdamW on the job's task and seed, where its trials train: (initial loss, best loss, lr)."""
    torch.set_num_threads(1)
    b = _task(job, with_baseline=False).baseline(job.seed)
    return b.initial_loss, b.best_loss, b.best_lr


def _fitness(task, val_loss: float, seed: int) -> float:
    return task.fitness(val_loss, seed) if math.isfinite(val_loss) else FAILURE_FITNESS


def _trial(config: dict, job: TrialJob) -> None:
    """One PBT trial (a Ray Tune function trainable): train in chunks, report fitness and a
    checkpoint after each; start from the checkpoint Ray Tune hands over (a pause, or an exploit)."""
    from ray import tune as ray_tune
    torch.set_num_threads(1)
    task = _task(job)
    setting = job.space.setting(config)
    run = trial_run(task, Program.parse(job.program), setting, job.seed)
    checkpoint = ray_tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            run.load(folder)
    while not run.done:
        try:
            run.advance(job.steps_per_iteration)
        except Exception:  # noqa: BLE001 - a program's arithmetic must not kill the trial (run.failure says why)
            pass
        val = run.val_loss()
        metrics = {"fitness": _fitness(task, val, job.seed), "val_loss": val, "step": run.step,
                   "failed": run.failure is not None}
        with tempfile.TemporaryDirectory() as folder:
            run.save(folder)
            ray_tune.report(metrics, checkpoint=ray_tune.Checkpoint.from_directory(folder))


def _retrain(job: TrialJob, setting: Setting) -> tuple[float, float, str | None]:
    """A fresh training run with a fixed setting, scored as ``task.evaluate`` scores it:
    (fitness, validation loss, failure)."""
    torch.set_num_threads(1)
    task = _task(job)
    cls = to_optimizer(Program.parse(job.program), flat=True)
    r = task.evaluate_optimizer(lambda params, lr: cls(params, lr=lr, **setting.hyper), job.seed,
                                setting.lr)
    return r.fitness, r.metrics.get("val_loss", math.inf), r.failure


@dataclass(frozen=True)
class Outcome:
    """A setting re-trained from scratch: its fitness, validation loss and failure."""
    setting: Setting
    fitness: float
    val_loss: float
    failure: str | None = None


@dataclass(frozen=True)
class TuneResult:
    """What ``tune`` found, with the runs it compares it to; ``str()`` is the report ``evosearch
    tune`` prints."""
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
        lines.append("  fitness: 1.0 is tuned AdamW's validation loss, 0 the untrained model's; beside it, the "
                     "loss and its ratio to tuned AdamW's")
        rows = [("best", self.best), ("defaults", self.defaults)]
        for label, o in rows:
            tail = f"  ({o.failure})" if o.failure else ""
            lines.append(f"  {label:<9} fitness {o.fitness:7.4f}  val loss {o.val_loss:.4f} "
                         f"({o.val_loss / self.adamw_val_loss:.3g}x AdamW's)  {o.setting}{tail}")
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
         modules=(), device: str = "auto", gpus_per_trial: float = 0.0, echo=print) -> TuneResult:
    """Tune ``prog``'s learning rate and constants with PBT on ``task_name`` (see the module
    docstring). ``iterations`` chunks of training, PBT every ``perturbation_interval`` of them
    (``perturbation_factors`` and ``resample_probability`` are PBT's explore step); ``time_limit``
    stops the trials after that many seconds; ``workers`` CPUs for an embedded local Ray;
    ``storage_path`` keeps Ray Tune's results (default: a temporary folder); ``out`` writes the
    tuned program; ``modules`` are task modules of the researcher's that define ``task_name``
    (files or package folders, as ``[tasks] modules``; shipped to a cluster as a search ships them);
    ``device`` and ``gpus_per_trial`` are a search's ``[executor] device`` and ``gpus_per_worker``
    for each trial (Ray Tune's per-trial resources); the baseline is tuned on that device kind."""
    import ray

    if samples < 2:
        raise ValueError("PBT needs at least 2 samples")
    start = time.perf_counter()
    modules = tuple(str(Path(m).resolve()) for m in modules)
    tasks.load_modules(modules)
    task = tasks.get(task_name, size)
    space = search_space(prog, lr, tunables)
    if not space.params:
        raise ValueError("the program has nothing to tune (no lr input read, no weight decay, no betas)")
    try:
        kind = devices.expected_kind(device, gpus_per_trial, in_process=False)
    except devices.DeviceError as exc:
        raise ValueError(str(exc)) from None
    chunk = math.ceil(task.steps / max(1, iterations))
    job = TrialJob(str(prog), task_name, size, seed, (), space, chunk, modules, device, gpus_per_trial)
    init_ray(address, workers, modules=modules)
    if kind == "cpu":
        base = task.baseline(seed)
        job = replace(job, baseline=(base.initial_loss, base.best_loss, base.best_lr))
    else:       # on a trial's GPU, which this process need not have
        if ray.cluster_resources().get("GPU", 0) < gpus_per_trial:
            raise ValueError(f"gpus_per_trial = {gpus_per_trial:g}, but the cluster has "
                             f"{ray.cluster_resources().get('GPU', 0):g} GPUs")
        job = replace(job, baseline=ray.get(ray.remote(num_cpus=1, num_gpus=gpus_per_trial)(_baseline).remote(job)))
    base = Baseline(*job.baseline, {})
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
    retrain = ray.remote(num_cpus=1, num_gpus=gpus_per_trial)(_retrain)
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

    space, steps = job.space, tasks.get(job.task, job.size).steps
    random.seed(job.seed)   # PBT's explore step draws from Python's global RNG
    # synch: the population is compared at the same training iteration, also when there are more
    # trials than CPUs (they then take turns)
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", metric="fitness", mode="max", synch=True,
        hyperparam_mutations={p.key: ray_tune.loguniform(p.low, p.high) for p in space.params},
        custom_explore_fn=space.clip, **pbt)
    trainable = ray_tune.with_resources(ray_tune.with_parameters(_trial, job=job), job.resources())
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
