"""Search configuration: a TOML file (stdlib ``tomllib``) with every key documented here and in
the README. Unknown keys are errors, so that a typo never silently falls back to a default."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from evosearch.lang.limits import MAX_STATEMENTS

from . import funnel
from .early_stop import EarlyStop
from .evolution import EvolutionConfig
from .funnel import Funnel
from .mutation import MutationConfig
from .suite import SuiteSpec


class ConfigError(ValueError):
    """A search config (file, key or value) that cannot be run; the message names the problem."""


@dataclass(frozen=True)
class SearchConfig:
    """Every setting of a search, one field per config key (the sections' keys map to these fields
    as ``SECTIONS`` says); ``to_dict`` is what a run folder keeps, ``from_dict`` reads it back."""

    # [search]
    warm_start: str = "adamw"        # a reference program name, a program file (relative to the config),
                                     # or RUN:best / RUN:ID of a run folder
    max_evals: int = 1000            # stop after this many trained candidates
    time_limit: float = 0.0          # stop after this many seconds (0: no limit)
    seed: int = 0
    population_size: int = 100
    tournament_size: int = 10
    restart_patience: int = 0        # restart from the best after this many evaluations without progress
    hall_of_fame: int = 10           # programs kept in hall_of_fame.json
    strategy: str = "evolution"      # "evolution", or "random" search (1..random_walk mutations of the warm start)
    random_walk: int = 10
    lr_proportional: bool = True     # train only children whose update is proportional to lr (False:
                                     # allow lr-free rules; their exports warn that lr is ignored)
    screen: bool = True              # score children that fail the numeric screen as failures, untrained
    max_states: int = 0              # prune children with more live state tensors than this (0: no limit)
    # [mutation]
    mutation: MutationConfig = field(default_factory=MutationConfig)
    # [tasks]
    tasks: tuple[str, ...] = ("digits_mlp",)
    task_size: str = "proxy"
    task_seeds: tuple[int, ...] = (0,)
    lr: float = 1.0                  # the lr input fed to programs (times the task's cosine schedule)
    eval_time_limit: float = 0.0     # seconds per task evaluation (0: the task's default)
    data_dir: str = ""               # where tasks that read files find them (relative to the config,
                                     # kept absolute; "": $EVOSEARCH_DATA where the task runs)
    task_modules: tuple[str, ...] = ()   # the researcher's task modules (.py files or package folders;
                                     # relative to the config, kept absolute), loaded before validation
    # [executor]
    workers: int = 0                 # Ray actors (0: one per CPU of the machine or cluster)
    batch_size: int | str = "auto"   # candidates per actor call, or "auto": sized to the evaluations' cost
    batched: bool | str = True       # train a call's candidates together where it saves time, "always",
                                     # or "approximate" (also where not bit for bit)
    address: str = ""                # Ray cluster address ("" : $RAY_ADDRESS, else an embedded Ray)
    in_process: bool = False         # evaluate in the driver (debugging; deterministic)
    device: str = "auto"             # where candidates train: "auto" (a GPU when the worker has one),
                                     # "cpu", "cuda" or "cuda:N" (tasks.devices)
    gpus_per_worker: float = 0.0     # GPUs each Ray actor asks for (a fraction shares one GPU)
    deterministic: bool = False      # torch's deterministic algorithms on GPUs (bit-for-bit reruns, slower)
    # [funnel]
    funnel: bool = False             # re-score candidates that beat the warm start on the large tasks
    funnel_margin: float = 0.0       # ... by more than this
    funnel_new_best: bool = False    # ... and only when they also beat every proxy fitness before them
    # [early_stop]
    early_stop: EarlyStop = field(default_factory=EarlyStop)

    def batch(self) -> int | None:
        """The executor's ``batch_size``: a number, or None to size calls by the evaluations' cost."""
        return None if self.batch_size == "auto" else self.batch_size

    def evolution(self) -> EvolutionConfig:
        """The ``[search]`` and ``[mutation]`` settings as evolution takes them."""
        return EvolutionConfig(self.population_size, self.tournament_size, self.restart_patience,
                               mutation=self.mutation, strategy=self.strategy, random_walk=self.random_walk,
                               lr_proportional=self.lr_proportional, screen=self.screen, lr=self.lr,
                               max_states=self.max_states)

    def funnel_settings(self) -> Funnel:
        """The ``[funnel]`` section as the driver uses it."""
        return Funnel(self.funnel, self.funnel_margin, self.funnel_new_best)

    def suite(self) -> SuiteSpec:
        """The ``[tasks]`` settings as the suite takes them (baselines are added by the driver)."""
        return SuiteSpec(tuple(self.tasks), self.task_size, tuple(self.task_seeds), self.lr,
                         self.eval_time_limit or None, batched=self.batched, early_stop=self.early_stop,
                         data_dir=self.data_dir,
                         modules=tuple(self.task_modules), device=self.device,
                         deterministic=self.deterministic)

    def to_dict(self) -> dict:
        """Plain data, as the run store keeps the config."""
        d = asdict(self)
        d["mutation"] = asdict(self.mutation)
        return d

    @staticmethod
    def from_dict(d: dict) -> "SearchConfig":
        """The config a run store kept. A run keeps the rules it was started with: one saved before
        the learning-rate rule or the numeric screen existed resumes without them."""
        d = dict(d)
        d.setdefault("lr_proportional", False)
        d.setdefault("screen", False)
        d.setdefault("device", "cpu")           # runs saved before devices trained on the CPU
        d["mutation"] = MutationConfig(**{k: tuple(v) if isinstance(v, list) else v
                                          for k, v in d.get("mutation", {}).items()})
        d["early_stop"] = EarlyStop(**{k: tuple(v) if isinstance(v, list) else v
                                       for k, v in d.get("early_stop", {}).items()})
        for key in ("tasks", "task_seeds", "task_modules"):
            if key in d:
                d[key] = tuple(d[key])
        return SearchConfig(**d)


SECTIONS = {
    "search": {"warm_start", "max_evals", "time_limit", "seed", "population_size", "tournament_size",
               "restart_patience", "hall_of_fame", "strategy", "random_walk", "lr_proportional",
               "screen", "max_states"},
    "tasks": {"names": "tasks", "size": "task_size", "seeds": "task_seeds", "lr": "lr",
              "time_limit": "eval_time_limit", "data_dir": "data_dir", "modules": "task_modules"},
    "executor": {"workers", "batch_size", "batched", "address", "in_process", "device", "gpus_per_worker",
                 "deterministic"},
    "funnel": {"enabled": "funnel", "margin": "funnel_margin", "new_best_only": "funnel_new_best"},
}


def load_config(path: str | Path) -> SearchConfig:
    """Read a TOML config; a ``warm_start`` file is relative to the config's folder."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, base=path.parent)


