"""Run a program on torch tensors: one call updates every parameter tensor of a group.

Values at run time are Python floats (constants, and lr/t in eager mode), 0-d tensors (lr/t when the
caller passes tensors, e.g. under ``torch.compile``) or lists with one tensor per parameter. Each
statement is applied to all parameters at once: with a ``torch._foreach_*`` kernel where the primitive
has one and the arguments allow it, else tensor by tensor. Only statements that some output needs
are run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

import primitives
from evosearch.lang.ir import GRAD, LR, STEP, WEIGHT, Const
from evosearch.lang.kinds import kinds
from evosearch.lang.liveness import dataflow, needed_statements
from evosearch.lang.program import Program
from primitives import SCALAR, TENSOR

# An argument reference in a compiled step: ("var", name) | ("const", value) | ("hyper", key, index)
Ref = tuple


@dataclass(frozen=True)
class _Step:
    target: str
    prim: primitives.Primitive
    refs: tuple[Ref, ...]
    foreach: bool          # may use prim.foreach when the caller asks for the multi-tensor path
    per_param: tuple[bool, ...]  # per argument: one value per parameter tensor (a list at run time)


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
            steps.append(_Step(s.target, prim, tuple(refs), fe, per_param))
        self.steps = tuple(steps)
        flow = dataflow(prog)
        # A state output that is another input's tensor (e.g. `return u, g`) must be copied, or the
        # in-place weight update and gradient accumulation would change it behind our back.
        self.copy_output = tuple(
            d[0] == "in" and d[1] != name
            for d, name in zip(flow.returns[1:], prog.state_names))
        self._fast = _generate(self)

    def __call__(self, w: Sequence[torch.Tensor], g: Sequence[torch.Tensor],
                 states: Sequence[Sequence[torch.Tensor]], lr, t=None, hyper: dict | None = None,
                 foreach: bool = True):
        """One step for a list of parameter tensors. Returns (updates, new states), lists of lists
        matching ``states``."""
        if foreach and type(lr) is float and (type(t) is float or STEP not in self.program.inputs):
            return self._fast(w, g, states, lr, t, hyper)
        return self.interpret(w, g, states, lr, t, hyper, foreach)

    def interpret(self, w, g, states, lr, t=None, hyper: dict | None = None, foreach: bool = True):
        """``__call__`` statement by statement (what ``_generate`` compiles for Python-float lr and
        t on the multi-tensor path; this serves every other case: 0-d tensor inputs under
        ``torch.compile``, the per-tensor path)."""
        prog = self.program
        env: dict[str, object] = {WEIGHT: list(w), GRAD: list(g), LR: lr}
        if STEP in prog.inputs:
            env[STEP] = t
        for name, vals in zip(prog.state_names, states):
            env[name] = list(vals)
        n = len(env[WEIGHT])
        for st in self.steps:
            args = []
            for ref in st.refs:
                if ref[0] == "var":
                    args.append(env[ref[1]])
                elif ref[0] == "const":
                    args.append(ref[1])
                else:
                    v = hyper[ref[1]]
                    args.append(float(v if ref[2] is None else v[ref[2]]))
            env[st.target] = _apply(st, args, n, foreach)
        outs = []
        for k, name in enumerate(prog.outputs):
            v = env[name]
            if not isinstance(v, list):
                raise TypeError(f"output {name!r} is not a per-parameter value")  # excluded by kinds()
            if k > 0 and self.copy_output[k - 1]:
                v = [x.clone() for x in v]
            outs.append(v)
        return outs[0], outs[1:]


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


def _generate(compiled: CompiledProgram):
    """``compiled.interpret`` for Python-float ``lr`` and ``t`` and ``foreach=True`` as straight-line
    Python: each statement calls what ``_apply`` would call for it (which argument is a list, one
    value per parameter tensor, is known from the program), so results are the same bit for bit,
    without the per-statement dispatch (half the cost of a small model's update).
    tests/test_compiled.py checks the two on random programs."""
    prog = compiled.program
    ident: dict[str, str] = {}

    def name(var: str) -> str:
        return ident.setdefault(var, f"v{len(ident)}")
    listed = {WEIGHT: True, GRAD: True, LR: False, STEP: False, **{s: True for s in prog.state_names}}
    lines = ["def step(w, g, states, lr, t, hyper):",
             f"    {name(WEIGHT)} = list(w)", f"    {name(GRAD)} = list(g)", f"    {name(LR)} = lr",
             f"    {name(STEP)} = t", f"    n = len({name(WEIGHT)})"]
    lines += [f"    {name(s)} = list(states[{k}])" for k, s in enumerate(prog.state_names)]
    scope: dict[str, object] = {"_f64": np.float64}
    for i, st in enumerate(compiled.steps):
        args, lists = [], []
        for pos, ref in enumerate(st.refs):
            if ref[0] == "var":
                args.append(name(ref[1]))
                lists.append(listed[ref[1]])
            elif ref[0] == "const":
                scope[f"k{i}_{pos}"] = ref[1]
                args.append(f"k{i}_{pos}")
                lists.append(False)
            else:   # read once, before the statement, as interpret does
                lines.append(f"    h{i}_{pos} = float(hyper[{ref[1]!r}]"
                             + (")" if ref[2] is None else f"[{int(ref[2])}])"))
                args.append(f"h{i}_{pos}")
                lists.append(False)
        scope[f"torch{i}"], scope[f"numpy{i}"], scope[f"foreach{i}"] = st.prim.torch, st.prim.numpy, st.prim.foreach
        if st.prim.reduces is not None:
            expr = f"torch{i}({', '.join(a if is_list else f'[{a}] * n' for a, is_list in zip(args, lists))})"
        elif not any(lists):
            expr = f"float(numpy{i}({', '.join(f'_f64({a})' for a in args)}))"
        elif st.foreach:
            expr = f"list(foreach{i}({', '.join(args)}))"
        else:
            each = ", ".join(f"{a}[j]" if is_list else a for a, is_list in zip(args, lists))
            expr = f"[torch{i}({each}) for j in range(n)]"
        lines.append(f"    {name(st.target)} = {expr}")
        listed[st.target] = st.prim.reduces is not None or any(lists)
    if not all(listed[out] for out in prog.outputs):   # excluded by kinds(); interpret raises
        return compiled.interpret
    outs = [name(out) if k == 0 or not compiled.copy_output[k - 1] else f"[x.clone() for x in {name(out)}]"
            for k, out in enumerate(prog.outputs)]
    lines.append(f"    return {outs[0]}, [{', '.join(outs[1:])}]")
    exec(compile("\n".join(lines), f"<program {prog.name or 'train'}>", "exec"), scope)  # noqa: S102
    return scope["step"]
