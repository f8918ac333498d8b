"""Run a program on torch tensors: one call updates every parameter tensor of a group.

Values at run time are Python floats (constants, and lr/t in eager mode), 0-d tensors (lr/t when the
caller passes tensors, e.g. under ``torch.compile``) or lists with one tensor per parameter. Each
statement is applied to all parameters at once: with a ``torch._foreach_*`` kernel where the primitive
has one and the arguments allow it, else tensor by tensor. Only statements that some output needs
are run.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

import primitives
from primitives import SCALAR, TENSOR

from .analysis import dataflow, kinds, needed_statements
from .program import GRAD, LR, STEP, WEIGHT, Const, Program

# An argument reference in a compiled step: ("var", name) | ("const", value) | ("hyper", key, index)
Ref = tuple


@dataclass(frozen=True)
class _Step:
    target: str
    prim: primitives.Primitive
    refs: tuple[Ref, ...]
    foreach: bool          # may use prim.foreach when the caller asks for the multi-tensor path
    per_param: tuple[bool, ...]  # per argument: one value per parameter tensor (a list at run time)
    tensor: tuple[bool, ...]     # per argument: shaped like the weight (not a per-tensor scalar)


class CompiledProgram:
    """A program prepared for repeated execution.

    ``hyper`` maps (statement index, argument position) to a hyperparameter reference
    ``(key, index)``: that literal is then read from the ``hyper`` dict passed at call time
    (``hyper[key]`` or ``hyper[key][index]``), so that optimizer param groups can override it.
    """

    def __init__(self, prog: Program, hyper: dict[tuple[int, int], tuple[str, int | None]] | None = None):
        self.program = prog
        hyper = hyper or {}
        envs = kinds(prog)
        reduced: set[str] = set()   # scalar variables that hold one value per parameter tensor
        steps = []
        for i in needed_statements(prog):
            s, env = prog.statements[i], envs[i]
            refs = []
            for pos, a in enumerate(s.args):
                if (i, pos) in hyper:
                    refs.append(("hyper",) + tuple(hyper[(i, pos)]))
                elif isinstance(a, Const):
                    refs.append(("const", float(a.value)))
                else:
                    refs.append(("var", a.name))
            prim = s.primitive
            vars_ = [a.name for a in s.args if not isinstance(a, Const)]
            arg_kinds = [env[a.name] if not isinstance(a, Const) else SCALAR for a in s.args]
            reduced_before = set(reduced)
            is_reduced = prim.reduces is not None or any(v in reduced for v in vars_)
            if is_reduced and prim.result(tuple(arg_kinds)) == SCALAR:
                reduced.add(s.target)
            else:
                reduced.discard(s.target)
            fe = (prim.foreach is not None and prim.reduces is None and arg_kinds[0] == TENSOR
                  and not (isinstance(s.args[0], Const))
                  and all(k == TENSOR or (isinstance(a, Const) or a.name not in reduced_before)
                          for a, k in zip(s.args[1:], arg_kinds[1:])))
            per_param = tuple(not isinstance(a, Const) and (k == TENSOR or a.name in reduced_before)
                              for a, k in zip(s.args, arg_kinds))
            tensor = tuple(k == TENSOR for k in arg_kinds)
            steps.append(_Step(s.target, prim, tuple(refs), fe, per_param, tensor))
        self.steps = tuple(steps)
        flow = dataflow(prog)
        # A state output that is another input's tensor (e.g. `return u, g`) must be copied, or the
        # in-place weight update and gradient accumulation would change it behind our back.
        self.copy_output = tuple(
            d[0] == "in" and d[1] != name
            for d, name in zip(flow.returns[1:], prog.state_names))

    def __call__(self, w: Sequence[torch.Tensor], g: Sequence[torch.Tensor],
                 states: Sequence[Sequence[torch.Tensor]], lr, t=None, hyper: dict | None = None,
                 foreach: bool = True):
        """One step for a list of parameter tensors. Returns (updates, new states), lists of lists
        matching ``states``."""
        env = self._inputs(w, g, states, lr, t)
        n = len(env[WEIGHT])
        for st in self.steps:
            env[st.target] = _apply(st, _args(st, env, hyper), n, foreach)
        return self._outputs(env)

    def group_plan(self) -> list:
        """Per statement, for ``call_many``: None if it runs alone, else (the part of its grouping
        key that is fixed: primitive and which arguments are per-parameter lists, the positions of
        its scalar arguments). A statement is grouped when ``_apply`` would run it with a
        multi-tensor kernel (with Python-float scalars), or when all its arguments are lists and
        it has a form in ``_GROUP_FORMS``, or when its primitive is in ``_JOINED`` and its list
        arguments are all weight-shaped."""
        if not hasattr(self, "_plan"):
            self._plan = [
                ((st.prim.name, st.per_param), [p for p, listed in enumerate(st.per_param) if not listed])
                if st.foreach or (st.prim.name in _GROUP_FORMS and all(st.per_param))
                or (st.prim.name in _JOINED and any(st.tensor)
                    and all(t or not listed for t, listed in zip(st.tensor, st.per_param))) else None
                for st in self.steps]
        return self._plan

    def _inputs(self, w, g, states, lr, t) -> dict:
        prog = self.program
        env: dict[str, object] = {WEIGHT: list(w), GRAD: list(g), LR: lr}
        if STEP in prog.inputs:
            env[STEP] = t
        for name, vals in zip(prog.state_names, states):
            env[name] = list(vals)
        return env

    def _outputs(self, env: dict):
        outs = []
        for k, name in enumerate(self.program.outputs):
            v = env[name]
            if not isinstance(v, list):
                raise TypeError(f"output {name!r} is not a per-parameter value")  # excluded by kinds()
            if k > 0 and self.copy_output[k - 1]:
                v = [x.clone() for x in v]
            outs.append(v)
        return outs[0], outs[1:]


def call_many(calls: Sequence[tuple]) -> list:
    """Several programs, one step each: ``calls[i]`` is ``(compiled, w, g, states, lr, t, hyper)``
    and ``result[i]`` is what ``compiled(w, g, states, lr, t, hyper)`` returns, bit for bit, or the
    exception that it raised.

    The programs run in lockstep, one statement each per round. Statements of a round that would
    take the multi-tensor path with the same primitive and the same scalar arguments are one
    ``_foreach_*`` call over all their tensors: on CPU such a call runs the one-tensor kernel
    tensor by tensor, so every value is what the program computes alone, at a fraction of the
    per-call overhead (batched evaluation of K candidates, ``tasks.batched``)."""
    runs = [_Run(c, *args) for c, *args in calls]
    live = list(runs)
    while live:
        groups: dict[tuple, list[_Run]] = {}
        for run in live:
            run.advance()
            if run.key is not None:
                groups.setdefault(run.key, []).append(run)
        for members in groups.values():
            _apply_group(members)
        live = [run for run in live if run.key is not None]
    return [run.result() for run in runs]


class _Run:
    """One program's step in ``call_many``: its environment and next statement."""

    def __init__(self, compiled: CompiledProgram, w, g, states, lr, t=None, hyper=None):
        self.compiled, self.hyper = compiled, hyper
        self.error: Exception | None = None
        self.key: tuple | None = None      # the grouping key of the pending statement, None when done
        self.index, self.n = 0, 0
        self.plan = None
        try:
            self.env = compiled._inputs(w, g, states, lr, t)
            self.n = len(self.env[WEIGHT])
            # grouping needs Python-float scalars (lr and t may be 0-d tensors, e.g. under compile)
            # and as many tensors in every list as weights (else the program raises alone)
            if type(lr) is float and type(t) in (float, type(None)) and self.n and all(
                    len(self.env[name]) == self.n for name in (GRAD, *compiled.program.state_names)):
                self.plan = compiled.group_plan()
        except Exception as exc:  # noqa: BLE001 - reported as this program's result
            self.env, self.error = {}, exc

    def advance(self) -> None:
        """Run statements that cannot share a call, up to the next one that can (its arguments in
        ``self.args``, its key in ``self.key``) or the end."""
        steps, self.key = self.compiled.steps, None
        if self.error is not None:
            return
        try:
            plan = self.plan or [None] * len(steps)
            while self.index < len(steps):
                st = steps[self.index]
                args = _args(st, self.env, self.hyper)
                if plan[self.index] is not None:
                    pattern, scalars = plan[self.index]
                    self.args = args
                    # the scalars' bits: equal keys mean equal scalars (-0.0 is not 0.0)
                    self.key = (pattern, *[_bits(args[pos]) for pos in scalars])
                    return
                self.env[st.target] = _apply(st, args, self.n, True)
                self.index += 1
        except Exception as exc:  # noqa: BLE001 - reported as this program's result
            self.error = exc

    def done(self, value) -> None:
        self.env[self.compiled.steps[self.index].target] = value
        self.index += 1

    def result(self):
        if self.error is not None:
            return self.error
        try:
            return self.compiled._outputs(self.env)
        except Exception as exc:  # noqa: BLE001
            return exc


