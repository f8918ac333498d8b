"""The numeric screen: a child run for a few steps on a fixed synthetic problem before anything
trains it; one that cannot survive training is scored as a failure without training.

The problem is a noisy diagonal quadratic on the fingerprint's fixed weights (two tensors, 7 and 3
elements): gradient ``h * w + noise``, curvatures ``h`` log-uniform in [1e-4, 1e-2] (flat, as the
directions of a network's loss mostly are, so that the run does not reach the minimum in a few
steps, where rules that divide by the gradient's size blow up as no network run of a proxy's length
does), noise 0.1, fixed once for every run and machine. The program runs ``STEPS`` steps
closed-loop (each update moves the weights the next gradient is taken at) with ``lr`` following the
tasks' cosine schedule from the search's ``lr`` down to a tenth of it, in float32 as training
computes, with the primitives' guards. A child fails the screen when, at some step,

- its update, or a state the update reads, is NaN or infinite (states the update never reads do not
  count: training carries them along harmlessly);
- the weights exceed ``WEIGHT_LIMIT`` in size, the limit at which training stops a run as blown up
  (``tasks/training.py``: ``weight_failure``);
- or the problem's loss (``0.5 * sum(h * w**2)``) diverged by training's rule (``loss_failure``: the
  median of the recent losses above ten times the first plus ten), over the last ``WINDOW`` steps.

The settings were chosen on the candidates of two searches (seed 0; README, "Search"): in float64,
or with curvatures up to 1, or run for 50 or 100 steps, the screen also failed programs that train
well (up to 2% of the children it failed); these settings were then measured on searches of
another seed.

On a real search these are almost all children that training would fail, and none that would beat
the warm start: ``experiments/screen_study.py`` measures it (README, "Search").
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from .fingerprint import SIZES, fixed_inputs
from .ir import GRAD, LR, STEP, WEIGHT
from .liveness import live_states
from .numpy_exec import numpy_stepper

if TYPE_CHECKING:
    from .program import Program

STEPS = 20
WINDOW = 10                               # steps of loss the divergence rule takes the median of
WEIGHT_LIMIT = 1e4                        # as tasks/training.py's weight_failure


@lru_cache(maxsize=1)
def _problem():
    """(curvatures, the noise of each step): random, the same in every run and on every machine."""
    rng = np.random.default_rng(20240214)
    h = 0.01 * np.exp(rng.uniform(math.log(0.01), 0.0, sum(SIZES)))
    noise = [0.1 * rng.standard_normal(sum(SIZES)) for _ in range(STEPS)]
    return h.astype(np.float32), [n.astype(np.float32) for n in noise]


def screen_reason(prog: Program, lr: float = 1.0) -> str | None:
    """Why training ``prog`` would fail (see the module docstring), or None."""
    h, noise = _problem()
    w = fixed_inputs()[0].astype(np.float32)
    live = live_states(prog)
    states = {name: np.zeros(len(w), np.float32) for name in prog.state_names}

    h64 = h.astype(np.float64)

    def loss(w):
        return 0.5 * float((h64 * np.square(w.astype(np.float64))).sum())
    loss0, losses = loss(w), []
    step = numpy_stepper(prog, SIZES, raw=True, dtype=np.float32)
    dead = [name for name in prog.state_names if name not in live]
    with np.errstate(all="ignore"):
        for k in range(STEPS):
            schedule = lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * k / STEPS)))
            env = {WEIGHT: w, GRAD: h * w + noise[k], LR: np.float32(schedule), STEP: np.float32(k + 1), **states}
            update, states = step(env)
            for name, value in (("the update", update), *((f"state {s!r}", states[s]) for s in live)):
                if not np.isfinite(value).all():
                    return f"numeric screen: {name} is not finite at step {k + 1}"
            w = w - update
            if not (np.abs(w) <= WEIGHT_LIMIT).all():        # NaN, inf or too large
                return f"numeric screen: the weights blew up at step {k + 1} (max |w| > {WEIGHT_LIMIT:g})"
            losses.append(loss(w))
            recent = sorted(losses[-WINDOW:])[WINDOW // 2] if len(losses) >= WINDOW else 0.0
            if recent > 10.0 * loss0 + 10.0:
                return (f"numeric screen: the loss diverged by step {k + 1} "
                        f"(median of the last {WINDOW}: {recent:.3g})")
            for name in dead:                # carried along harmlessly, as training carries them
                states[name] = _carried(states[name])
    return None


def _carried(x):
    """``np.nan_to_num(x)``, made only where needed (the common case: every value finite)."""
    return x if np.isfinite(x).all() else np.nan_to_num(x)
