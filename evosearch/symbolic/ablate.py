"""Approximate simplification, only when asked (``evosearch simplify PROGRAM --ablate TASK``):
greedily remove a statement, or replace a function call by its argument, when the task's fitness
changes by less than a tolerance. The paper simplified Lion's raw program this way (it dropped an
``arcsin`` and a ``clip``). The result is reported as approximate: it is *not* the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

from evosearch.lang.errors import ProgramError
from evosearch.lang.ir import Const, Statement
from evosearch.lang.kinds import check
from evosearch.lang.pruning import follows_lr, why_pruned
from evosearch.lang.program import Program

from .exact import simplify


@dataclass(frozen=True)
class Ablation:
    """The approximately simplified program, the fitness before and after, and what each step
    removed."""
    program: Program
    fitness_before: float
    fitness_after: float
    steps: tuple[str, ...]


def _variants(prog: Program):
    for i, s in enumerate(prog.statements):
        rest = prog.statements[:i] + prog.statements[i + 1:]
        yield f"removed `{s}`", Program(prog.inputs, rest, prog.outputs, prog.name)
        if len(s.args) == 1 or s.op in ("clip", "power"):
            ident = Statement(s.target, "multiply", (s.args[0], Const(1.0)))
            yield (f"replaced `{s}` by its argument",
                   Program(prog.inputs, prog.statements[:i] + (ident,) + prog.statements[i + 1:],
                           prog.outputs, prog.name))


def ablate(prog: Program, fitness, tolerance: float = 0.01) -> Ablation:
    """``fitness(program) -> float`` scores a program (e.g. a task's evaluate). Greedy: keep taking
    the first variant whose fitness is within ``tolerance`` of the original's. A program whose update
    follows ``lr`` keeps doing so (``lang/pruning.py``)."""
    keeps_lr = follows_lr(prog)
    base = fitness(prog)
    current, steps = prog, []
    improved = True
    while improved:
        improved = False
        for how, variant in _variants(current):
            try:
                check(variant)
            except ProgramError:
                continue
            if why_pruned(variant, lr_proportional=keeps_lr):
                continue
            variant = simplify(variant)
            f = fitness(variant)
            if abs(f - base) <= tolerance:
                steps.append(f"{how} (fitness {base:.4f} -> {f:.4f})")
                current, improved = variant, True
                break
    return Ablation(current, base, fitness(current), tuple(steps))
