"""The primitive library: the paper's search space is all there, the torch, numpy and sympy forms of
each primitive agree where the guards are inactive, and the guards keep hostile inputs finite."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

import primitives
from primitives import ANY, CLAMP, DIV_EPS, SCALAR, TENSOR

# The 42 functions of the paper's `hero` space (Chen et al. 2023, appendix), plus `clip`.
UNARY = ("abs cos sin tan arcsin arccos arctan sinh cosh tanh arcsinh arccosh arctanh exp exp2 exp10 "
         "expm1 log log10 log2 log1p square sqrt cube cbrt sign reciprocal norm invert negative").split()
OTHERS = "global_norm interp dot cosine_sim clip_by_global_norm power".split()
BINARY = "add subtract multiply divide max min".split()
PAPER_SPACE = UNARY + OTHERS + BINARY
REDUCTIONS = ("norm", "dot", "cosine_sim", "global_norm", "clip_by_global_norm")

ELEMENTWISE = [n for n in primitives.names() if primitives.get(n).reduces is None]
DEFAULT_DOMAIN = (-3.0, 3.0)
# The sympy forms drop the division guard, x / (y + copysign(1e-8, y)): on a domain with |y| >= lo
# they differ from the guarded forms by up to DIV_EPS / lo relative.
SYMPY_RTOL = {"divide": 1e-9 + DIV_EPS / 0.5, "reciprocal": 1e-9 + DIV_EPS / 0.1}
N = 64


def _domain(prim) -> tuple[tuple[float, float], ...]:
    return prim.domain or (DEFAULT_DOMAIN,) * prim.arity


def _samples(prim, rng) -> list[np.ndarray]:
    return [rng.uniform(lo, hi, N) for lo, hi in _domain(prim)]


def _t(x, dtype=torch.float64) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _lambdify(prim):
    syms = sp.symbols(f"x0:{prim.arity}", real=True)
    return sp.lambdify(syms, prim.sympy(*syms), modules="numpy")


# -- the registry ----------------------------------------------------------------------------------

def test_registry_holds_the_papers_space_and_clip():
    assert len(PAPER_SPACE) == 42 and len(set(PAPER_SPACE)) == 42
    assert set(PAPER_SPACE) | {"clip"} <= set(primitives.names())
    assert primitives.names() == sorted(primitives.registry())


def test_constants():
    assert set(primitives.CONSTANTS) == {"pi", "e", "eps"}
    assert primitives.CONSTANTS["pi"] == math.pi and primitives.CONSTANTS["e"] == math.e
    assert primitives.CONSTANTS["eps"] == DIV_EPS == 1e-8


@pytest.mark.parametrize("name, arity", [
    *[(n, 1) for n in UNARY], *[(n, 2) for n in BINARY], ("interp", 3), ("power", 2), ("clip", 2),
    ("global_norm", 1), ("dot", 2), ("cosine_sim", 2), ("clip_by_global_norm", 2)])
def test_arity(name, arity):
    prim = primitives.get(name)
    assert prim.name == name and prim.arity == arity == len(prim.arg_kinds)
    assert set(prim.arg_kinds) <= {TENSOR, SCALAR, ANY}
    assert len(prim.domain) in (0, arity)
    assert prim.doc


def test_kinds_of_reductions():
    assert primitives.get("norm").reduces == "tensor" and primitives.get("dot").reduces == "tensor"
    assert primitives.get("cosine_sim").reduces == "tensor"
    assert primitives.get("global_norm").reduces == "global"
    assert primitives.get("clip_by_global_norm").reduces == "global"
    for name in ("norm", "dot", "cosine_sim", "global_norm"):
        assert primitives.get(name).result((TENSOR,) * primitives.get(name).arity) == SCALAR
    assert primitives.get("clip_by_global_norm").result((TENSOR, SCALAR)) == TENSOR
    assert primitives.get("add").result((SCALAR, SCALAR)) == SCALAR
    assert primitives.get("add").result((SCALAR, TENSOR)) == TENSOR
    assert set(REDUCTIONS) == {n for n in primitives.names() if primitives.get(n).reduces}


def test_infix_operators():
    assert {p: primitives.INFIX[p].name for p in primitives.INFIX} == {
        "+": "add", "-": "subtract", "*": "multiply", "/": "divide", "neg": "negative"}


def test_get_unknown_is_a_key_error():
    with pytest.raises(KeyError):
        primitives.get("softsign")


# -- the three forms agree -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ELEMENTWISE)
def test_torch_numpy_and_sympy_forms_agree(name):
    prim = primitives.get(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    xs = _samples(prim, rng)
    ref = _np(prim.numpy(*xs)).astype(np.float64)
    assert ref.shape == (N,) and np.all(np.isfinite(ref))
    got = prim.torch(*[_t(x) for x in xs])
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_allclose(_np(got), ref, rtol=1e-9, atol=1e-12)
    sym = np.broadcast_to(np.asarray(_lambdify(prim)(*xs), dtype=np.float64), ref.shape)
    np.testing.assert_allclose(sym, ref, rtol=SYMPY_RTOL.get(name, 1e-9), atol=1e-12)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_torch_form_broadcasts_python_floats(name):
    """The executor passes literals as Python floats next to tensors, and lr as a 0-d tensor."""
    prim = primitives.get(name)
    rng = np.random.default_rng(1 + sum(map(ord, name)))
    xs = _samples(prim, rng)
    for pos in range(prim.arity):
        if prim.arity == 1:
            scalar = float(xs[0][0])
            np.testing.assert_allclose(_np(prim.torch(_t(scalar))), _np(prim.numpy(np.float64(scalar))),
                                       rtol=1e-9, atol=1e-12)
            continue
        args = [float(x[0]) if i == pos else _t(x) for i, x in enumerate(xs)]
        want = _np(prim.numpy(*[np.float64(x[0]) if i == pos else x for i, x in enumerate(xs)]))
        got = prim.torch(*args)
        assert isinstance(got, torch.Tensor), f"{name} with a float argument {pos}"
        np.testing.assert_allclose(_np(got), want, rtol=1e-9, atol=1e-12)


def _tensor_list(rng, shapes=((3, 4), (5,), (2, 2, 2), (1,))):
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_torch_and_numpy_agree_on_lists_of_tensors(name):
    prim = primitives.get(name)
    rng = np.random.default_rng(7)
    args = [_tensor_list(rng) for _ in range(prim.arity)]
    if name == "clip_by_global_norm":
        args[1] = [0.5 for _ in args[0]]  # below the global norm, so the clip is active
    ref = prim.numpy(*args)
    got = prim.torch(*[[x if isinstance(x, float) else _t(x) for x in a] for a in args])
    assert isinstance(got, list) and len(got) == len(ref) == len(args[0])
    for r, x, shape in zip(ref, got, [a.shape for a in args[0]]):
        expected_shape = shape if name == "clip_by_global_norm" else ()
        assert tuple(x.shape) == expected_shape and np.shape(r) == expected_shape
        np.testing.assert_allclose(_np(x), r, rtol=1e-9, atol=1e-12)


def test_reductions_reduce_over_the_right_tensors():
    rng = np.random.default_rng(3)
    xs, ys = _tensor_list(rng), _tensor_list(rng)
    norm = primitives.get("norm").numpy(xs)
    for n, x in zip(norm, xs):
        assert n == pytest.approx(np.linalg.norm(x.ravel()), rel=1e-12)
    total = math.sqrt(sum(float(np.sum(x * x)) for x in xs))
    assert all(g == pytest.approx(total, rel=1e-12) for g in primitives.get("global_norm").numpy(xs))
    for c, x, y in zip(primitives.get("cosine_sim").numpy(xs, ys), xs, ys):
        assert c == pytest.approx(np.dot(x.ravel(), y.ravel()) / np.linalg.norm(x) / np.linalg.norm(y),
                                  rel=1e-6)
    assert primitives.get("cosine_sim").numpy(xs, xs)[0] == pytest.approx(1.0, rel=1e-6)
    clipped = primitives.get("clip_by_global_norm").numpy(xs, [1.0] * len(xs))
    assert math.sqrt(sum(float(np.sum(c * c)) for c in clipped)) == pytest.approx(1.0, rel=1e-6)
    unclipped = primitives.get("clip_by_global_norm").numpy(xs, [1e6] * len(xs))
    for u, x in zip(unclipped, xs):
        np.testing.assert_array_equal(u, x)


@pytest.mark.parametrize("name", ["norm", "dot", "cosine_sim", "global_norm"])
def test_reductions_sympy_forms_run_on_one_tensor(name):
    prim = primitives.get(name)
    rng = np.random.default_rng(11)
    args = [rng.standard_normal(6) for _ in range(prim.arity)]
    syms = sp.symbols(f"x0:{prim.arity}")
    got = sp.lambdify(syms, prim.sympy(*syms), modules="numpy")(*args)
    assert float(got) == pytest.approx(float(prim.numpy(*[[a] for a in args])[0]), rel=1e-12)


def test_interp_is_a_moving_average():
    g, m = _t([1.0, 2.0]), _t([10.0, 20.0])
    np.testing.assert_allclose(_np(primitives.get("interp").torch(g, m, 0.9)), [9.1, 18.2], rtol=1e-12)
    np.testing.assert_allclose(primitives.get("interp").numpy(_np(g), _np(m), 0.9), [9.1, 18.2], rtol=1e-12)


def test_guarded_domains_follow_the_docs():
    x = _t([-4.0, -1.0, 0.0, 0.5, 4.0])
    assert torch.equal(primitives.get("sqrt").torch(x), torch.sqrt(x.abs()))
    assert torch.equal(primitives.get("log").torch(_t([-math.e])), _t([1.0]))
    assert torch.equal(primitives.get("arcsin").torch(_t([2.0, -2.0])), _t([math.pi / 2, -math.pi / 2]))
    assert torch.equal(primitives.get("arccosh").torch(_t([0.5, -1.0])), _t([0.0, 0.0]))
    assert torch.equal(primitives.get("clip").torch(x, -1.0), _t([-1.0, -1.0, 0.0, 0.5, 1.0]))
    assert torch.equal(primitives.get("power").torch(_t([-2.0]), 2.0), _t([4.0]))
    assert torch.equal(primitives.get("sign").torch(x), _t([-1.0, -1.0, 0.0, 1.0, 1.0]))
    assert torch.equal(primitives.get("invert").torch(x), 1.0 - x)
    assert primitives.get("log").torch(_t([0.0])).item() == -CLAMP
    assert primitives.get("exp").torch(_t([1e4])).item() == CLAMP


# -- the division guard ------------------------------------------------------------------------------

def test_division_guard_formula():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(200)
    y = np.concatenate([rng.standard_normal(100), rng.standard_normal(50) * 1e-9,
                        [0.0, -0.0, 1e-8, -1e-8, 5e-324, -5e-324, 1e-300, 1e300], rng.uniform(-1e-7, 1e-7, 42)])
    want = x / (y + np.copysign(1e-8, y))
    divide = primitives.get("divide")
    np.testing.assert_allclose(_np(divide.torch(_t(x), _t(y))), want, rtol=1e-12)
    np.testing.assert_allclose(divide.numpy(x, y), want, rtol=1e-12)
    # the guard keeps the sign of y, so x / y never flips sign (as with Adam's eps on sqrt(v) >= 0)
    assert np.all(np.sign(_np(divide.torch(_t(x), _t(y)))) == np.sign(x) * np.sign(np.copysign(1.0, y)))
    # with Python floats, as the executor passes literals
    for xf, yf in [(1.0, 0.0), (1.0, -0.0), (-2.0, 3.0), (3.0, -1e-9)]:
        want_f = xf / (yf + math.copysign(1e-8, yf))
        assert float(divide.torch(xf, yf)) == pytest.approx(want_f, rel=1e-12)
        assert float(divide.torch(_t([xf]), yf)[0]) == pytest.approx(want_f, rel=1e-12)
        assert float(divide.torch(xf, _t([yf]))[0]) == pytest.approx(want_f, rel=1e-12)
        assert float(divide.numpy(np.float64(xf), np.float64(yf))) == pytest.approx(want_f, rel=1e-12)


def test_divide_by_zero_is_finite():
    x = _t([1.0, -1.0, 0.0, 1e30, -1e300])
    for zero in (torch.zeros(5, dtype=torch.float64), 0.0, -0.0):
        out = primitives.get("divide").torch(x, zero)
        assert torch.isfinite(out).all()
    assert primitives.get("divide").torch(_t([1.0]), _t([0.0])).item() == pytest.approx(1e8)
    assert primitives.get("divide").torch(_t([1.0]), _t([-0.0])).item() == pytest.approx(-1e8)
    assert torch.isfinite(primitives.get("reciprocal").torch(torch.zeros(3, dtype=torch.float64))).all()
    assert primitives.get("cosine_sim").torch([torch.zeros(4)], [torch.ones(4)])[0].item() == 0.0


# -- guards: hostile inputs ---------------------------------------------------------------------------

# Every value a guard can itself produce is within +-CLAMP; these are the inputs a program can meet.
HOSTILE = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 1e-30, -1e-30, 1e-300, 5e-324, -5e-324,
           1e-8, -1e-8, 1e8, -1e8, 89.0, 710.0, -710.0, 1e4, -1e4, 1e15, 1e30, -1e30, CLAMP, -CLAMP]
# Primitives that can hit a pole, leave their domain or overflow exponentially: these must be finite
# on every finite input, in float64 and in float32 (the training dtype).
GUARDED = ("tan arcsin arccos arccosh arctanh sinh cosh exp exp2 exp10 expm1 log log10 log2 log1p sqrt "
           "cube reciprocal divide power cbrt").split()
EXTREME = [1e300, -1e300, 1.7976931348623157e308, -1.7976931348623157e308]
F32_EXTREME = [3.4e38, -3.4e38, 1e38, 1.4e-45]


def _grid(values, arity, dtype):
    t = torch.tensor(values, dtype=dtype)
    if arity == 1:
        return [t]
    return list(torch.cartesian_prod(*[t] * arity).unbind(1))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_torch_forms_are_finite_on_hostile_inputs(name):
    prim = primitives.get(name)
    args = _grid(HOSTILE, prim.arity, torch.float64)
    out = prim.torch(*args)
    bad = ~torch.isfinite(out)
    assert not bad.any(), f"{name} is not finite at {[a[bad][:3].tolist() for a in args]}"


@pytest.mark.parametrize("name", GUARDED)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_guarded_primitives_are_finite_on_every_finite_input(name, dtype):
    prim = primitives.get(name)
    values = HOSTILE + (EXTREME if dtype == torch.float64 else F32_EXTREME)
    args = _grid(values, prim.arity, dtype)
    out = prim.torch(*args)
    assert out.dtype == dtype
    bad = ~torch.isfinite(out)
    assert not bad.any(), f"{name} is not finite at {[a[bad][:3].tolist() for a in args]}"
    # the numpy form (fingerprints) is guarded the same way
    np_out = np.asarray(prim.numpy(*[_np(a).astype(np.float64) for a in args]))
    assert np.all(np.isfinite(np_out))


@pytest.mark.parametrize("name", ["norm", "global_norm", "dot", "cosine_sim", "clip_by_global_norm"])
def test_reductions_are_finite_on_hostile_inputs(name):
    prim = primitives.get(name)
    hostile = [torch.zeros(3, dtype=torch.float64), torch.tensor(HOSTILE, dtype=torch.float64),
               torch.full((2, 2), 1e-300, dtype=torch.float64)]
    args = [hostile] * prim.arity
    if name == "clip_by_global_norm":
        args = [hostile, [0.0, CLAMP, -1.0]]
    for out in prim.torch(*args):
        assert torch.isfinite(out).all()
    for out in prim.numpy(*[[_np(x) if isinstance(x, torch.Tensor) else x for x in a] for a in args]):
        assert np.all(np.isfinite(out))


def test_clip_by_global_norm_of_zeros_is_zero():
    out = primitives.get("clip_by_global_norm").torch([torch.zeros(3)], [1.0])
    assert torch.equal(out[0], torch.zeros(3))
