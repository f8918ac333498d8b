"""Elementwise unary functions of the paper's space (Chen et al. 2023, appendix: the `hero` space).

Guards: ``sqrt`` and ``log*`` take ``abs`` first; ``arcsin``, ``arccos`` and ``arctanh`` clip their
argument to [-1, 1]; ``arccosh`` takes ``max(|x|, 1)``; every function that can overflow or hit a
pole returns finite values (NaN -> 0, +-inf -> +-1e30). The sympy forms drop the guards.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch

from ._guards import np_call, np_div, t_div, t_finite
from .base import ANY, Primitive, register

R = (-3.0, 3.0)      # default test interval
POS = (0.1, 3.0)
UNIT = (-0.95, 0.95)


def _unary(name, t_fn, np_fn, sp_fn, doc, domain=R, guarded=False, foreach=None, source=None):
    """``source`` is the torch expression over ``x`` (default ``torch.<name>(x)``); exported code
    wraps it in ``_finite`` when the primitive is guarded."""
    source = source or f"torch.{name}(x)"
    if guarded:  # the guard is part of the primitive, so the unguarded foreach kernel cannot serve
        foreach = None
        inner_t, np_fn = t_fn, np_call(np_fn)
        t_fn = lambda x: t_finite(inner_t(x))  # noqa: E731
        source = f"_finite({source})"
    fe_source = f"torch._foreach_{name}" if foreach is not None else None
    register(Primitive(name, (ANY,), t_fn, np_fn, sp_fn, doc, domain=(domain,), foreach=foreach,
                       source=source.replace("x", "{0}").replace("e{0}p", "exp").replace("ma{0}", "max"),
                       foreach_source=fe_source))


_unary("abs", torch.abs, np.abs, sp.Abs, "|x|", foreach=torch._foreach_abs)
_unary("cos", torch.cos, np.cos, sp.cos, "cos x")
_unary("sin", torch.sin, np.sin, sp.sin, "sin x")
_unary("tan", torch.tan, np.tan, sp.tan, "tan x, clamped finite", domain=(-1.4, 1.4), guarded=True)
_unary("arcsin", lambda x: torch.asin(torch.clamp(x, -1.0, 1.0)), lambda x: np.arcsin(np.clip(x, -1, 1)),
       sp.asin, "arcsin of x clipped to [-1, 1]", domain=UNIT, source="torch.asin(torch.clamp(x, -1.0, 1.0))")
_unary("arccos", lambda x: torch.acos(torch.clamp(x, -1.0, 1.0)), lambda x: np.arccos(np.clip(x, -1, 1)),
       sp.acos, "arccos of x clipped to [-1, 1]", domain=UNIT, source="torch.acos(torch.clamp(x, -1.0, 1.0))")
_unary("arctan", torch.atan, np.arctan, sp.atan, "arctan x", source="torch.atan(x)")
_unary("sinh", torch.sinh, np.sinh, sp.sinh, "sinh x, clamped finite", guarded=True)
_unary("cosh", torch.cosh, np.cosh, sp.cosh, "cosh x, clamped finite", guarded=True)
_unary("tanh", torch.tanh, np.tanh, sp.tanh, "tanh x")
_unary("arcsinh", torch.asinh, np.arcsinh, sp.asinh, "arcsinh x", source="torch.asinh(x)")
_unary("arccosh", lambda x: torch.acosh(torch.clamp(torch.abs(x), min=1.0)),
       lambda x: np.arccosh(np.maximum(np.abs(x), 1.0)), sp.acosh, "arccosh of max(|x|, 1)",
       domain=(1.0, 4.0), source="torch.acosh(torch.clamp(torch.abs(x), min=1.0))")
_unary("arctanh", lambda x: torch.atanh(torch.clamp(x, -1.0, 1.0)), lambda x: np.arctanh(np.clip(x, -1, 1)),
       sp.atanh, "arctanh of x clipped to [-1, 1], clamped finite", domain=UNIT, guarded=True, source="torch.atanh(torch.clamp(x, -1.0, 1.0))")
_unary("exp", torch.exp, np.exp, sp.exp, "e ** x, clamped finite", guarded=True)
_unary("exp2", torch.exp2, np.exp2, lambda x: 2 ** x, "2 ** x, clamped finite", guarded=True)
_unary("exp10", lambda x: torch.pow(10.0, x), lambda x: np.power(10.0, x), lambda x: 10 ** x,
       "10 ** x, clamped finite", guarded=True, source="torch.pow(10.0, x)")
_unary("expm1", torch.expm1, np.expm1, lambda x: sp.exp(x) - 1, "e ** x - 1, clamped finite", guarded=True)
_unary("log", lambda x: torch.log(torch.abs(x)), lambda x: np.log(np.abs(x)), lambda x: sp.log(sp.Abs(x)),
       "log |x|, clamped finite", guarded=True, source="torch.log(torch.abs(x))")
_unary("log10", lambda x: torch.log10(torch.abs(x)), lambda x: np.log10(np.abs(x)),
       lambda x: sp.log(sp.Abs(x), 10), "log10 |x|, clamped finite", guarded=True, source="torch.log10(torch.abs(x))")
_unary("log2", lambda x: torch.log2(torch.abs(x)), lambda x: np.log2(np.abs(x)),
       lambda x: sp.log(sp.Abs(x), 2), "log2 |x|, clamped finite", guarded=True, source="torch.log2(torch.abs(x))")
_unary("log1p", lambda x: torch.log1p(torch.abs(x)), lambda x: np.log1p(np.abs(x)),
       lambda x: sp.log(1 + sp.Abs(x)), "log(1 + |x|)", guarded=True, source="torch.log1p(torch.abs(x))")
_unary("square", torch.square, np.square, lambda x: x ** 2, "x ** 2")
_unary("sqrt", lambda x: torch.sqrt(torch.abs(x)), lambda x: np.sqrt(np.abs(x)), lambda x: sp.sqrt(sp.Abs(x)),
       "sqrt |x|", source="torch.sqrt(torch.abs(x))")
_unary("cube", lambda x: x * x * x, lambda x: x * x * x, lambda x: x ** 3, "x ** 3, clamped finite",
       guarded=True, source="(x * x * x)")
_unary("cbrt", lambda x: torch.sign(x) * torch.pow(torch.abs(x), 1.0 / 3.0), np.cbrt,
       lambda x: sp.sign(x) * sp.Abs(x) ** sp.Rational(1, 3), "real cube root", source="(torch.sign(x) * torch.pow(torch.abs(x), 1.0 / 3.0))")
_unary("sign", torch.sign, np.sign, sp.sign, "sign x (0 at 0)", foreach=torch._foreach_sign)
_unary("reciprocal", lambda x: t_div(1.0, x), lambda x: np_div(1.0, x), lambda x: 1 / x,
       "1 / (x + copysign(1e-8, x)), clamped finite", domain=POS, source="_div(1.0, x)")
_unary("invert", lambda x: 1.0 - x, lambda x: 1.0 - x, lambda x: 1 - x,
       "1 - x (the complement; `reciprocal` and `negative` cover the other readings)", source="(1.0 - x)")
