"""The binary operators, unary minus, max/min, interp, power and clip."""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch

from ._guards import as_tensor_like, finite, np_call, np_div, t_div, t_finite
from .base import ANY, Primitive, register


def _t_max(x, y):
    if not isinstance(x, torch.Tensor):
        x, y = y, x
    if not isinstance(x, torch.Tensor):
        return max(x, y)
    return torch.maximum(x, as_tensor_like(y, x))


def _t_min(x, y):
    if not isinstance(x, torch.Tensor):
        x, y = y, x
    if not isinstance(x, torch.Tensor):
        return min(x, y)
    return torch.minimum(x, as_tensor_like(y, x))


def _t_interp(x, y, a):
    # 1 - a is formed in double precision, as torch's own optimizers do: torch.lerp would round the
    # weight to float32 first, and 1 - 0.999 is then off by 1.3e-5 relative. The sum is formed in
    # place only where it has x's shape: x may be one number per tensor (a reduction's 0-d result)
    # and y the whole tensor, as in `v = interp(global_norm(g), v, 0.9)`.
    if isinstance(x, torch.Tensor) and isinstance(a, float):
        out = torch.mul(x, 1.0 - a)
        if isinstance(y, torch.Tensor) and y.shape != out.shape:
            return torch.add(out, y, alpha=a)
        return out.add_(y, alpha=a)
    return (1 - a) * x + a * y


def _t_power(x, c):
    base = torch.abs(x) if isinstance(x, torch.Tensor) else abs(x)
    if not isinstance(base, torch.Tensor) and not isinstance(c, torch.Tensor):
        return float(finite(np.float64(base) ** np.float64(c)))
    if not isinstance(base, torch.Tensor):
        base = as_tensor_like(base, c)
    return t_finite(torch.pow(base, c))


def _t_clip(x, c):
    c = torch.abs(c) if isinstance(c, torch.Tensor) else abs(c)
    if not isinstance(x, torch.Tensor):
        x = as_tensor_like(x, c)
    if isinstance(c, torch.Tensor):
        return torch.minimum(torch.maximum(x, -c), c)
    return torch.clamp(x, -c, c)


def _each(v, like):
    return v if isinstance(v, list) else [v] * len(like)


def _fe_interp(xs, ys, a):
    """Multi-tensor interp: two kernels for a float weight, else tensor by tensor."""
    if not (isinstance(a, float) and isinstance(ys, list)):
        return [_t_interp(x, y, w) for x, y, w in zip(xs, _each(ys, xs), _each(a, xs))]
    out = torch._foreach_mul(xs, 1.0 - a)
    torch._foreach_add_(out, ys, alpha=a)
    return out


add = register(Primitive(
    "add", (ANY, ANY), lambda x, y: x + y, lambda x, y: x + y, lambda x, y: x + y,
    "x + y", infix="+", commutative=True, foreach=torch._foreach_add,
    source="({0} + {1})", foreach_source="torch._foreach_add"))
subtract = register(Primitive(
    "subtract", (ANY, ANY), lambda x, y: x - y, lambda x, y: x - y, lambda x, y: x - y,
    "x - y", infix="-", foreach=torch._foreach_sub,
    source="({0} - {1})", foreach_source="torch._foreach_sub"))
multiply = register(Primitive(
    "multiply", (ANY, ANY), lambda x, y: x * y, lambda x, y: x * y, lambda x, y: x * y,
    "x * y", infix="*", commutative=True, foreach=torch._foreach_mul,
    source="({0} * {1})", foreach_source="torch._foreach_mul"))
divide = register(Primitive(
    "divide", (ANY, ANY), t_div, np_div, lambda x, y: x / y,
    "x / (y + copysign(1e-8, y)), clamped finite", infix="/",
    domain=((-3, 3), (0.5, 3)), source="_div({0}, {1})"))
negative = register(Primitive(
    "negative", (ANY,), lambda x: -x, lambda x: -x, lambda x: -x,
    "-x", infix="neg", foreach=torch._foreach_neg,
    source="(-{0})", foreach_source="torch._foreach_neg"))
maximum = register(Primitive(
    "max", (ANY, ANY), _t_max, np.maximum, sp.Max, "elementwise maximum", commutative=True,
    source="_max({0}, {1})"))
minimum = register(Primitive(
    "min", (ANY, ANY), _t_min, np.minimum, sp.Min, "elementwise minimum", commutative=True,
    source="_min({0}, {1})"))
interp = register(Primitive(
    "interp", (ANY, ANY, ANY), _t_interp, lambda x, y, a: (1 - a) * x + a * y,
    lambda x, y, a: (1 - a) * x + a * y,
    "(1 - a) * x + a * y: a moving average when x is new and y the old value",
    domain=((-3, 3), (-3, 3), (0, 1)), foreach=_fe_interp,
    source="_interp({0}, {1}, {2})", foreach_source="_foreach_interp"))
power = register(Primitive(
    "power", (ANY, ANY), _t_power, np_call(lambda x, c: np.abs(x) ** c),
    lambda x, c: sp.Abs(x) ** c, "|x| ** c (abs first, like sqrt), clamped finite",
    domain=((0.1, 3), (-2, 2)), source="_power({0}, {1})"))
clip = register(Primitive(
    "clip", (ANY, ANY), _t_clip, lambda x, c: np.clip(x, -np.abs(c), np.abs(c)),
    lambda x, c: sp.Max(-sp.Abs(c), sp.Min(x, sp.Abs(c))), "clip x to [-|c|, |c|]",
    source="_clip({0}, {1})"))
