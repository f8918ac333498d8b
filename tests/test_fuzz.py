"""Fuzzing program input (docs/design.md, "The program language": no exception but ProgramError
escapes the parser): arbitrary text, bytes and JSON, mutated reference programs and
grammar-generated programs are each a Program that round-trips, or a ProgramError."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import primitives
from evosearch import Const, Program, ProgramError, Statement, Var, reference
from evosearch.lang.canonical import canonical_form, canonical_hash
from programs import ADAMW_TEXT, assert_round_trips, reference_text

REFERENCE_NAMES = reference.names()


# -- fuzzing: arbitrary text ------------------------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_program_error(text):
    """Parse; on success the program round-trips. Anything but ProgramError escaping is a bug."""
    try:
        prog = Program.parse(text)
    except ProgramError as err:
        assert err.line is None or (isinstance(err.line, int) and err.line >= 1)
        return None
    assert_round_trips(prog)
    return prog


@FUZZ
@given(st.text())
def test_arbitrary_text_is_a_program_or_a_program_error(text):
    _parse_or_program_error(text)


@FUZZ
@given(st.binary())
def test_arbitrary_bytes_are_a_program_or_a_program_error(data):
    _parse_or_program_error(data)


@FUZZ
@given(st.lists(st.sampled_from(list("def train(w, g, m, lr):\n    return =+-*/.0123456789e#,") + [
    "def train(w, g, lr):\n", "    ", "\n", "sign(", "interp(", "norm(", "update", " = ", "return "])))
def test_program_shaped_text_is_a_program_or_a_program_error(pieces):
    _parse_or_program_error("".join(pieces))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(["w", "g", "m", "lr", "pi", "var", "const", "sign", "interp"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["var", "const", "x"]), inner,
                                                               max_size=3),
    max_leaves=12)


@st.composite
def corrupted_json(draw):
    """A reference program's JSON dict with one field replaced by an arbitrary JSON value."""
    data = reference.load(draw(st.sampled_from(REFERENCE_NAMES))).to_dict()
    path, node = [], data
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        path.append(key)
        node = node[key]
    if not path:
        return draw(JSON_VALUES)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = draw(JSON_VALUES)
    return data


@FUZZ
@given(corrupted_json())
def test_corrupted_json_is_a_program_or_a_program_error(data):
    try:
        prog = Program.from_json(data)
    except ProgramError:
        return
    assert_round_trips(prog)


# -- fuzzing: mutated valid programs ----------------------------------------------------------------

SEED_TEXTS = [reference_text(n) for n in REFERENCE_NAMES] + [ADAMW_TEXT]
SNIPPETS = ["import os", "x.y", "a[0]", "lambda: 0", "f(k=1)", '"s"', "1e999", "-", "(", ")", ",", ":",
            "def f():", "return", "pi", "e", "eps", "t", "lr", "norm(", "g * g * g", "yield g",
            "x = sign(g)", "x = y", "    ", "\t", "\n", "#", "\\", "@d", "**g", "*g", "...",
            "m += g", "global g", "del g", "if g:", "for i in g:", "async ", "await g", "0x1F", "1_0",
            "nan", "inf", "1e-320", "9" * 30, "\x00", "\ufeff", "ﬁ", "ß", "\r", "\x0c"]
STATEMENT_SNIPPETS = ["import os", "x = g.y", "x = g[0]", "f = lambda: 0", "x = clip(g, c=1)", 'x = "s"',
                      "x = sign(sign(g))", "x = g * g * g", "g += 1", "x = g if lr else w", "x: int = 1",
                      "assert g", "pass", "return g", "x = y", "x = sign(g)", "lr = lr * 0.5",
                      "update = m + m", "m = -m", "x = norm(lr)", "x = interp(g, g)", "del g",
                      "for i in g:\n        pass", "if g:\n        x = g", "def f():\n    return 0",
                      "@dec", '"""doc"""', "print(g)", "x = w @ g", "x, y = g, w", "x = (g)", "x = -(-1.5)"]
IDENT_POOL = (primitives.names() + list(primitives.CONSTANTS)
              + ["w", "g", "m", "v", "lr", "t", "update", "x", "_", "None", "True", "def", "return",
                 "lambda", "import", "print", "exec", "__import__", "train2", "λ"])


