"""Which literals of a program become constructor arguments of its optimizer.

The rule (documented in the README, "Export"): the weight of every ``interp`` whose third argument is a
plain literal becomes an entry of ``betas``, in the order the statements run; a literal ``c`` in the
single statement ``w * c`` (or ``c * w``) on the input weight becomes ``weight_decay``; a literal
base ``c`` of ``power(c, t)`` (a bias correction, Adam's ``beta ** t``) whose value equals one of the
betas follows that entry, so that ``betas=...`` moves an average and its correction together. Every
other literal stays baked into the update rule. For Lion this gives lion-pytorch's constructor,
``Lion(params, lr, betas=(0.9, 0.99), weight_decay=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evosearch.lang.ir import STEP, WEIGHT, Const
from evosearch.lang.liveness import dataflow, needed_statements
from evosearch.lang.program import Program


@dataclass(frozen=True)
class HyperSpec:
    """A program's constructor arguments: their defaults, and which literal (statement, argument
    position) each one replaces."""
    defaults: dict = field(default_factory=dict)        # name -> default (float or tuple of floats)
    bindings: dict = field(default_factory=dict)        # (stmt, arg pos) -> (name, index or None)


DECOUPLED_DECAY = 0.0    # the default of ``weight_decay`` for a program that has no decay literal


def constructor_defaults(spec: HyperSpec) -> dict:
    """An optimizer's arguments after ``lr``: the program's named literals, and ``weight_decay``
    in every case (``DECOUPLED_DECAY`` when the program has none: the optimizer then applies it
    decoupled, ``w <- w * (1 - lr * weight_decay)`` before each step, as torch.optim.AdamW and
    lion-pytorch do), so that any exported optimizer drops in where AdamW or Lion was."""
    if "weight_decay" in spec.defaults:
        return dict(spec.defaults)
    return {**spec.defaults, "weight_decay": DECOUPLED_DECAY}


def decoupled_decay(spec: HyperSpec) -> bool:
    """Whether ``weight_decay`` is applied by the optimizer (True) or is a literal of the program."""
    return "weight_decay" not in spec.defaults


def infer(prog: Program) -> HyperSpec:
    """The hyperparameters of ``prog`` by the rule of the module docstring."""
    flow = dataflow(prog)
    needed = needed_statements(prog)
    betas, bindings, decay = [], {}, []
    for i in needed:
        s = prog.statements[i]
        if s.op == "interp" and isinstance(s.args[2], Const) and not s.args[2].name:
            bindings[(i, 2)] = ("betas", len(betas))
            betas.append(float(s.args[2].value))
        if s.op == "multiply":
            reads = iter(flow.reads[i])
            defs = [next(reads) if not isinstance(a, Const) else None for a in s.args]
            for pos in (0, 1):
                other = s.args[1 - pos]
                if defs[pos] == ("in", WEIGHT) and isinstance(other, Const) and not other.name:
                    decay.append((i, 1 - pos, float(other.value)))
    for i in needed:
        s = prog.statements[i]
        base = s.args[0] if s.op == "power" else None
        if (isinstance(base, Const) and not base.name and float(base.value) in betas
                and flow.reads[i] == (("in", STEP),)):
            bindings[(i, 0)] = ("betas", betas.index(float(base.value)))
    defaults = {}
    if betas:
        defaults["betas"] = tuple(betas)
    if len(decay) == 1:
        i, pos, value = decay[0]
        bindings[(i, pos)] = ("weight_decay", None)
        defaults["weight_decay"] = value
    return HyperSpec(defaults, bindings)
