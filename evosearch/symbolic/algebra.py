"""Algebraic simplification of a program's symbolic form, modulo the guards (the sympy
forms drop them; ``verify.py`` checks every rewrite numerically):

* ``x / |x|`` and ``x / sqrt(x*x)`` -> ``sign(x)`` (sympy already turns ``sqrt(x**2)`` into ``|x|``
  for real x);
* ``sign(c * x)`` -> ``sign(x)`` for c > 0, and the argument of a sign normalised so that its numeric
  coefficients sum to 1 (``sign(0.2 g + 1.8 m)`` -> ``sign(0.1 g + 0.9 m)``, an interpolation);
* constants folded and like terms collected (``sympy.expand`` + ``collect`` on the inputs);
* state recurrences merged: new states are expressions of the inputs, so two interpolations that
  together form one moving average collapse to one (``interp(g, interp(g, v, .899), 1.109)`` is
  ``0.003 g + 0.997 v``).
"""

from __future__ import annotations

import sympy as sp


def _sign_rules(expr: sp.Expr) -> sp.Expr:
    def is_ratio_to_abs(e):
        if not e.is_Mul:
            return False
        absf = [f for f in e.args if f.is_Pow and f.exp == -1 and isinstance(f.base, sp.Abs)]
        return len(absf) == 1

    def ratio_to_sign(e):
        absf = next(f for f in e.args if f.is_Pow and f.exp == -1 and isinstance(f.base, sp.Abs))
        inner = absf.base.args[0]
        rest = sp.Mul(*[f for f in e.args if f is not absf])
        k = sp.simplify(rest / inner)
        # x/|x| = sign(x) whatever multiplies it (lr * x / |x|); take it when x cancels
        if k.is_number or sp.count_ops(k) < sp.count_ops(rest):
            return k * sp.sign(inner)
        return e

    expr = expr.replace(is_ratio_to_abs, ratio_to_sign)
    return expr.replace(lambda e: isinstance(e, sp.sign), lambda e: _normalise_sign(e.args[0]))


def _normalise_sign(arg: sp.Expr) -> sp.Expr:
    arg = sp.expand(arg)
    if arg.is_Add:
        coeffs = [t.as_coeff_Mul()[0] for t in arg.args]
        if all(c.is_number for c in coeffs):
            total = sp.Add(*coeffs)
            if total.is_number and total != 0:
                scaled = sp.expand(arg / abs(total))
                return sp.sign(scaled) * (1 if total > 0 else 1)
    c, rest = arg.as_coeff_Mul()
    if c.is_number and c > 0 and rest != 1:
        return sp.sign(rest)
    return sp.sign(arg)


def _float_tidy(expr: sp.Expr, digits: int = 12) -> sp.Expr:
    """Round floats that differ from a short decimal by rounding noise (0.1*0.9 -> 0.09)."""
    def tidy(f):
        value = float(f"{float(f):.{digits}g}")
        if value.is_integer() and abs(value) < 1e6:
            return sp.Integer(int(value))
        return sp.Float(value, 15)
    return expr.replace(lambda e: e.is_Float, tidy)


def _real_rules(expr: sp.Expr) -> sp.Expr:
    """Every value of a program is real: |u**2| = u**2 and sqrt(u**2) = |u|, whatever u is (sympy
    only applies these when it can prove u real, e.g. not through asin or Max)."""
    def even_abs(e):
        return isinstance(e, sp.Abs) and e.args[0].is_Pow and e.args[0].exp.is_even
    expr = expr.replace(even_abs, lambda e: e.args[0])

    def half_power_of_square(e):
        return (e.is_Pow and e.base.is_Pow and e.base.exp == 2 and e.exp.is_Rational
                and abs(e.exp) == sp.Rational(1, 2))
    return expr.replace(half_power_of_square, lambda e: sp.Abs(e.base.base) ** (2 * e.exp))


def simplify_expression(expr: sp.Expr, symbols) -> sp.Expr:
    """``expr`` simplified modulo the guards by the rules of the module docstring, collected on
    ``symbols``."""
    expr = _real_rules(expr)
    expr = _sign_rules(expr)
    expr = sp.expand(expr, power_base=False, power_exp=False, log=False, multinomial=False)
    expr = _sign_rules(expr)
    expr = sp.collect(expr, list(symbols))
    return _float_tidy(expr)
