"""Where a program stands on the ladder from AdamW to Lion, judged by what it computes.

For measuring and reporting only (``experiments/odds.py``, reports): the search never imports it,
so that nothing in the search singles out ``sign`` or Lion's structure.

The rungs (Chen et al. 2023; Bernstein et al. 2018 for Signum):

- ``adamw-like``: an adaptive descent update that is not sign-valued: with the weights at zero,
  scaling each element's gradient history by its own factor (0.1 to 10) leaves the update
  unchanged to 1%, and the update points along an average of the gradient (cosine >= 0.5 with
  one of the averages of coefficient 0, 0.5, 0.9, 0.99; a constant step is invariant too)
  (``m / sqrt(v)``, RMSProp, Adagrad, Adam with any betas or bias correction).
- ``signum-family``: the update is ``c * (sign(z) + wd * w)`` where ``z`` is one exponential average
  of the gradient, ``m_t = beta * m_(t-1) + (1 - beta) * g_t`` with ``0 <= beta < 1`` (signSGD is
  ``beta = 0``), ``c > 0`` the same for every element of a tensor, and the optional decoupled
  weight decay ``wd`` a constant.
- ``lion-family``: the same, with ``z = beta1 * m_(t-1) + (1 - beta1) * g_t`` and the state
  ``m_t = beta2 * m_(t-1) + (1 - beta2) * g_t``, ``beta1 != beta2`` (equal betas are Signum).
  Lion proper has ``beta2 > beta1`` (0.9, 0.99); ``Rung.lion_order`` says whether a program does.
- ``other``: anything else (SGD, momentum, sign-valued rules of another form, ...).

How it is decided, without looking at the program's text (so that dead code, renamed or reordered
statements and algebraic rewrites do not matter):

1. The program runs open-loop with the numpy forms (the weights held at zero, lr 1) on random
   gradient sequences. The update is sign-valued when every element of a tensor has the same
   size at every step and none is zero.
2. If it is, the direction is ``sign(z)`` for some ``z``; if ``z`` is a linear filter of the
   gradient history, ``z_t = a_0 * g_t + sum_k a_k * g_(t-k)``, the ratios ``r_k = a_k / a_0`` are
   read off designed gradient histories (for lag ``k``: ``g = 1`` at step ``t-k``, ``g = -x`` at
   step ``t``, zero otherwise, over a fine grid of ``x`` in one run: the sign flips at ``x = r_k``),
   bracketed and refined twice. A linear filter is odd: the same probes with every gradient
   negated must give every sign negated (a positive term inside the sign, such as the second
   moment a mutation copied into the momentum, looks geometric on the probes but fails this),
   and additive: histories that are sums (and a multiple) of single lags must give the sums (and
   the multiple) of their roots.
   Signum has ``r_k = beta**k``; Lion ``r_1 = beta1 (1 - beta2) / (1 - beta1)`` and
   ``r_(k+1) / r_k = beta2``.
3. The fitted form must then predict the sign of every element at every step of the random run
   (an element whose predicted ``z`` is within 1e-6 of zero, relative, may differ), and the step
   must stay the same when each element's gradients are scaled by its own factor (1e-3 to 10), as
   Signum's and Lion's do.
4. The weight decay is the part of the update that the weights add, per unit of ``c``: it must be
   ``wd * w`` with one ``wd`` for every element and step, at two sizes of the weights and both
   sizes of the gradients, else the program is ``other``.

    python experiments/ladder.py PROGRAM...       # a program file or a reference program name
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from evosearch.lang.errors import ProgramError
from evosearch.lang.ir import GRAD, LR, STEP, WEIGHT
from evosearch.lang.kinds import check
from evosearch.lang.liveness import reads_input
from evosearch.lang.numpy_exec import numpy_step
from evosearch.lang.program import Program

LABELS = ("adamw-like", "signum-family", "lion-family", "other")

SIZES = (48, 16)          # two tensors, so that per-tensor reductions see two different ones
STEPS = 8                 # steps of the random run
LAGS = 4                  # lags of the filter the probes read (r_1..r_4)
GRID = 1201               # probe values per lag and refinement
MAG_RTOL = 1e-6           # sign-valued: |update| equal to this, relative, within a tensor
FIT_RTOL = 1e-4           # r_k against the form's prediction, relative (+ FIT_ATOL)
FIT_ATOL = 1e-6
BETA_GAP = 1e-3           # |beta1 - beta2| below this is Signum
WD_RTOL = 1e-5
DESCENT_COSINE = 0.5      # adaptive: the update against the best of a few averages of the gradient
SCALE_RTOL = 1e-2         # adaptive: the update under per-element gradient scaling (0.1x to 10x), relative
                          # (Adam's eps moves tiny elements by ~1e-3)


@dataclass(frozen=True)
class Rung:
    """A program's place on the ladder; betas and weight decay where the label has them."""
    label: str
    beta1: float | None = None        # Signum's beta, or Lion's interpolation coefficient
    beta2: float | None = None        # Lion's momentum coefficient
    weight_decay: float | None = None  # in units of the sign step
    why: str = ""

    @property
    def sign_based(self) -> bool:
        """Signum or Lion family (the update is the sign of an average of the gradient)."""
        return self.label in ("signum-family", "lion-family")

    @property
    def lion_order(self) -> bool:
        """A Lion-family program whose momentum averages longer than its update (beta2 > beta1)."""
        return self.label == "lion-family" and self.beta2 > self.beta1

    def __str__(self) -> str:
        parts = [self.label]
        if self.beta1 is not None:
            parts.append(f"beta1={self.beta1:.4g}" if self.beta2 is not None else f"beta={self.beta1:.4g}")
        if self.beta2 is not None:
            parts.append(f"beta2={self.beta2:.4g}")
        if self.weight_decay is not None:
            parts.append(f"wd={self.weight_decay:.4g}")
        if self.why:
            parts.append(f"({self.why})")
        return " ".join(parts)


