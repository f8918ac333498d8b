"""Which children the search does not train, judged without training (Chen et al. 2023, Sec. 2.2:
programs that cannot be useful are pruned before they cost an evaluation).

- An update that never reads the gradient cannot learn (``liveness.pruning_reason``, structural).
- An update that is not proportional to the ``lr`` input ignores the learning rate a user passes and
  any schedule: short proxy tasks reward programs that overwrite ``lr`` with a constant (switching the
  cosine schedule off), and such a discovery is no optimizer one can tune. ``lr_reason`` runs the
  program on the fingerprint's fixed gradients with the weights held still, once with the fixed
  learning rates and once with each scaled by 0.1 and by 3.7, and asks every step's update to scale
  by the same factor (to 1e-6 of the update's size). Programs that keep ``lr`` inside their state
  (``m = m + lr * g; update = m``) pass: their updates scale with the schedule too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .fingerprint import SIZES, STEPS, fixed_inputs
from .ir import GRAD, LR, STEP, WEIGHT
from .liveness import pruning_reason
from .numpy_exec import numpy_stepper

if TYPE_CHECKING:
    from .program import Program

LR_SCALES = (0.1, 3.7)
RTOL = 1e-6


def lr_reason(prog: Program) -> str | None:
    """Why the update is not proportional to the ``lr`` input (see the module docstring), or None.
    The three runs go step by step together, so that a program that ignores lr is found at its
    first step (most are), not after all of them; they run as one, laid end to end as three copies
    of the parameter tensors with lr given per element (a per-tensor reduction still sees one run's
    tensor), unless the program reduces over all tensors at once, which would mix them."""
    return _lr_reason(prog, together=not any(s.primitive.reduces == "global" for s in prog.statements))


def _lr_reason(prog: Program, together: bool) -> str | None:
    """``lr_reason`` with the three runs laid end to end in one numpy run (``together``) or apart."""
    w, grads, lrs = fixed_inputs()
    n, scales = len(w), (1.0, *LR_SCALES)
    groups = [scales] if together else [(scale,) for scale in scales]
    copies = len(groups[0])                   # of the parameter tensors, in each numpy run
    step = numpy_stepper(prog, SIZES * copies)
    w_all, lr_of = np.tile(w, copies), [np.repeat(np.array(group), n) for group in groups]
    states = [{name: np.zeros(n * copies) for name in prog.state_names} for _ in groups]
    for k in range(STEPS):
        g_all, updates = np.tile(grads[k], copies), []
        for j, per_element in enumerate(lr_of):
            env = {WEIGHT: w_all, GRAD: g_all, LR: lrs[k] * per_element, STEP: np.float64(k + 1), **states[j]}
            update, states[j] = step(env)
            updates.append(update)
        update = np.concatenate(updates)            # the runs of 1.0, then of each of LR_SCALES
        why = _disproportion(update[:n], [update[n * j:n * (j + 1)] for j in range(1, len(scales))], k)
        if why:
            return why
    return None


def _disproportion(u, scaled, k: int) -> str | None:
    """Why the updates ``scaled`` (one per ``LR_SCALES``) are not ``u`` times their scale at step
    ``k``, or None."""
    for scale, v in zip(LR_SCALES, scaled):
        size = max(float(np.max(np.abs(u))) * scale, float(np.max(np.abs(v))), 1e-300)
        if float(np.max(np.abs(v - scale * u))) > RTOL * size:
            return f"the update is not proportional to lr (lr x {scale:g} at step {k + 1})"
    return None


def why_pruned(prog: Program, lr_proportional: bool = True) -> str | None:
    """Why the search would not train ``prog`` (None: it would): the gradient rule, and with
    ``lr_proportional`` the learning-rate rule."""
    return pruning_reason(prog) or (lr_reason(prog) if lr_proportional else None)


def follows_lr(prog: Program) -> bool:
    """Whether ``prog``'s update is proportional to its ``lr`` input."""
    return lr_reason(prog) is None
