"""Rebuild a program in the evosearch language from sympy expressions (the last simplification
step): common subexpressions are shared (``sympy.cse``), ``a*x + (1-a)*y`` becomes ``interp``, and
each node becomes one statement. Unsupported expressions raise ``Unsupported``; the caller then
keeps the previous program."""

from __future__ import annotations

import math

import sympy as sp

from evosearch.lang.ir import Const, Statement, Var
from evosearch.lang.program import Program

_FUNCS = {sp.sign: "sign", sp.Abs: "abs", sp.exp: "exp", sp.sin: "sin", sp.cos: "cos", sp.tan: "tan",
          sp.asin: "arcsin", sp.acos: "arccos", sp.atan: "arctan", sp.sinh: "sinh", sp.cosh: "cosh",
          sp.tanh: "tanh", sp.asinh: "arcsinh", sp.acosh: "arccosh", sp.atanh: "arctanh"}
_REDUCTIONS = {"norm", "dot", "cosine_sim", "global_norm", "clip_by_global_norm"}


class Unsupported(ValueError):
    """An expression the program language cannot write."""
    pass


class _Emitter:
    def __init__(self, names: dict[sp.Symbol, str]):
        self.names = dict(names)
        self.statements: list[Statement] = []
        self.cache: dict[sp.Expr, Var] = {}
        self.counter = 0

    def fresh(self) -> str:
        taken = set(self.names.values()) | {s.target for s in self.statements}
        while f"t{self.counter}" in taken:
            self.counter += 1
        return f"t{self.counter}"

    def stmt(self, op: str, args, target: str | None = None) -> Var:
        target = target or self.fresh()
        self.statements.append(Statement(target, op, tuple(args)))
        return Var(target)

    def operand(self, e: sp.Expr):
        if e in self.cache:
            return self.cache[e]
        if e.is_Symbol:
            if e not in self.names:
                raise Unsupported(f"unknown symbol {e}")
            return Var(self.names[e])
        if e is sp.pi:
            return Const(math.pi, "pi")
        if e is sp.E:
            return Const(math.e, "e")
        if e.is_number:
            value = complex(e)
            if value.imag or not math.isfinite(value.real):
                raise Unsupported(f"non-real constant {e}")
            return Const(float(value.real) + 0.0)
        out = self.node(e)
        self.cache[e] = out
        return out

    def node(self, e: sp.Expr) -> Var:
        if e.is_Add:
            return self.add(e)
        if e.is_Mul:
            return self.mul(e)
        if e.is_Pow:
            return self.pow(e)
        if isinstance(e, sp.Max) or isinstance(e, sp.Min):
            clip = self.clip(e)
            if clip is not None:
                return clip
            op = "max" if isinstance(e, sp.Max) else "min"
            acc = self.operand(e.args[0])
            for a in e.args[1:]:
                acc = self.stmt(op, [acc, self.operand(a)])
            return acc
        if isinstance(e, sp.log):
            inner = e.args[0].args[0] if isinstance(e.args[0], sp.Abs) else e.args[0]
            return self.stmt("log", [self.operand(inner)])
        for fn, name in _FUNCS.items():
            if isinstance(e, fn):
                return self.stmt(name, [self.operand(a) for a in e.args])
        name = type(e).__name__
        if name == "clip":
            return self.stmt("clip", [self.operand(a) for a in e.args])
        if name in _REDUCTIONS:
            return self.stmt(name, [self.operand(a) for a in e.args])
        raise Unsupported(f"cannot write {e} in the program language")

    def clip(self, e):
        # clip(x, c) = Max(-|c|, Min(x, |c|))
        if isinstance(e, sp.Max) and len(e.args) == 2:
            lo = next((a for a in e.args if a.could_extract_minus_sign() and isinstance(-a, sp.Abs)), None)
            hi = next((a for a in e.args if isinstance(a, sp.Min)), None)
            if lo is not None and hi is not None and len(hi.args) == 2 and (-lo) in hi.args:
                x = next(a for a in hi.args if a != -lo)
                return self.stmt("clip", [self.operand(x), self.operand((-lo).args[0])])
        return None

    def add(self, e: sp.Add) -> Var:
        terms = list(e.as_ordered_terms())
        if len(terms) == 2:
            (c1, x1), (c2, x2) = (t.as_coeff_Mul() for t in terms)
            if c1.is_number and c2.is_number and abs(float(c1 + c2) - 1.0) < 1e-12 and 0 < float(c2) < 1 \
                    and x1 != x2 and x1 != 1 and x2 != 1:
                return self.stmt("interp", [self.operand(x1), self.operand(x2), Const(float(c2))])
        acc = self.operand(terms[0])
        for t in terms[1:]:
            c, x = t.as_coeff_Mul()
            if c.is_number and c < 0:
                acc = self.stmt("subtract", [acc, self.operand(-t)])
            else:
                acc = self.stmt("add", [acc, self.operand(t)])
        return acc

    def mul(self, e: sp.Mul) -> Var:
        c, rest = e.as_coeff_Mul()
        if c.is_number and float(c) == -1.0:
            return self.stmt("negative", [self.operand(rest)])
        num, den = [], []
        for f in sp.Mul.make_args(rest):
            if f.is_Pow and f.exp.is_number and f.exp < 0:
                den.append(f.base ** (-f.exp))
            else:
                num.append(f)
        acc = self.operand(num[0]) if num else None
        for f in num[1:]:
            acc = self.stmt("multiply", [acc, self.operand(f)])
        if float(c) != 1.0:
            acc = self.stmt("multiply", [acc, self.operand(c)]) if acc is not None else self.operand(c)
        if acc is None:
            acc = Const(1.0)
        for d in den:
            acc = self.stmt("divide", [acc, self.operand(d)])
        return acc if isinstance(acc, Var) else self.stmt("multiply", [acc, Const(1.0)])

    def pow(self, e: sp.Pow) -> Var:
        base, exp = e.base, e.exp
        if exp == 2:
            return self.stmt("square", [self.operand(base)])
        if exp == 3:
            return self.stmt("cube", [self.operand(base)])
        if exp == sp.Rational(1, 2):
            inner = base.args[0] if isinstance(base, sp.Abs) else base
            return self.stmt("sqrt", [self.operand(inner)])
        if exp == -1:
            return self.stmt("reciprocal", [self.operand(base)])
        if exp.is_number and exp < 0:
            return self.stmt("reciprocal", [self.operand(base ** (-exp))])
        if base.is_number and base > 0 or isinstance(base, sp.Abs):
            inner = base.args[0] if isinstance(base, sp.Abs) else base
            return self.stmt("power", [self.operand(inner), self.operand(exp)])
        raise Unsupported(f"cannot write the power {e} (the language's power takes |x|)")


