"""The pure part of tuning (``evosearch tune``): which of a program's constants are tuned and over
what ranges, and the program with a tuned setting written into it. No Ray, no torch, no IO; see
``evosearch.tune`` for the population-based training that uses it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from evosearch.lang.ir import LR, Const, Statement, Var, const
from evosearch.lang.kinds import kinds
from evosearch.lang.liveness import dataflow, needed_statements, reads_input
from evosearch.lang.program import Program
from evosearch.optim import hyperparams
from primitives import SCALAR

from .tunable import TUNABLE  # noqa: E402,F401 - re-exported: what can be tuned

LR_DEFAULT_SCALED = 1.0       # programs that scale lr themselves are searched and scored at lr 1
LR_DEFAULT_RAW = 1e-3         # torch-style programs (update * lr): the usual optimizer default
LR_DECADES = 2.0              # lr and weight decay range: this many decades either side of the default
BETA_GAP_RANGE = 10.0         # 1 - beta ranges over [gap / 10, gap * 10]
BETA_GAP_MAX = 0.5            # ... but beta stays >= 0.5
SIGNIFICANT_DIGITS = 3        # tuned settings are rounded to this before the final re-training


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
        """The hyperparameter's value for a sampled value."""
        return 1.0 - sampled if self.complement else sampled

    def clip(self, sampled: float) -> float:
        """A sampled value brought back into [low, high]."""
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


@dataclass(frozen=True)
class SearchSpace:
    """What is tuned for one program, and the program's own setting."""
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
        """The Ray Tune config of a setting (``setting``'s inverse)."""
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
        rng, m = np.random.default_rng(seed), max(n - 1, 0)
        columns = {}
        for p in self.params:
            u = (rng.permutation(m) + rng.random(m)) / max(m, 1)    # one point in each of m strata
            columns[p.key] = np.exp(np.log(p.low) + u * (np.log(p.high) - np.log(p.low)))
        return [self.config(self.default)] + [{k: float(c[j]) for k, c in columns.items()} for j in range(m)]

    def __str__(self) -> str:
        return "; ".join(map(str, self.params))


def scales_lr(prog: Program) -> bool:
    """Does the program scale its ``lr`` input by a literal itself: the warm start's ``lr * 0.001``,
    or any chain of scalar statements from ``lr`` that multiplies or divides by a literal (a searched
    program may have ``lr = sqrt(lr); lr = lr * 0.0007``)? Such programs were scored at lr 1."""
    if _lr_scale_statement(prog) is not None:
        return True
    envs, flow = kinds(prog), dataflow(prog)
    from_lr = {("in", LR)}
    for i in needed_statements(prog):
        s = prog.statements[i]
        if any(d in from_lr for d in flow.reads[i]) and envs[i + 1][s.target] == SCALAR:
            from_lr.add(("s", i))
            if s.op in ("multiply", "divide") and any(isinstance(a, Const) and not a.name for a in s.args):
                return True
    return False


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
    wd = spec.defaults.get("weight_decay", 0.0)
    if "weight_decay" in wanted and wd > 0:      # a zero or negative one stays as it is
        params.append(Hyperparameter("weight_decay", "weight_decay", None, wd / span, wd * span, wd))
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
    s = space.setting({k: _round(v, digits) for k, v in space.config(setting).items()})
    if "betas" in s.hyper:   # 1 - 0.0933 is 0.9067000000000001 in floating point: keep 0.9067
        s = Setting(s.lr, {**s.hyper, "betas": tuple(_round(b, 15) for b in s.hyper["betas"])})
    return s


def _round(x: float, digits: int) -> float:
    return float(f"{x:.{digits}g}")


def _fmt(x: float) -> str:
    return f"{x:.6g}"


# -- the tuned program (pure) -------------------------------------------------------------------

def tuned_program(prog: Program, setting: Setting) -> Program:
    """``prog`` with the setting's constants in place of its defaults and its learning rate folded
    in, so that it trains with ``setting`` when fed ``lr`` input 1.0."""
    def with_literal(s: Statement, pos: int, value: float) -> Statement:
        return replace(s, args=s.args[:pos] + (const(value),) + s.args[pos + 1:])

    stmts = list(prog.statements)
    for (i, pos), (name, index) in hyperparams.infer(prog).bindings.items():
        value = setting.hyper[name]
        stmts[i] = with_literal(stmts[i], pos, value if index is None else value[index])
    prog = replace(prog, statements=tuple(stmts))
    if setting.lr == 1.0 or not reads_input(prog, LR):
        return prog
    where = _lr_scale_statement(prog)
    if where is not None:
        i, pos = where
        stmts[i] = with_literal(stmts[i], pos, _round(float(stmts[i].args[pos].value) * setting.lr, 9))
    else:
        stmts.insert(0, Statement(LR, "multiply", (Var(LR), const(setting.lr))))
    return replace(prog, statements=tuple(stmts))