_bits = struct.Struct("<d").pack

# Multi-tensor forms, for call_many only, of primitives without one: each is the primitive's own
# kernels tensor by tensor (square is pow(x, 2), which torch computes as x * x), which
# tests/test_execute.py checks bit for bit, special values included.
_GROUP_FORMS = {
    "square": lambda xs: torch._foreach_mul(xs, xs),
    "sqrt": lambda xs: torch._foreach_sqrt(torch._foreach_abs(xs)),
}


# Primitives whose torch forms are exact element by element (IEEE -, / and copysign, nan_to_num):
# an element's result does not depend on where it sits in its tensor. A grouped statement of one
# of these runs once on the members' tensors joined end to end. Not the transcendental functions,
# whose vectorised and scalar-tail kernels may round differently; not interp, whose add with alpha
# is fused in the vectorised kernel only; not max, min or clip: torch.maximum(-0.0, 0.0) is 0.0 in
# the vectorised body and -0.0 in the scalar tail.
_JOINED = {"divide", "reciprocal", "invert"}


def _joined(prim: primitives.Primitive, args: list) -> list:
    """``prim.torch`` on the list arguments joined end to end (all weight-shaped, one list of
    tensors per argument, of equal shapes position by position), split back into tensors."""
    first = next(a for a in args if a.__class__ is list)
    out = prim.torch(*[torch.cat([t.reshape(-1) for t in a]) if a.__class__ is list else a for a in args])
    return [o.view(t.shape) for o, t in zip(out.split([t.numel() for t in first]), first)]


