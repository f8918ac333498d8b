"""Numerical equivalence of two programs: run both (numpy forms, float64) on random problems and
compare their update trajectories. Every simplification step is checked this way (``exact.py``).

The comparison is modulo the division guard (``docs/design.md``, "The program language": the sympy
forms drop the guards, so simplification reasons modulo them):
by default ``/`` and ``reciprocal`` divide exactly here, so that ``x / sqrt(x*x)`` and ``sign(x)``
agree; values are still clamped finite."""

from __future__ import annotations

import numpy as np

from evosearch.lang.ir import GRAD, LR, STEP, WEIGHT
from evosearch.lang.numpy_exec import numpy_step
from evosearch.lang.program import Program
from primitives._guards import finite

_UNGUARDED = {"divide": lambda x, y: finite(x / y), "reciprocal": lambda x: finite(1.0 / x)}


def trajectory(prog: Program, seed: int, steps: int = 30, sizes=(6, 4), guards: bool = False) -> np.ndarray:
    """Updates of ``steps`` steps on a random noisy quadratic (g = A w + noise), flattened per step.
    Parameters are two tensors of the given sizes, concatenated (per-tensor reductions see each)."""
    return np.array(_run(prog, seed, steps, sizes, guards)[0])


def values_along(prog: Program, seed: int, steps: int = 30, sizes=(6, 4)) -> list[dict]:
    """Each statement's value (by statement index) at each step of ``trajectory``."""
    return _run(prog, seed, steps, sizes, False)[1]


def _run(prog: Program, seed: int, steps: int, sizes, guards: bool) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    total = sum(sizes)
    a = rng.standard_normal((total, total)) / np.sqrt(total)
    a = a @ a.T + 0.1 * np.eye(total)
    w = rng.standard_normal(total)
    states = {s: np.zeros(total) for s in prog.state_names}
    out, traces = [], []
    with np.errstate(all="ignore"):
        for k in range(steps):
            g = a @ w + 0.3 * rng.standard_normal(total)
            lr = 0.05 * (0.5 + 0.5 * np.cos(np.pi * k / steps)) + 0.005
            env = {WEIGHT: w, GRAD: g, LR: np.float64(lr), STEP: np.float64(k + 1), **states}
            traces.append({})
            u, states = numpy_step(prog, env, tuple(sizes), None if guards else _UNGUARDED, traces[-1])
            w = w - u
            out.append(u)
    return out, traces


def max_relative_difference(p: Program, q: Program, seeds=(0, 1, 2), steps: int = 30) -> float:
    """The largest per-step relative difference ||u_p - u_q|| / max(||u_p||, tiny) over the seeds."""
    worst = 0.0
    for seed in seeds:
        a, b = trajectory(p, seed, steps), trajectory(q, seed, steps)
        # scale each step by its largest entry first, so that huge updates cannot overflow the norms
        scale = np.maximum(np.maximum(np.abs(a).max(axis=1), np.abs(b).max(axis=1)), 1e-300)[:, None]
        a, b = a / scale, b / scale
        num = np.linalg.norm(a - b, axis=1)
        den = np.maximum(np.linalg.norm(a, axis=1), 1e-12)
        ratio = num / den
        if np.isnan(ratio).any():
            return float("inf")
        worst = max(worst, float(np.max(ratio)))
    return worst


def equivalent(p: Program, q: Program, rtol: float = 1e-6) -> bool:
    """Whether ``p`` and ``q`` give the same update trajectories to ``rtol``."""
    return max_relative_difference(p, q) <= rtol
