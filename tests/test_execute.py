"""``execute.call_many``: several programs stepped in lockstep, with equal statements joined into one
multi-tensor call, must give each program bit for bit what it computes alone, and keep one program's
error to itself."""

from __future__ import annotations

import math
import random

import pytest
import torch

import primitives
from evosearch import Program, hyperparams, reference
from evosearch.analysis import kinds
from evosearch.errors import ProgramError
from evosearch.execute import _GROUP_FORMS, _JOINED, CompiledProgram, call_many
from evosearch.mutation import MutationConfig, mutate

SHAPES = [(6, 5), (5,), (3, 2, 2)]      # one model's parameters


def mutants(count: int, seed: int) -> list[Program]:
    """Programs a search would evaluate together: mutation chains from the reference programs, with
    every primitive allowed (reductions included)."""
    rng, config, out = random.Random(seed), MutationConfig(), []
    names = reference.names()
    while len(out) < count:
        prog = reference.load(rng.choice(names))
        for _ in range(rng.randrange(4)):
            prog = mutate(prog, rng, config)[0]
        try:
            kinds(prog)    # a search would not train it
        except ProgramError:
            continue
        out.append(prog)
    return out


def step_args(prog: Program, gen: torch.Generator, flat: bool, lr: float, t: float):
    spec = hyperparams.infer(prog)
    compiled = CompiledProgram(prog, spec.bindings)
    shapes = [(sum(math.prod(s) for s in SHAPES),)] if flat else SHAPES

    def tensors():
        return [torch.randn(s, generator=gen) for s in shapes]
    states = [tensors() for _ in prog.state_names]
    return (compiled, tensors(), tensors(), states, lr, t, dict(spec.defaults))


def assert_bitwise(a, b) -> None:
    ua, sa = a
    ub, sb = b
    for x, y in zip(ua + [v for s in sa for v in s], ub + [v for s in sb for v in s]):
        assert x.shape == y.shape
        # the bits, so that -0.0 against 0.0 and NaN payloads count as differences
        assert torch.equal(x.view(torch.int32), y.view(torch.int32))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lockstep_steps_equal_each_program_alone(seed):
    gen = torch.Generator().manual_seed(seed)
    programs = mutants(40, seed)
    calls = [step_args(p, gen, flat=(i % 3 != 0), lr=[1.0, 0.5][i % 2], t=3.0)
             for i, p in enumerate(programs)]
    # the same programs again, so that statements share calls, at equal and unequal learning rates
    calls += [step_args(p, gen, flat=True, lr=1.0, t=3.0) for p in programs]
    alone = [c[0](*c[1:]) for c in calls]
    together = call_many(calls)
    for a, b in zip(alone, together):
        assert not isinstance(b, Exception), b
        assert_bitwise(a, b)


def test_equal_scalars_of_opposite_sign_do_not_share_a_call():
    prog = Program.parse("def train(w, g, lr):\n    update = g * lr\n    return update\n")
    gen = torch.Generator().manual_seed(0)
    pos, neg = step_args(prog, gen, True, 0.0, 1.0), step_args(prog, gen, True, -0.0, 1.0)
    (u_pos, _), (u_neg, _) = call_many([pos, neg])
    assert torch.equal(u_pos[0].signbit(), pos[2][0].signbit())
    assert torch.equal(u_neg[0].signbit(), ~neg[2][0].signbit())


def test_nan_scalars_of_opposite_sign_do_not_share_a_call():
    prog = Program.parse("def train(w, g, lr):\n    update = g * lr\n    return update\n")
    gen = torch.Generator().manual_seed(0)
    calls = [step_args(prog, gen, True, math.nan, 1.0), step_args(prog, gen, True, -math.nan, 1.0)]
    for call, result in zip(calls, call_many(calls)):
        assert_bitwise(call[0](*call[1:]), result)