@lru_cache(maxsize=1)
def _random_run():
    """The random gradients of the random run (fixed), per-element scales, and weights."""
    rng = np.random.default_rng(20240601)
    total = sum(SIZES)
    grads = [rng.standard_normal(total) for _ in range(STEPS)]
    scales = 10.0 ** rng.uniform(-1, 1, total)
    w = rng.standard_normal(total)
    wide_scales = 10.0 ** rng.uniform(-3, 1, total)
    return grads, scales, w, wide_scales


def run(prog: Program, grads, w, sizes=SIZES) -> np.ndarray:
    """The updates (steps x elements) of ``prog`` run open-loop: the weights stay ``w``, lr is 1."""
    states = {name: np.zeros(sum(sizes)) for name in prog.state_names}
    out = []
    for k, g in enumerate(grads):
        env = {WEIGHT: w, GRAD: g, LR: np.float64(1.0), STEP: np.float64(k + 1), **states}
        update, states = numpy_step(prog, env, sizes)
        out.append(update)
    return np.array(out)


def _segments(sizes=SIZES):
    cuts = np.cumsum((0,) + tuple(sizes))
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:])]


def step_sizes(updates: np.ndarray) -> np.ndarray | None:
    """The size ``c`` of a sign-valued update per step and element (one per tensor and step), or
    None when the update is not sign-valued (sizes differ within a tensor, or an element is zero)."""
    c = np.empty_like(updates)
    for t, u in enumerate(updates):
        a = np.abs(u)
        for seg in _segments():
            ref = a[seg].max()
            if not ref > 0 or not np.isfinite(ref) or np.any(np.abs(a[seg] - ref) > MAG_RTOL * ref):
                return None
            c[t, seg] = ref
    return c


def sign_based(prog: Program) -> bool:
    """Step 1 alone: whether the update, with the weights at zero, is sign-valued (cheap; the
    filter for ``classify`` when many programs are judged)."""
    grads, _, w, _ = _random_run()
    return step_sizes(run(prog, grads, np.zeros_like(w))) is not None


# -- the linear filter behind a sign ---------------------------------------------------------------
# Gradient histories the probes read the filter from: one unit gradient ``lag`` steps back, for each
# lag; then sums and a multiple of them, whose roots a linear filter puts at the sums (r_1 + r_2,
# r_1 - r_3) and the multiple (2 r_2) of the single lags' roots.
SINGLE = tuple({k: 1.0} for k in range(1, LAGS + 1))
COMBINED = ({1: 1.0, 2: 1.0}, {1: 1.0, 3: -1.0}, {2: 2.0})