def _apply_group(members: list[_Run]) -> None:
    """One pending statement of each run, equal up to their tensors: one multi-tensor call."""
    st = members[0].compiled.steps[members[0].index]
    if len(members) > 1:
        args = [[x for run in members for x in run.args[pos]] if a.__class__ is list else a
                for pos, a in enumerate(members[0].args)]
        try:
            if st.foreach:
                out = list(st.prim.foreach(*args))
            elif st.prim.name in _GROUP_FORMS:
                out = list(_GROUP_FORMS[st.prim.name](*args))
            else:
                out = _joined(st.prim, args)
        except Exception:  # noqa: BLE001 - find out whose statement it was, one at a time below
            pass
        else:
            offset = 0
            for run in members:
                run.done(out[offset:offset + run.n])
                offset += run.n
            return
    for run in members:
        try:
            run.done(_apply(run.compiled.steps[run.index], run.args, run.n, True))
        except Exception as exc:  # noqa: BLE001 - reported as this program's result
            run.error, run.key = exc, None


def _args(st: _Step, env: dict, hyper: dict | None) -> list:
    args = []
    for ref in st.refs:
        if ref[0] == "var":
            args.append(env[ref[1]])
        elif ref[0] == "const":
            args.append(ref[1])
        else:
            v = hyper[ref[1]]
            args.append(float(v if ref[2] is None else v[ref[2]]))
    return args


def _apply(st: _Step, args: list, n: int, foreach: bool):
    prim = st.prim
    if prim.reduces is not None:
        return prim.torch(*[a if isinstance(a, list) else [a] * n for a in args])
    if not any(isinstance(a, list) for a in args):
        if all(isinstance(a, float) for a in args):
            return float(prim.numpy(*[np.float64(a) for a in args]))
        return prim.torch(*args)
    if foreach and st.foreach:
        return list(prim.foreach(*args))
    return [prim.torch(*[a[i] if isinstance(a, list) else a for a in args]) for i in range(n)]