def parse_config(data: dict, base: Path | None = None) -> SearchConfig:
    """A config from parsed TOML; ConfigError naming any unknown section, key or bad value."""
    values: dict = {}
    for section, table in data.items():
        if section in TABLES:
            if not isinstance(table, dict):
                raise ConfigError(f"[{section}] must be a table")
            known = {f.name for f in fields(TABLES[section])}
            bad = set(table) - known
            if bad:
                raise ConfigError(f"[{section}]: unknown keys {sorted(bad)}; known: {sorted(known)}")
            values[section] = TABLES[section](**{k: tuple(v) if isinstance(v, list) else v
                                                 for k, v in table.items()})
            continue
        if section not in SECTIONS:
            raise ConfigError(f"unknown section [{section}]; known: "
                              f"{', '.join(sorted(list(SECTIONS) + list(TABLES)))}")
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table")
        mapping = SECTIONS[section]
        mapping = mapping if isinstance(mapping, dict) else {k: k for k in mapping}
        for key, value in table.items():
            if key not in mapping:
                raise ConfigError(f"[{section}]: unknown key {key!r}; known: {sorted(mapping)}")
            values[mapping[key]] = tuple(value) if isinstance(value, list) else value
    cfg = SearchConfig(**values)
    if base is not None and isinstance(cfg.warm_start, str) and (base / cfg.warm_start).is_file():
        cfg = replace(cfg, warm_start=str((base / cfg.warm_start).resolve()))
    if cfg.data_dir and isinstance(cfg.data_dir, str):     # relative to the config, like warm_start
        cfg = replace(cfg, data_dir=str((base or Path()).joinpath(Path(cfg.data_dir).expanduser()).resolve()))
    _check(_KEYS["task_modules"], cfg.task_modules, TEXTS, None, None)
    cfg = replace(cfg, task_modules=tuple(str((base or Path()).joinpath(m).resolve()) for m in cfg.task_modules))
    load_task_modules(cfg)                       # before validation: it checks the task names
    _validate(cfg)
    return cfg


