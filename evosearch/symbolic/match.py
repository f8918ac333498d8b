"""Family matching: what a (discovered) program *is*.

``match(prog, family)`` simplifies the program, takes its symbolic form and fits it to a family's
template; it returns whether it matched and the fitted constants. Families (``lr`` is the program's
input, ``s`` the program's own learning-rate scale, ``λ`` decoupled weight decay):

* ``lion``: update = s·lr·(sign(a·g + b·m) + λ·w), m ← c·g + d·m, one live state, a, b > 0 and
  β1 ≠ β2 (β1 = β2 is Signum). Constants beta1 (the interpolation weight of the update's sign,
  with m rescaled to a standard moving average), beta2 = d, weight_decay = λ, lr_scale = s.
* ``signum``: the same template with β1 = β2 (the sign of the new momentum) or β1 = 1 (of the old).
* ``sgd-momentum``: update = s·lr·(M + λ·w) with M the new (or old) momentum m ← c·g + d·m.
* ``adam``: two live states, m ← c1·g + d1·m and v ← c2·g² + d2·v, and update =
  s·lr·(M / sqrt(V) + λ·w) with M, V the new states up to constant factors, after bias corrections
  (``beta ** t``) are taken to their large-t limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from evosearch.lang.ir import GRAD, LR, STEP, WEIGHT
from evosearch.lang.program import Program

from .exact import simplify_steps

from .families import FAMILIES  # noqa: F401 - the names match() accepts, re-exported


@dataclass(frozen=True)
class MatchResult:
    """Whether a program matched a family, the fitted constants, or why not."""
    family: str
    matched: bool
    constants: dict = field(default_factory=dict)
    reason: str = ""

    def __str__(self) -> str:
        if self.matched:
            consts = ", ".join(f"{k}={v:.4g}" for k, v in self.constants.items())
            return f"{self.family}: matched ({consts})"
        return f"{self.family}: no match ({self.reason})"


def _sym(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def _constant(expr: sp.Expr, rtol: float = 1e-8) -> float | None:
    """The value of ``expr`` if it is constant (checked at random points, which tolerates the
    rounding of float coefficients that defeats exact simplification), else None."""
    expr = sp.sympify(expr)
    if expr.is_number:
        return float(expr)
    symbols = sorted(expr.free_symbols, key=str)
    fn = sp.lambdify(symbols, expr, "numpy")
    rng = np.random.default_rng(0)
    with np.errstate(all="ignore"):
        values = [complex(fn(*rng.uniform(0.5, 2.0, len(symbols)) * rng.choice([-1, 1], len(symbols))))
                  for _ in range(6)]
    if any(v.imag or not np.isfinite(v.real) for v in values):
        return None
    real = np.array([v.real for v in values])
    if np.max(np.abs(real - real[0])) > rtol * max(1e-12, np.max(np.abs(real))):
        return None
    return float(real[0])


def _linear(expr: sp.Expr, x: sp.Expr, state: sp.Symbol) -> tuple[float, float] | None:
    """(c, d) with expr == c*x + d*state, else None."""
    e = sp.expand(expr)
    c, d = e.coeff(x), e.coeff(state)
    if not (c.is_number and d.is_number):
        return None
    rest = sp.expand(e - c * x - d * state)
    if rest != 0 and _constant(rest) != 0.0:
        return None
    return float(c), float(d)


def _limit_t(expr: sp.Expr) -> sp.Expr:
    """Take bias corrections to their large-t limit: beta**t -> 0 for |beta| < 1."""
    t = _sym(STEP)
    return expr.replace(lambda e: e.is_Pow and e.exp == t and e.base.is_number and abs(e.base) < 1,
                        lambda e: sp.Integer(0))


def _split_decay(u: sp.Expr, w: sp.Symbol) -> tuple[sp.Expr, float] | None:
    """u == rest + λ*w with rest free of w: returns (rest, λ)."""
    u = sp.expand(u)
    lam = u.coeff(w)
    if not lam.is_number:
        return None
    rest = sp.expand(u - lam * w)
    if rest.has(w):
        return None
    return rest, float(lam)


def _fit_sign_family(exprs: dict, states: tuple[str, ...]):
    """Fit update = s·lr·(sign(a g + b m) + λ w), m ← c g + d m. Returns constants or a reason."""
    g, w, lr = _sym(GRAD), _sym(WEIGHT), _sym(LR)
    if len(states) != 1:
        return None, f"needs one live state variable, found {len(states)}"
    m = _sym(states[0])
    rec = _linear(exprs[states[0]], g, m)
    if rec is None:
        return None, "the state's new value is not c·g + d·m"
    c, d = rec
    if not (0.0 < d < 1.0 and c > 0):
        return None, f"the state recurrence m <- {c:.3g}·g + {d:.3g}·m is not a moving average"
    update = _limit_t(exprs["update"])
    u = sp.expand(update / lr)
    if u.has(lr):
        return None, "the update is not proportional to lr"
    split = _split_decay(u, w)
    if split is None:
        return None, "the update is not linear in w"
    rest, lam = split
    signs = list(rest.atoms(sp.sign))
    if len(signs) != 1:
        return None, f"the update has {len(signs)} sign() terms, not one"
    sgn = signs[0]
    s = sp.expand(rest).coeff(sgn)
    if not s.is_number or sp.expand(rest - s * sgn) != 0 or float(s) <= 0:
        return None, "the update is not a positive multiple of one sign()"
    arg = _linear(sgn.args[0], g, m)
    if arg is None:
        return None, "the sign's argument is not a·g + b·m"
    a, b = arg
    if a < 0 or b < 0 or a + b <= 0:     # a = 0: the sign of the old momentum (Signum, beta1 = 1)
        return None, f"the sign's argument {a:.3g}·g + {b:.3g}·m does not mix the gradient and the momentum"
    b_std = b * c / (1.0 - d)          # rescale m to the standard moving average (1-d)·g + d·m
    beta1 = b_std / (a + b_std)
    return {"beta1": beta1, "beta2": d, "weight_decay": lam / float(s), "lr_scale": float(s)}, ""


def _fit_sgd_momentum(exprs: dict, states: tuple[str, ...]):
    g, w, lr = _sym(GRAD), _sym(WEIGHT), _sym(LR)
    if len(states) != 1:
        return None, f"needs one live state variable, found {len(states)}"
    m = _sym(states[0])
    rec = _linear(exprs[states[0]], g, m)
    if rec is None or not (0.0 < rec[1] < 1.0 and rec[0] > 0):
        return None, "the state is not a momentum c·g + d·m"
    c, d = rec
    u = sp.expand(exprs["update"] / lr)
    split = _split_decay(u, w) if not u.has(lr) else None
    if split is None:
        return None, "the update is not lr·(linear in the momentum) + decay"
    rest, lam = split
    lin = _linear(rest, g, m)
    if lin is None:
        return None, "the update is not linear in g and m"
    a, b = lin
    # rest must be k·(c g + d m) (new momentum) or k·m (old momentum)
    if b == 0:
        return None, "the update does not read the momentum"
    k = b if abs(a) <= 1e-12 else b / d     # the old momentum k·m, or the new one k·(c g + d m)
    if abs(a) > 1e-12 and abs(a - k * c) > 1e-9 * max(1.0, abs(a)):
        return None, "the update mixes the gradient and the momentum in another proportion"
    # torch.optim.SGD's convention: buf <- momentum·buf + (1 - dampening)·g, update = lr·buf
    return {"momentum": d, "dampening": 1.0 - c, "weight_decay": lam / k, "lr_scale": k}, ""


def _fit_adam(exprs: dict, states: tuple[str, ...]):
    g, w, lr = _sym(GRAD), _sym(WEIGHT), _sym(LR)
    if len(states) != 2:
        return None, f"needs two live state variables, found {len(states)}"
    first, second = None, None
    for name in states:
        s = _sym(name)
        if _linear(exprs[name], g, s):
            first = (name, _linear(exprs[name], g, s))
        elif _linear(exprs[name], g ** 2, s):
            second = (name, _linear(exprs[name], g ** 2, s))
    if first is None or second is None:
        return None, "needs one moving average of g and one of g**2"
    (mn, (c1, d1)), (vn, (c2, d2)) = first, second
    u = sp.expand(_limit_t(exprs["update"]) / lr)
    split = _split_decay(u, w) if not u.has(lr) else None
    if split is None:
        return None, "the update is not lr·(...) + decay"
    rest, lam = split
    m_new, v_new = exprs[mn], exprs[vn]
    k = _constant(rest * sp.sqrt(sp.Abs(v_new)) / m_new)
    if k is None or k <= 0:
        return None, "the update is not proportional to m / sqrt(v)"
    if not (0.0 <= d1 < 1.0 and 0.0 <= d2 < 1.0 and c1 != 0 and c2 > 0):
        # e.g. m <- m (d1 = 1: a state that never moves), or a second moment that is not a
        # positive multiple of g**2: no Adam with these constants
        return None, f"the moving averages are not Adam's (m: {c1:g} g + {d1:g} m, v: {c2:g} g² + {d2:g} v)"
    # with m, v rescaled to standard moving averages ((1-d)·x + d·state), update = s·lr·m/sqrt(v)
    scale = k * c1 / (1.0 - d1) * ((1.0 - d2) / c2) ** 0.5
    return {"beta1": d1, "beta2": d2, "weight_decay": lam / scale, "lr_scale": scale}, ""


def match(prog: Program, family: str) -> MatchResult:
    """Whether ``prog`` (simplified first) belongs to ``family`` (one of ``FAMILIES``), with the
    constants fitted from it."""
    family = family.lower()
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    simple = simplify_steps(prog)
    exprs = simple.expressions
    if exprs is None:
        return MatchResult(family, False, {}, "the program has no symbolic form")
    states = simple.program.state_names
    if family in ("lion", "signum"):
        consts, reason = _fit_sign_family(exprs, states)
        if consts is None:
            return MatchResult(family, False, {}, reason)
        same = abs(consts["beta1"] - consts["beta2"]) < 1e-6
        old = abs(consts["beta1"] - 1.0) < 1e-9
        if family == "lion" and (same or old):
            return MatchResult(family, False, consts, "the sign is of the momentum itself (beta1 = beta2): Signum")
        if family == "signum":
            if not (same or old):
                return MatchResult(family, False, consts, "beta1 != beta2: the sign mixes g and m (Lion)")
            return MatchResult(family, True, {"beta": consts["beta2"], "weight_decay": consts["weight_decay"],
                                              "lr_scale": consts["lr_scale"]})
        return MatchResult(family, True, consts)
    fit = _fit_sgd_momentum if family == "sgd-momentum" else _fit_adam
    consts, reason = fit(exprs, states)
    return MatchResult(family, consts is not None, consts or {}, reason)


def identify(prog: Program) -> MatchResult | None:
    """The first family that matches, or None."""
    for family in FAMILIES:
        r = match(prog, family)
        if r.matched:
            return r
    return None
