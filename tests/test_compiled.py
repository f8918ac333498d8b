"""``CompiledProgram`` (``evosearch.optim.compiled``): the generated straight-line step (Python-float
lr and t, multi-tensor path) must compute bit for bit what the statement-by-statement interpreter
computes, on the programs a search trains (mutants of the reference programs, every primitive
allowed) and on special values."""

from __future__ import annotations

import math
import random

import pytest
import torch

from evosearch import Program, reference
from evosearch.optim import hyperparams
from evosearch.lang.kinds import kinds
from evosearch.lang.errors import ProgramError
from evosearch.optim.compiled import CompiledProgram
from evosearch.search.mutation import MutationConfig, mutate

SHAPES = [(6, 5), (5,), (3, 2, 2)]      # one model's parameters
SPECIAL = torch.tensor([0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38, math.inf, -math.inf, math.nan, 1.0, -2.5])


def mutants(count: int, seed: int) -> list[Program]:
    rng, config, out = random.Random(seed), MutationConfig(), []
    while len(out) < count:
        prog = reference.load(rng.choice(reference.names()))
        for _ in range(rng.randrange(5)):
            prog = mutate(prog, rng, config)[0]
        try:
            kinds(prog)    # a search would not train it
        except ProgramError:
            continue
        out.append(prog)
    return out


def bits(result) -> list[torch.Tensor]:
    updates, states = result
    return [x.view(torch.int32) for x in updates + [v for s in states for v in s]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_step_is_the_interpreter_bit_for_bit(seed):
    gen = torch.Generator().manual_seed(seed)

    def tensor(shape):
        x = torch.randn(shape, generator=gen)
        special = SPECIAL[torch.randint(len(SPECIAL), shape, generator=gen)]
        return torch.where(torch.rand(shape, generator=gen) < 0.1, special, x)

    for i, prog in enumerate(mutants(60, seed)):
        spec = hyperparams.infer(prog)
        compiled = CompiledProgram(prog, spec.bindings)
        assert compiled._fast is not compiled.interpret
        shapes = [(sum(math.prod(s) for s in SHAPES),)] if i % 2 else SHAPES
        w, g = [tensor(s) for s in shapes], [tensor(s) for s in shapes]
        states = [[tensor(s) for s in shapes] for _ in prog.state_names]
        args = (w, g, states, [1e-3, 1.0, -0.0][i % 3], float(i % 5 + 1), dict(spec.defaults))
        try:
            alone = compiled.interpret(*args)
        except Exception as exc:  # noqa: BLE001 - the generated step must raise the same
            with pytest.raises(type(exc)):
                compiled(*args)
            continue
        fast = compiled(*args)
        for a, b in zip(bits(alone), bits(fast), strict=True):
            assert torch.equal(a, b), str(prog)


def test_other_inputs_are_interpreted():
    prog = reference.load("adam")        # reads t
    spec = hyperparams.infer(prog)
    compiled = CompiledProgram(prog, spec.bindings)
    w, g = [torch.randn(4)], [torch.randn(4)]
    states = [[torch.zeros(4)], [torch.zeros(4)]]
    calls = []
    compiled.interpret = lambda *args: calls.append(args) or ([w[0]], [[w[0]], [w[0]]])
    compiled(w, g, states, torch.tensor(1e-3), 1.0, dict(spec.defaults))   # a 0-d tensor lr (compile)
    compiled(w, g, states, 1e-3, None, dict(spec.defaults))                # no step count
    compiled(w, g, states, 1e-3, 1.0, dict(spec.defaults), False)          # the per-tensor path
    assert len(calls) == 3
