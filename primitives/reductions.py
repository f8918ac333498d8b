"""Reductions: over one parameter tensor (``norm``, ``dot``, ``cosine_sim``) or over all of them
(``global_norm``, ``clip_by_global_norm``). Their forms take lists of arrays, one per parameter tensor.

The sympy forms are uninterpreted functions that carry the numpy implementation
(``implemented_function``), so that simplification treats them as opaque and ``lambdify`` still runs.
"""

from __future__ import annotations

import numpy as np
import torch
from sympy.utilities.lambdify import implemented_function

from ._guards import np_div, t_div
from .base import ANY, DIV_EPS, SCALAR, TENSOR, Primitive, register


def _np_norm(xs):
    return [np.sqrt(np.sum(np.square(x))) for x in xs]


def _np_dot(xs, ys):
    return [np.sum(x * y) for x, y in zip(xs, ys)]


def _np_cos(xs, ys):
    return [np_div(d, nx * ny) for d, nx, ny in zip(_np_dot(xs, ys), _np_norm(xs), _np_norm(ys))]


def _np_global_norm(xs):
    total = np.sqrt(sum(np.sum(np.square(x)) for x in xs))
    return [total for _ in xs]


def _np_clip_global(xs, cs):
    g = _np_global_norm(xs)[0]
    return [x * np.minimum(1.0, np.abs(c) / (g + DIV_EPS)) for x, c in zip(xs, cs)]


def _t_norm(xs):
    return list(torch._foreach_norm(xs))


def _t_dot(xs, ys):
    return [torch.sum(x * y) for x, y in zip(xs, ys)]


def _t_cos(xs, ys):
    return [t_div(d, nx * ny) for d, nx, ny in zip(_t_dot(xs, ys), _t_norm(xs), _t_norm(ys))]


def _t_global_norm(xs):
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(xs)))
    return [total for _ in xs]


def _t_clip_global(xs, cs):
    g = _t_global_norm(xs)[0]
    out = []
    for x, c in zip(xs, cs):
        c = torch.abs(c) if isinstance(c, torch.Tensor) else abs(c)
        out.append(x * torch.clamp(c / (g + DIV_EPS), max=1.0))
    return out


def _sympy(name, fn):
    # one function per primitive: lambdify refuses two implementations under one name, which a new
    # implemented_function per call would make of a program that uses the reduction twice
    return implemented_function(name, lambda *a: fn(*[[np.asarray(x)] for x in a])[0])


register(Primitive("norm", (TENSOR,), _t_norm, _np_norm, _sympy("norm", _np_norm),
                   "L2 norm of one parameter tensor", reduces="tensor", result_kind=SCALAR,
                   source="_norm({0})"))
register(Primitive("dot", (TENSOR, TENSOR), _t_dot, _np_dot, _sympy("dot", _np_dot),
                   "sum(x * y) over one parameter tensor", reduces="tensor", result_kind=SCALAR,
                   commutative=True, source="_dot({0}, {1})"))
register(Primitive("cosine_sim", (TENSOR, TENSOR), _t_cos, _np_cos, _sympy("cosine_sim", _np_cos),
                   "dot(x, y) / (norm(x) * norm(y)), guarded like /", reduces="tensor",
                   result_kind=SCALAR, commutative=True, source="_cosine_sim({0}, {1})"))
register(Primitive("global_norm", (TENSOR,), _t_global_norm, _np_global_norm,
                   _sympy("global_norm", _np_global_norm),
                   "L2 norm over all parameter tensors updated together", reduces="global",
                   result_kind=SCALAR, source="_global_norm({0})"))
register(Primitive("clip_by_global_norm", (TENSOR, ANY), _t_clip_global, _np_clip_global,
                   _sympy("clip_by_global_norm", _np_clip_global),
                   "x * min(1, |c| / global_norm(x))", reduces="global", result_kind=TENSOR,
                   source="_clip_by_global_norm({0}, {1})"))
