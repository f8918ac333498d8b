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
    return numpy_stepper(prog, sizes, forms, raw, dtype)(env, trace)


def numpy_stepper(prog: Program, sizes: tuple[int, ...], forms: dict | None = None, raw: bool = False,
                  dtype=None):
    """``numpy_step`` for ``prog`` with these settings, prepared once (its needed statements with
    their forms and literals looked up) for the analyses that run a program for several steps:
    ``stepper(env, trace=None)`` returns what ``numpy_step(prog, env, sizes, ...)`` does."""
    total = sum(sizes)
    cuts = list(np.cumsum(sizes)[:-1])
    dt = dtype or np.float64
    plan = []
    for i in needed_statements(prog):
        s = prog.statements[i]
        prim = s.primitive
        fn = forms.get(prim.name, prim.numpy) if forms and prim.reduces is None else prim.numpy
        args = tuple((True, dt(a.value)) if isinstance(a, Const) else (False, a.name) for a in s.args)
        plan.append((i, s.target, fn, prim.reduces is not None, args))
    made = (lambda x: x) if raw else finite
    update_out, state_outs = prog.outputs[0], tuple(zip(prog.state_names, prog.outputs[1:]))

    def step(env: dict, trace: dict | None = None):
        env = dict(env)
        with np.errstate(all="ignore"):
            for i, target, fn, reduces, args in plan:
                values = [v if is_const else env[v] for is_const, v in args]
                if reduces:
                    parts = fn(*[np.split(_whole(a, total), cuts) for a in values])
                    env[target] = np.concatenate([np.broadcast_to(p, (n,)) for p, n in zip(parts, sizes)])
                else:
                    env[target] = fn(*values)
                if dtype is not None:
                    env[target] = np.asarray(env[target], dtype=dtype)
                if trace is not None:
                    trace[i] = env[target]
            update = made(_whole(env[update_out], total).astype(dt))
            states = {name: made(_whole(env[out], total).astype(dt)) for name, out in state_outs}
        return update, states
    return step


def _whole(x, total: int):
    """``x`` over all ``total`` elements (a number is broadcast; a whole array passes as it is,
    without numpy's broadcast machinery, a tenth of the search driver's time)."""
    return x if getattr(x, "shape", None) == (total,) else np.broadcast_to(x, (total,))