_CLIP = sp.Function("clip")


def _fold_clips(e: sp.Expr) -> sp.Expr:
    """Max(-|c|, Min(x, |c|)) -> clip(x, c), before cse can split the pattern apart."""
    def is_clip(x):
        if not (isinstance(x, sp.Max) and len(x.args) == 2):
            return False
        lo = next((a for a in x.args if isinstance(-a, sp.Abs)), None)
        hi = next((a for a in x.args if isinstance(a, sp.Min) and len(a.args) == 2), None)
        return lo is not None and hi is not None and (-lo) in hi.args

    def to_clip(x):
        lo = next(a for a in x.args if isinstance(-a, sp.Abs))
        hi = next(a for a in x.args if isinstance(a, sp.Min))
        inner = next(a for a in hi.args if a != -lo)
        return _CLIP(inner, (-lo).args[0])
    return e.replace(is_clip, to_clip)


def rebuild(prog: Program, exprs: dict[str, sp.Expr]) -> Program:
    """A program computing ``exprs`` (``{"update": ..., state: ...}``) with ``prog``'s signature."""
    names = {sp.Symbol(n, real=True): n for n in prog.inputs}
    em = _Emitter(names)
    keys = list(exprs)
    exprs = {k: _fold_clips(v) for k, v in exprs.items()}
    replacements, reduced = sp.cse([exprs[k] for k in keys], symbols=sp.numbered_symbols("_cse"),
                                   optimizations="basic")
    for sym, value in replacements:
        em.cache[sym] = em.operand(value) if not value.is_Symbol else em.operand(value)
    outputs = []
    for key, value in zip(keys, reduced):
        v = em.operand(value)
        if isinstance(v, Const) or (key != "update" and v.name in names.values() and v.name != key):
            v = em.stmt("multiply", [v, Const(1.0)])   # an output must be a variable of its own
        outputs.append(v.name)
    out = list(outputs)
    # Give the outputs readable names where that is safe: `update`, and each state's own name
    # once nothing later reads the state's old value.
    rename: dict[str, str] = {}
    reads_after: dict[str, int] = {}
    for i, s in enumerate(em.statements):
        for r in s.reads():
            reads_after[r] = i
    for key, name in zip(keys, out):
        target = key
        if name in names.values() or name in rename:
            continue
        defined_at = max(i for i, s in enumerate(em.statements) if s.target == name)
        if key != "update" and reads_after.get(key, -1) > defined_at:
            continue
        if any(s.target == target for s in em.statements) or (key == "update" and target in names.values()):
            continue
        rename[name] = target
    statements = tuple(Statement(rename.get(s.target, s.target), s.op,
                                 tuple(Var(rename.get(a.name, a.name)) if isinstance(a, Var) else a
                                       for a in s.args)) for s in em.statements)
    outputs = tuple(rename.get(n, n) for n in out)
    return Program(prog.inputs, statements, outputs, prog.name)