def load_task_modules(cfg: SearchConfig) -> None:
    """Import the config's ``[tasks] modules`` (absolute paths) in this process; ConfigError naming
    the file and what went wrong."""
    import tasks
    try:
        tasks.load_modules(cfg.task_modules)
    except tasks.TaskModuleError as exc:
        raise ConfigError(f"[tasks] modules: {exc}") from None


def _validate(cfg: SearchConfig) -> None:
    """Every value against its type and range (``RULES``), then the rules that tie keys together;
    ConfigError naming the key and what it may be."""
    import tasks
    for name, (kind, low, high) in RULES.items():
        if not (name == "batch_size" and cfg.batch_size == "auto"):
            _check(_KEYS[name], getattr(cfg, name), kind, low, high,
                   alternative=' or "auto"' if name == "batch_size" else "")
    for name, (kind, low, high) in MUTATION_RULES.items():
        _check(f"[mutation] {name}", getattr(cfg.mutation, name), kind, low, high)
    for name, (kind, low, high) in EARLY_STOP_RULES.items():
        _check(f"[early_stop] {name}", getattr(cfg.early_stop, name), kind, low, high)
    marks = cfg.early_stop.checkpoints
    if not marks or any(not 0 < f < 1 for f in marks) or list(marks) != sorted(set(marks)):
        raise ConfigError(f"[early_stop] checkpoints must be increasing fractions of training between 0 and 1 "
                          f"(exclusive), not {list(marks)!r}")
    if not cfg.tasks:
        raise ConfigError("[tasks]: names must list at least one task")
    for name in cfg.tasks:
        if name not in tasks.names():
            raise ConfigError(f"[tasks]: unknown task {name!r}; known: {', '.join(tasks.names())}")
        checked = [(cfg.task_size, "[tasks] size")] + ([(funnel.SIZE, "[funnel] enabled")] if cfg.funnel else [])
        for size, key in checked:
            if size not in tasks.sizes(name):
                raise ConfigError(f"{key}: task {name!r} has no size {size!r}; its sizes: "
                                  f"{', '.join(tasks.sizes(name))}")
    if not cfg.task_seeds:
        raise ConfigError("[tasks]: seeds must list at least one seed")
    if len(set(cfg.task_seeds)) != len(cfg.task_seeds):
        raise ConfigError(f"[tasks] seeds: a seed is listed twice in {list(cfg.task_seeds)}")
    if cfg.lr <= 0:
        raise ConfigError(f"[tasks] lr must be a positive number, not {cfg.lr!r}")
    if cfg.tournament_size > cfg.population_size:
        raise ConfigError("[search]: need population_size >= 1 and 1 <= tournament_size <= population_size")
    if cfg.strategy not in ("evolution", "random"):
        raise ConfigError(f'[search] strategy must be "evolution" or "random", not {cfg.strategy!r}')
    from tasks import devices
    try:
        devices.check_name(cfg.device)
    except ValueError as exc:
        raise ConfigError(f"[executor] {exc}") from None
    if cfg.batched not in (True, False, "always", "approximate"):
        raise ConfigError(f'[executor]: batched must be true, false, "always" or "approximate", not {cfg.batched!r}')
    m = cfg.mutation
    if not m.constants_only and sum(m.weights()) <= 0:
        raise ConfigError("[mutation]: at least one of insert, delete, modify_argument, change_function, wrap, "
                          "wrap_read must be > 0")
    import primitives
    unknown = sorted(set(m.primitives) - set(primitives.names()))
    if unknown:
        raise ConfigError(f"[mutation] primitives: unknown {unknown}; known: {', '.join(primitives.names())}")
    if cfg.max_states:
        _check_warm_start_states(cfg)


def _check_warm_start_states(cfg: SearchConfig) -> None:
    """A warm start over ``[search] max_states`` would make every child of it a child of a program
    the limit forbids: refused before the run starts."""
    from evosearch.lang.errors import ProgramError
    from evosearch.lang.liveness import live_states

    from .loading import load_program
    try:
        states = live_states(load_program(cfg.warm_start))
    except ProgramError as exc:
        raise ConfigError(f"[search] warm_start: {exc}") from None
    if len(states) > cfg.max_states:
        raise ConfigError(f"[search] max_states = {cfg.max_states}, but the warm start {cfg.warm_start!r} keeps "
                          f"{len(states)} live state tensors ({', '.join(states)}): raise max_states or start "
                          f"from a program with at most {cfg.max_states}")