def _probe(prog: Program, histories, grids: list[np.ndarray], flip: float = 1.0) -> list[np.ndarray]:
    """The sign of the last step's update for each value ``x`` of each history's grid, the
    history's gradients before it and ``-x`` at the last step (see the module docstring, step 2);
    one run over all histories at once. ``flip=-1`` negates every gradient."""
    n = len(grids[0])
    total = n * len(histories)
    steps = LAGS + 1
    grads = [np.zeros(total) for _ in range(steps)]
    for b, history in enumerate(histories):
        block = slice(b * n, (b + 1) * n)
        for lag, value in history.items():
            grads[steps - 1 - lag][block] = value
        grads[steps - 1][block] = -grids[b]
    u = run(prog, [flip * g for g in grads], np.zeros(total), sizes=(total,))[-1]
    return [np.sign(u[b * n:(b + 1) * n]) for b in range(len(histories))]


def _bracket(x: np.ndarray, s: np.ndarray, strict: bool) -> tuple[float, float] | None:
    """Where the signs ``s`` (over ascending ``x``) go from + to -: (lo, hi) around the root, or
    None if they are not + ... - (the sign of a decreasing linear function of x). ``strict``: the
    signs must not go back (on a refined grid, rounding may flip a few next to the root; the
    bracket then spans them)."""
    if s[0] <= 0 or s[-1] >= 0:
        return None
    if strict and (np.any(np.diff(s) > 0) or np.count_nonzero(s == 0) > 1):
        return None
    lo = float(x[np.flatnonzero(s > 0)[-1]])
    hi = float(x[np.flatnonzero(s < 0)[0]])
    zero = x[s == 0]
    if len(zero) and lo < zero[0] < hi:
        return float(zero[0]), float(zero[0])
    return min(lo, hi), max(lo, hi)


