"""One step of a program with the primitives' numpy forms (float64), on flat arrays that hold
several parameter tensors end to end. Used by the functional fingerprint and by the numerical
equivalence checks of simplification; training runs programs on torch (``evosearch.optim.compiled``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from primitives._guards import finite

from .ir import Const
from .liveness import needed_statements

if TYPE_CHECKING:
    from .program import Program


def numpy_step(prog: Program, env: dict, sizes: tuple[int, ...], forms: dict | None = None,
               trace: dict | None = None, raw: bool = False, dtype=None):
    """Run ``prog`` once on ``env`` (inputs by name; tensors are flat arrays of ``sum(sizes)``
    elements, scalars are numbers). A per-tensor reduction sees each segment of ``sizes`` on its own
    and its result is broadcast over the segment. ``forms`` replaces some primitives' numpy forms
    (by name); ``trace``, when given, receives each statement's value by statement index. Returns
    (update, {state: new value}), flat and made finite (NaN -> 0, inf -> ±1e30) unless ``raw``.
    ``dtype`` (e.g. ``np.float32``, as training computes) rounds literals and every statement's value
    to that type; by default values stay float64."""
    total = sum(sizes)
    cuts = list(np.cumsum(sizes)[:-1])
    env = dict(env)
    with np.errstate(all="ignore"):
        for i in needed_statements(prog):
            s = prog.statements[i]
            prim = s.primitive
            args = [(dtype or np.float64)(a.value) if isinstance(a, Const) else env[a.name] for a in s.args]
            if prim.reduces is not None:
                parts = prim.numpy(*[np.split(_whole(a, total), cuts) for a in args])
                env[s.target] = np.concatenate([np.broadcast_to(p, (n,)) for p, n in zip(parts, sizes)])
            else:
                fn = forms.get(prim.name, prim.numpy) if forms else prim.numpy
                env[s.target] = fn(*args)
            if dtype is not None:
                env[s.target] = np.asarray(env[s.target], dtype=dtype)
            if trace is not None:
                trace[i] = env[s.target]
        made = (lambda x: x) if raw else finite
        update = made(_whole(env[prog.outputs[0]], total).astype(dtype or np.float64))
        states = {name: made(_whole(env[out], total).astype(dtype or np.float64))
                  for name, out in zip(prog.state_names, prog.outputs[1:])}
    return update, states


def _whole(x, total: int):
    """``x`` over all ``total`` elements (a number is broadcast; a whole array passes as it is,
    without numpy's broadcast machinery, a tenth of the search driver's time)."""
    return x if getattr(x, "shape", None) == (total,) else np.broadcast_to(x, (total,))
