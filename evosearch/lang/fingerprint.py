"""Functional fingerprints: programs that compute the same updates get the same fingerprint.

The program runs for a few steps with its numpy forms (float64) on fixed random weights and
gradients, two parameter tensors of different sizes (so that per-tensor and global reductions
differ) and a changing learning rate; the updates are rounded to ~7 significant digits and hashed.
Algebraically equal programs (``a*b`` / ``b*a``, ``x*1.0`` / ``x``, ``interp(x, y, 0.0)`` / ``x``)
agree to float64 rounding and so hash the same; this is the functional equivalence cache of the
paper (Sec. 2.2), which lets the search reuse the fitness of an equivalent program.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from .ir import GRAD, LR, STEP, WEIGHT
from .liveness import live_states
from .numpy_exec import numpy_stepper

if TYPE_CHECKING:
    from .program import Program

STEPS = 4
SIZES = (7, 3)
MANTISSA_BITS = 22  # ~6.6 significant digits


_TOTAL = sum(SIZES)


@lru_cache(maxsize=1)
def fixed_inputs():
    """(initial weights, the gradient of each step, the lr of each step): random, but the same in
    every run and on every machine."""
    rng = np.random.default_rng(20230213)  # fixed: the fingerprint must never change between runs
    w0 = rng.standard_normal(_TOTAL)
    grads = [rng.standard_normal(_TOTAL) for _ in range(STEPS)]
    lrs = [0.3 + 0.11 * k for k in range(STEPS)]
    return w0, grads, lrs


def run_numpy(prog: Program, steps: int = STEPS):
    """Run ``prog`` for ``steps`` steps on the fixed inputs. Returns (updates, states): per step, the
    update and the new value of each state, each a flat array over both parameter tensors (a value
    that is one number per tensor is broadcast over that tensor's segment)."""
    w0, grads, lrs = fixed_inputs()
    w = w0
    states = {name: np.zeros(_TOTAL) for name in prog.state_names}
    updates, history = [], []
    step = numpy_stepper(prog, SIZES)
    for k in range(steps):
        env = {WEIGHT: w, GRAD: grads[k % STEPS], LR: np.float64(lrs[k % STEPS]),
               STEP: np.float64(k + 1), **states}
        update, states = step(env)
        w = w - update
        updates.append(update)
        history.append(states)
    return updates, history


def _round(x: np.ndarray) -> bytes:
    mant, exp = np.frexp(x)
    mant = np.round(mant * (1 << MANTISSA_BITS)).astype(np.int64)
    exp = np.where(mant == 0, 0, exp)
    return mant.tobytes() + exp.astype(np.int64).tobytes()


def fingerprint(prog: Program) -> str:
    """Hash of the update trajectory and of the trajectories of the states that the update reads
    (sorted, so that the order of the state variables does not matter). Dead states do not count."""
    updates, history = run_numpy(prog)
    live = live_states(prog)
    h = hashlib.blake2b(digest_size=16)
    for u in updates:
        h.update(_round(u))
    state_digests = sorted(
        hashlib.blake2b(b"".join(_round(step[name]) for step in history), digest_size=16).digest()
        for name in live)
    for d in state_digests:
        h.update(d)
    return h.hexdigest()