def filter_ratios(prog: Program) -> tuple[np.ndarray, str]:
    """``r_1..r_LAGS`` of the linear filter whose sign the update is (see the module docstring), or
    an empty array and why there is none. A coarse grid (both signs, 1e-8 to 1e4) and two linear
    refinements of each bracket: ~1e-7 relative."""
    histories = SINGLE + COMBINED
    mag = 10.0 ** np.linspace(-8, 4, (GRID - 1) // 2)
    grids = [np.concatenate([-mag[::-1], [0.0], mag])] * len(histories)
    for level in range(3):
        signs = _probe(prog, histories, grids)
        # a linear filter is odd: negated gradients give negated signs (a positive term added to
        # the average, e.g. a function of the second moment, shows here: it does not flip)
        if level == 0 and any(np.any(a != -b) for a, b in zip(signs, _probe(prog, histories, grids, flip=-1.0))):
            return np.array([]), "the sign is not odd in the gradient"
        brackets = [_bracket(x, s, strict=level == 0) for x, s in zip(grids, signs)]
        if any(b is None for b in brackets):
            return np.array([]), "the sign does not follow one linear average of the gradient"
        # a closed bracket (the root on the grid) keeps a grid around it, for the probe's shape
        grids = [np.linspace(lo, hi, GRID) if hi > lo else lo + np.linspace(-1, 1, GRID) * 1e-12 * max(abs(lo), 1)
                 for lo, hi in brackets]
    roots = np.array([(lo + hi) / 2 for lo, hi in brackets])
    r, combined = roots[:LAGS], roots[LAGS:]
    # and it adds up: the average of a sum of histories is the sum of their averages (a term that
    # grows otherwise, e.g. the sign times the second moment's root fed back into the momentum,
    # decays geometrically on single lags too)
    expected = (r[0] + r[1], r[0] - r[2], 2 * r[1])
    scale = (abs(r[0]) + abs(r[1]), abs(r[0]) + abs(r[2]), 2 * abs(r[1]))
    if any(abs(got - want) > FIT_RTOL * size + FIT_ATOL for got, want, size in zip(combined, expected, scale)):
        return np.array([]), "the sign's average is not linear in the gradient (sums of histories do not add)"
    return r, ""


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= FIT_RTOL * max(abs(a), abs(b)) + FIT_ATOL


def fit_form(r: np.ndarray) -> tuple[str, float, float | None] | None:
    """(label, beta1, beta2) of the form the filter ratios ``r`` follow, or None."""
    beta = float(r[0])
    if 0 <= beta < 1 and all(_close(r[k], beta ** (k + 1)) for k in range(1, len(r))):
        return "signum-family", beta, None
    rho = float(r[0])
    if rho <= 0 or r[1] <= 0:
        return None
    beta2 = float(r[1] / r[0])
    if not 0 < beta2 < 1 or not all(_close(r[k], rho * beta2 ** k) for k in range(1, len(r))):
        return None
    beta1 = rho / (rho + 1 - beta2)
    if abs(beta1 - beta2) < BETA_GAP:
        return "signum-family", (beta1 + beta2) / 2, None
    return "lion-family", beta1, beta2


def predicted_z(grads, beta1: float, beta2: float | None) -> np.ndarray:
    """``z_t`` of the fitted form on the gradients ``grads`` (steps x elements)."""
    beta2 = beta1 if beta2 is None else beta2
    m = np.zeros_like(grads[0])
    out = []
    for g in grads:
        out.append(beta1 * m + (1 - beta1) * g)
        m = beta2 * m + (1 - beta2) * g
    return np.array(out)


# -- the whole judgement ---------------------------------------------------------------------------
def classify(prog: Program) -> Rung:
    """The ladder position of ``prog`` (see the module docstring)."""
    try:
        check(prog)
    except ProgramError as exc:
        return Rung("other", why=f"invalid: {exc}")
    if not reads_input(prog, GRAD):
        return Rung("other", why="ignores the gradient")
    grads, scales, w, wide_scales = _random_run()
    zero = np.zeros_like(w)
    u0 = run(prog, grads, zero)
    c = step_sizes(u0)
    if c is None:
        return _adaptive_or_other(prog, u0, grads, scales, zero)
    r, why = filter_ratios(prog)
    if not len(r):
        return Rung("other", why=f"sign-valued; {why}")
    form = fit_form(r)
    if form is None:
        return Rung("other", why="sign-valued; the filter is neither Signum's nor Lion's: r = "
                    + ", ".join(f"{x:.4g}" for x in r))
    label, beta1, beta2 = form
    z = predicted_z(grads, beta1, beta2)
    band = 1e-6 * np.abs(z).max(axis=1, keepdims=True)
    wrong = (np.sign(z) != np.sign(u0)) & (np.abs(z) > band)
    if wrong.any():
        return Rung("other", why=f"sign-valued; the fitted {label} form mispredicts {int(wrong.sum())} signs")
    # Signum's and Lion's steps do not depend on the gradient's size: each element's gradients
    # scaled by its own factor (1e-3 to 10) give the same step (a clip that saturates only for
    # large values, a step that grows with the gradient's norm, show here)
    scaled = run(prog, [g * wide_scales for g in grads], zero)
    if not np.all((np.abs(scaled - u0) <= MAG_RTOL * c) | (np.abs(z) <= band)):
        return Rung("other", why=f"sign-valued at unit gradients, but not at other gradient sizes ({label} form)")
    # decoupled decay: the weights add wd * w per unit of the step, the same wd at two weight sizes
    # and at both gradient sizes (what the weights do must not undo what the gradients did)
    wide = [g * wide_scales for g in grads]
    decays = [(run(prog, gs, k * w) - base) / (c * k * w) for gs, base in ((grads, u0), (wide, scaled))
              for k in (1.0, 0.1)]
    ref = float(np.median(decays[0]))
    if not all(np.all(np.abs(d - ref) <= WD_RTOL * max(abs(ref), 1e-12) + 1e-9) for d in decays):
        return Rung("other", why=f"{label} direction, but the weights enter other than as decoupled decay")
    return Rung(label, beta1, beta2, ref if abs(ref) > 1e-9 else 0.0)


def _adaptive_or_other(prog: Program, u0, grads, scales, zero) -> Rung:
    if not np.any(u0):
        return Rung("other", why="no step with the weights at zero")
    scaled = run(prog, [g * scales for g in grads], zero)
    size = np.abs(u0).max()
    if not np.all(np.abs(scaled - u0) <= SCALE_RTOL * np.abs(u0) + 1e-9 * size):
        return Rung("other", why="not sign-valued, not invariant to each element's gradient scale")
    flat = u0.ravel()
    cosine = max(float(flat @ z.ravel()) / (np.linalg.norm(flat) * np.linalg.norm(z) or 1.0)
                 for z in (predicted_z(grads, beta, None) for beta in (0.0, 0.5, 0.9, 0.99)))
    if cosine < DESCENT_COSINE:
        return Rung("other", why=f"adaptive, but not along an average of the gradient (cosine {cosine:.2f})")
    return Rung("adamw-like")


def load(spec: str) -> Program:
    """A program file, or the name of a reference program."""
    from pathlib import Path

    from evosearch.lang import reference
    return Program.load(spec) if Path(spec).is_file() else reference.load(spec)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("programs", nargs="+", help="program files or reference program names")
    args = ap.parse_args(argv)
    for spec in args.programs:
        print(f"{spec}: {classify(load(spec))}")


if __name__ == "__main__":
    main()