def test_lists_that_make_a_program_raise_alone_raise_in_lockstep():
    """Joined lists would hide a program's own length mismatch (or emptiness) from torch."""
    prog = reference.load("lion")
    gen = torch.Generator().manual_seed(0)
    # 2 weights and 1 state tensor, 1 weight and 2 state tensors (all of one shape): joined, 3 and 3
    a, b = step_args(prog, gen, True, 1.0, 1.0), step_args(prog, gen, True, 1.0, 1.0)
    a[1].append(a[1][0].clone())
    a[2].append(a[2][0].clone())
    b[3][0].append(b[3][0][0].clone())
    empty = (a[0], [], [], [[]], 1.0, 1.0, a[6])
    good = step_args(prog, gen, False, 1.0, 1.0)
    for call in (a, b, empty):
        with pytest.raises(RuntimeError):
            call[0](*call[1:])
    results = call_many([a, b, good, empty])
    assert all(isinstance(results[i], RuntimeError) for i in (0, 1, 3))
    assert_bitwise(good[0](*good[1:]), results[2])


def test_one_programs_error_is_its_own_result():
    prog = reference.load("lion")
    gen = torch.Generator().manual_seed(0)
    good = [step_args(prog, gen, True, 1.0, 1.0) for _ in range(3)]
    bad = step_args(prog, gen, True, 1.0, 1.0)
    bad[3][0][0] = torch.randn(7, generator=gen)     # a state of the wrong shape: interp raises
    results = call_many([good[0], bad, good[1], good[2]])
    assert isinstance(results[1], RuntimeError)
    for call, result in zip(good, [results[0], results[2], results[3]]):
        assert_bitwise(call[0](*call[1:]), result)


@pytest.mark.parametrize("name", sorted(_GROUP_FORMS))
def test_group_forms_are_the_primitive_bit_for_bit(name):
    special = torch.tensor([0.0, -0.0, 1e-45, -1e-45, 1e-38, 3e38, -3e38, math.inf, -math.inf, math.nan,
                            1.0, -2.5, 7e-3])
    xs = [special, torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 1e3]
    prim = primitives.get(name)
    for x, y in zip(_GROUP_FORMS[name](xs), xs):
        assert torch.equal(x.view(torch.int32), prim.torch(y).view(torch.int32))


def test_joined_statements_are_each_alone_bit_for_bit_on_special_values():
    """Statements of ``_JOINED`` primitives run once on the members' tensors joined end to end, so an
    element may move between a kernel's vectorised body and its scalar tail: their results must not
    depend on that, with infinities, NaN, signed zeros and subnormals included."""
    prog = Program.parse(
        "def train(w, g, m, lr):\n    a = g / m\n    b = max(a, w)\n    c = clip(b, m)\n"
        "    d = reciprocal(c)\n    h = invert(d)\n    f = min(h, 0.5)\n    u = f / 3.0\n"
        "    update = u * lr\n    return update, m\n")
    assert _JOINED <= {s.op for s in prog.statements}
    # signed zeros often, so that max and min meet -0.0 against 0.0 (which their vectorised body and
    # scalar tail answer differently: they must not be joined)
    special = torch.tensor([0.0, -0.0, 0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38, math.inf, -math.inf, math.nan,
                            1.0, -2.5])
    gen = torch.Generator().manual_seed(0)

    def tensor(n):
        return torch.where(torch.rand(n, generator=gen) < 0.6,
                           special[torch.randint(len(special), (n,), generator=gen)], torch.randn(n, generator=gen))
    compiled = CompiledProgram(prog)
    calls = [(compiled, [tensor(n) for n in sizes], [tensor(n) for n in sizes], [[tensor(n) for n in sizes]],
              1.0, 1.0, None) for sizes in ([13, 7], [29], [5, 3, 17], [64], [1])]
    for call, result in zip(calls, call_many(calls)):
        assert_bitwise(call[0](*call[1:]), result)