INT, NUMBER, BOOL, TEXT, TEXTS, INTS, NUMBERS = "an integer", "a number", "true or false", "a string", \
    "a list of strings", "a list of integers", "a list of numbers"
INF = float("inf")

# field -> (kind, lowest, highest) of every SearchConfig value (ranges inclusive; None: no bound)
RULES = {
    "warm_start": (TEXT, None, None), "max_evals": (INT, 1, None), "time_limit": (NUMBER, 0, None),
    "seed": (INT, None, None), "population_size": (INT, 1, None), "tournament_size": (INT, 1, None),
    "restart_patience": (INT, 0, None), "hall_of_fame": (INT, 1, None), "strategy": (TEXT, None, None),
    "random_walk": (INT, 1, None), "lr_proportional": (BOOL, None, None), "screen": (BOOL, None, None),
    "max_states": (INT, 0, None),
    "tasks": (TEXTS, None, None), "task_size": (TEXT, None, None), "task_seeds": (INTS, 0, 2 ** 32 - 1),
    "lr": (NUMBER, None, None), "eval_time_limit": (NUMBER, 0, None), "task_modules": (TEXTS, None, None),
    "data_dir": (TEXT, None, None),
    "workers": (INT, 0, None), "batch_size": (INT, 1, None), "address": (TEXT, None, None),
    "in_process": (BOOL, None, None), "device": (TEXT, None, None), "gpus_per_worker": (NUMBER, 0, None),
    "deterministic": (BOOL, None, None),
    "funnel": (BOOL, None, None), "funnel_margin": (NUMBER, None, None), "funnel_new_best": (BOOL, None, None),
}
MUTATION_RULES = {
    "insert": (NUMBER, 0, None), "delete": (NUMBER, 0, None), "modify_argument": (NUMBER, 0, None),
    "change_function": (NUMBER, 0, None), "max_statements": (INT, 1, MAX_STATEMENTS), "primitives": (TEXTS, None, None),
    "constant_probability": (NUMBER, 0, 1), "constants_only": (BOOL, None, None),
    "wrap": (NUMBER, 0, None), "wrap_read": (NUMBER, 0, None), "effective": (BOOL, None, None),
}
EARLY_STOP_RULES = {
    "enabled": (BOOL, None, None), "checkpoints": (NUMBERS, 0, 1), "quantile": (NUMBER, 0, 1),
    "margin": (NUMBER, 0, None), "min_members": (INT, 1, None),
}
# sections read whole into a settings dataclass (the others map their keys to SearchConfig fields)
TABLES = {"mutation": MutationConfig, "early_stop": EarlyStop}
# field -> "[section] key", as a config file names it
_KEYS = {field_name: f"[{section}] {key}" for section, mapping in SECTIONS.items()
         for key, field_name in (mapping.items() if isinstance(mapping, dict) else ((k, k) for k in mapping))}


def _check(key: str, value, kind: str, low, high, alternative: str = "") -> None:
    def number(v, integer: bool) -> bool:
        return (isinstance(v, int) if integer else isinstance(v, (int, float))) and not isinstance(v, bool)

    if kind in (TEXTS, INTS, NUMBERS):
        items_ok = isinstance(value, tuple) and all(
            isinstance(v, str) if kind == TEXTS else number(v, kind == INTS) for v in value)
        values = value if items_ok else None
    else:
        ok = {INT: lambda v: number(v, True), NUMBER: lambda v: number(v, False) and -INF < v < INF,
              BOOL: lambda v: isinstance(v, bool), TEXT: lambda v: isinstance(v, str)}[kind](value)
        values = (value,) if ok else None
    bounds = ("" if low is None and high is None else f" >= {low}" if high is None
              else f" between {low} and {high}")
    if values is None:
        raise ConfigError(f"{key} must be {kind}{bounds}{alternative}, not {value!r}")
    for v in values if kind in (INT, NUMBER, INTS, NUMBERS) else ():
        if (low is not None and v < low) or (high is not None and v > high):
            raise ConfigError(f"{key} must be {kind}{bounds}{alternative}, not {value!r}")