@st.composite
def mutated_texts(draw):
    text = draw(st.sampled_from(SEED_TEXTS))
    for _ in range(draw(st.integers(1, 3))):
        # token- and line-level edits are weighted up: character noise is mostly a syntax error
        kind = draw(st.sampled_from(["delete", "insert", "replace", "swap_lines", "swap_lines", "rename",
                                     "rename", "rename", "snippet", "snippet_line", "snippet_line",
                                     "snippet_line", "number", "number"]))
        n = len(text)
        if kind == "delete" and n:
            i = draw(st.integers(0, n - 1))
            j = min(n, i + draw(st.integers(1, 5)))
            text = text[:i] + text[j:]
        elif kind == "insert":
            i = draw(st.integers(0, n))
            text = text[:i] + draw(st.text(alphabet=st.sampled_from("()=,:.-+*/ \n\t#0123456789e_gmwv"),
                                           min_size=1, max_size=3) | st.characters()) + text[i:]
        elif kind == "replace" and n:
            i = draw(st.integers(0, n - 1))
            text = text[:i] + draw(st.characters()) + text[i + 1:]
        elif kind == "swap_lines" and text:
            lines = text.splitlines(keepends=True)
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
        elif kind == "rename" and re.search(r"[A-Za-z_]", text):
            idents = list(re.finditer(r"[A-Za-z_]\w*", text))
            old = draw(st.sampled_from(sorted({m.group() for m in idents})))
            new = draw(st.sampled_from(IDENT_POOL) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True))
            spots = [m.start() for m in idents if m.group() == old]
            if not draw(st.booleans()):  # every occurrence (a consistent rename) or just one
                spots = [draw(st.sampled_from(spots))]
            for i in reversed(spots):
                text = text[:i] + new + text[i + len(old):]
        elif kind == "snippet":
            i = draw(st.integers(0, n))
            text = text[:i] + draw(st.sampled_from(SNIPPETS)) + text[i:]
        elif kind == "snippet_line":
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, len(lines)))
            indent = draw(st.sampled_from(["    ", "    ", "    ", "", "        ", "  "]))
            lines.insert(i, indent + draw(st.sampled_from(STATEMENT_SNIPPETS + SNIPPETS)) + "\n")
            text = "".join(lines)
        elif kind == "number":
            spots = list(re.finditer(r"\d+\.\d+|\d+", text))
            if spots:
                m = draw(st.sampled_from(spots))
                new = draw(st.sampled_from(["1e999", "-0.0", "0", "1e308", "-1", "1_000", "0o7", "5e-324", "2.",
                                            ".5", "1" + "0" * 400, "0x"])
                           | st.floats(allow_nan=False, allow_infinity=False).map(repr))
                text = text[:m.start()] + new + text[m.end():]
    return text


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_texts())
def test_mutated_programs_parse_or_raise_program_error(text):
    prog = _parse_or_program_error(text)
    if prog is not None:
        # a valid program also survives analysis
        assert len(canonical_hash(prog)) == 32


# -- fuzzing: grammar-generated valid programs --------------------------------------------------------

TENSOR, SCALAR, ANY = primitives.TENSOR, primitives.SCALAR, primitives.ANY
CALLABLE = [p for p in primitives.names() if not primitives.get(p).infix]
INFIX = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}
FRESH = ["a", "b", "c", "d", "x", "y", "z", "tmp", "update", "m2", "sqrt_v", "ema_1", "_u"]


@st.composite
def literals(draw):
    """(Const, how it is written as an argument)."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        name = draw(st.sampled_from(sorted(primitives.CONSTANTS)))
        return Const(primitives.CONSTANTS[name], name), name
    if choice == 1:
        value = draw(st.integers(-10**6, 10**6))
        return Const(float(value)), str(value)
    value = draw(st.floats(allow_nan=False, allow_infinity=False, width=64))
    return Const(value), repr(value)


@st.composite
def valid_programs(draw):
    """A random well-kinded program as (expected IR, source text in a loose style)."""
    states = draw(st.lists(st.sampled_from(["m", "v", "s", "mom", "acc"]), max_size=3, unique=True))
    inputs = ["w", "g"] + states + ["lr"] + (["t"] if draw(st.booleans()) else [])
    env = {name: (SCALAR if name in ("lr", "t") else TENSOR) for name in inputs}
    statements, lines = [], []
    for _ in range(draw(st.integers(0, 10))):
        op = draw(st.sampled_from(CALLABLE + list(INFIX) + ["negative"]))
        prim = primitives.get(op)
        tensors = sorted(n for n, k in env.items() if k == TENSOR)
        args, written, kinds = [], [], []
        for want in prim.arg_kinds:
            if want == TENSOR or draw(st.booleans()):
                name = draw(st.sampled_from(tensors if want == TENSOR else sorted(env)))
                args.append(Var(name)), written.append(name), kinds.append(env[name])
            else:
                c, text = draw(literals())
                args.append(c), written.append(text), kinds.append(SCALAR)
        target = draw(st.sampled_from(FRESH + states + ["lr", "w"]))
        if op in INFIX:
            left, right = (f"({x})" if x.startswith("-") and isinstance(a, Const) and a.name is None
                           and draw(st.booleans()) else x for x, a in zip(written, args))
            rhs = f"{left} {INFIX[op]}  {right}" if draw(st.booleans()) else f"{left} {INFIX[op]} {right}"
        elif op == "negative":
            # `-1.5` is negative(1.5); a negative literal needs `-(-1.5)`
            rhs = f"-({written[0]})" if written[0].startswith("-") else f"-{written[0]}"
        else:
            rhs = f"{op}({', '.join(written)})"
        statements.append(Statement(target, op, tuple(args)))
        env[target] = prim.result(tuple(kinds))
        lines.append(f"    {target} = {rhs}")
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from(["", "    # a comment", "  # odd indent comment"])))
    tensors = sorted(n for n, k in env.items() if k == TENSOR)
    outputs = tuple(draw(st.sampled_from(tensors)) for _ in range(1 + len(states)))
    text = f"def train({', '.join(inputs)}):\n" + "\n".join(lines + [f"    return {', '.join(outputs)}"]) + "\n"
    return Program(tuple(inputs), tuple(statements), outputs), text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_programs())
def test_generated_programs_parse_and_round_trip(case):
    expected, text = case
    prog = Program.parse(text)
    assert prog == expected
    assert_round_trips(prog)
    # the canonical form is itself a valid program and a fixed point
    canon = canonical_form(prog)
    assert_round_trips(canon)
    assert canonical_form(canon) == canon
    assert canonical_hash(canon) == canonical_hash(prog)


def test_generator_covers_every_callable_primitive():
    """The grammar draws from the whole registry, so a primitive added later is fuzzed too."""
    assert set(CALLABLE) | set(INFIX) | {"negative"} == set(primitives.names())
    assert all(name.isidentifier() for name in CALLABLE)
