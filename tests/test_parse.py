"""The program language: text <-> Program round trips, every malformed input a ProgramError on the
right line, and fuzzing (arbitrary text, mutated reference programs, grammar-generated programs)."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import primitives
from evosearch import Const, Program, ProgramError, Statement, Var, reference
from evosearch.lang.canonical import canonical_form, canonical_hash

# The paper's AdamW warm start, exactly as DESIGN.md writes it.
ADAMW_TEXT = """\
def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, m, 0.9)
    v = interp(g2, v, 0.999)
    sqrt_v = sqrt(v)
    update = m / sqrt_v
    wd = w * 0.01
    update = update + wd
    lr = lr * 0.001
    update = update * lr
    return update, m, v
"""

LION_TEXT = """\
def train(w, g, m, lr):
    update = interp(g, m, 0.9)
    update = sign(update)
    m = interp(g, m, 0.99)
    wd = w * 0.01
    update = update + wd
    update = update * lr
    return update, m
"""

REFERENCE_NAMES = reference.names()


def _program_text(name: str) -> str:
    """A reference file without its leading comment lines: what ``str(prog)`` must print."""
    lines = reference.path(name).read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "".join(lines)


def _assert_round_trips(prog: Program) -> None:
    text = str(prog)
    again = Program.parse(text)
    assert again == prog
    assert str(again) == text
    assert Program.from_json(prog.to_json()) == prog


# -- round trips -------------------------------------------------------------------------------

def test_reference_programs_are_shipped():
    assert {"adamw", "adam", "sgd", "sgd_momentum", "rmsprop", "adagrad", "signsgd", "signum", "lion",
            "powersign", "addsign"} <= set(REFERENCE_NAMES)


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_reference_program_round_trips(name):
    prog = reference.load(name)
    text = _program_text(name)
    assert str(prog) == text
    assert Program.parse(text) == prog
    _assert_round_trips(prog)


@pytest.mark.parametrize("text", [ADAMW_TEXT, LION_TEXT], ids=["adamw", "lion"])
def test_design_texts_round_trip(text):
    prog = Program.parse(text)
    assert str(prog) == text
    _assert_round_trips(prog)


def test_adamw_warm_start_ir():
    prog = Program.parse(ADAMW_TEXT)
    assert prog == reference.load("adamw")
    assert prog.inputs == ("w", "g", "m", "v", "lr")
    assert prog.outputs == ("update", "m", "v")
    assert prog.state_names == ("m", "v")
    assert len(prog.statements) == 9
    assert prog.statements[1] == Statement("m", "interp", (Var("g"), Var("m"), Const(0.9)))
    assert prog.statements[4] == Statement("update", "divide", (Var("m"), Var("sqrt_v")))
    assert prog.statements[7] == Statement("lr", "multiply", (Var("lr"), Const(0.001)))


def test_parse_accepts_utf8_bytes_and_keeps_comments_out():
    text = "# a comment\n\ndef train(w, g, lr):\n    # why\n    update = g * lr  # trailing\n\n    return update\n"
    prog = Program.parse(text.encode())
    assert prog == Program.parse(text)
    assert str(prog) == "def train(w, g, lr):\n    update = g * lr\n    return update\n"


def test_literal_forms_round_trip():
    text = ("def train(w, g, m, lr, t):\n"
            "    a = g * -2\n"          # an int literal, negated in place
            "    b = -1.5\n"            # unary minus of a literal: negative(1.5)
            "    c = abs(-0.25)\n"
            "    d = a / 1e-08\n"
            "    m = interp(g, m, pi)\n"
            "    f = power(e, t)\n"
            "    h = f * eps\n"
            "    x = -g\n"
            "    y = (-3.0) - b\n"
            "    update = x * 0x10\n"
            "    return update, m\n")
    prog = Program.parse(text)
    s = prog.statements
    assert s[0] == Statement("a", "multiply", (Var("g"), Const(-2.0)))
    assert s[1] == Statement("b", "negative", (Const(1.5),))
    assert s[2] == Statement("c", "abs", (Const(-0.25),))
    assert s[4].args[2] == Const(primitives.CONSTANTS["pi"], "pi")
    assert s[5].args[0].name == "e" and s[6].args[1].name == "eps"
    assert s[8] == Statement("y", "subtract", (Const(-3.0), Var("b")))
    assert s[9].args[1] == Const(16.0)
    _assert_round_trips(prog)
    assert "update = x * 16.0" in str(prog) and "y = (-3.0) - b" in str(prog)


def test_json_form_is_stable_and_checked():
    prog = reference.load("adam")
    data = prog.to_dict()
    assert data["format"] == "evosearch.program/1"
    assert Program.from_json(data) == prog
    assert Program.from_json(prog.to_json()).to_json() == prog.to_json()


@pytest.mark.parametrize("bad", [
    "", "{", "[]", "null", "5", '{"statements": 3}',
    '{"inputs": ["w", "g", "lr"], "statements": [["u", "nope", [{"var": "g"}]]], "outputs": ["u"]}',
    '{"inputs": ["w", "g", "lr"], "statements": [["u", "abs", [{"var": "g"}, {"var": "g"}]]], "outputs": ["u"]}',
    '{"inputs": ["w", "g", "lr"], "statements": [["u", "abs", [{"const": "tau"}]]], "outputs": ["u"]}',
    '{"inputs": ["w", "g", "lr"], "statements": [["u", "abs", [7]]], "outputs": ["u"]}',
    '{"inputs": ["w", "g", "lr"], "statements": [["u", "multiply", [{"var": "g"}, {"const": 1e999}]]],'
    ' "outputs": ["u"]}',
    '{"inputs": ["w", "g", "lr"], "statements": [["u", "multiply", [{"var": "g"}, {"const": 1' + "0" * 400
    + '}]]], "outputs": ["u"]}',
    '{"inputs": ["w", "g", "lr"], "statements": [], "outputs": ["lr"]}',
    '{"inputs": ["w", "g", "lr"], "statements": [["u", "negative", [{"var": "g"}]]], "outputs": ["u", "u"]}',
    '{"inputs": ["w", "g", "pi", "lr"], "statements": [], "outputs": ["g", "pi"]}',
    '{"inputs": ["w", "g", "lr"], "statements": [["lambda", "negative", [{"var": "g"}]]], "outputs": ["lambda"]}',
    '{"name": "None", "inputs": ["w", "g", "lr"], "statements": [], "outputs": ["g"]}',
    '{"name": "f g", "inputs": ["w", "g", "lr"], "statements": [], "outputs": ["g"]}',
    '{"inputs": ["w", "g", "lr"], "statements": [["\\ufb01", "negative", [{"var": "g"}]]], "outputs": ["\\ufb01"]}',
    "[" * 100_000,
])
def test_from_json_rejects_malformed_input(bad):
    with pytest.raises(ProgramError):
        Program.from_json(bad)


# -- malformed programs: one test per category ---------------------------------------------------
# The offending line carries the marker comment `# <-`; the error must name that source line
# (blank lines and comments included) and say what is wrong.

def _marked_line(text: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), start=1) if "# <-" in line]
    assert len(lines) == 1, "exactly one line must carry the marker"
    return lines[0]


def _rejects(text, *words: str, line: int | None | str = "marked") -> ProgramError:
    with pytest.raises(ProgramError) as info:
        Program.parse(text)
    err = info.value
    if line == "marked":
        line = _marked_line(text)
    assert err.line == line, f"error on line {err.line}, expected {line}: {err}"
    for word in words:
        assert word.lower() in err.reason.lower(), f"{word!r} not in {err.reason!r}"
    if line is not None:
        assert str(err).startswith(f"line {line}:")
    return err


HEADER = "# a comment line\n\ndef train(w, g, m, lr):\n    # the momentum\n\n"


def test_syntax_error():
    _rejects(HEADER + "    m = interp(g, m, 0.9  # <-\n\n    update = sign(m)\n    return update, m\n",
             "syntax error")
    _rejects(HEADER + "    m = = g  # <-\n    return g, m\n", "syntax error")
    _rejects("def train(w, g, lr)  # <-\n    return g\n", "syntax error")
    _rejects(HEADER + "    m = interp(g, m, 0.9)\n      update = m  # <-\n    return update, m\n",
             "syntax error", "indent")


def test_unknown_function():
    _rejects(HEADER + "    m = interp(g, m, 0.9)\n    update = softsign(m)  # <-\n    return update, m\n",
             "unknown function", "softsign")
    # the operators are spelled as operators, not as calls
    _rejects(HEADER + "    update = add(g, m)  # <-\n    return update, m\n", "unknown function", "add")
    _rejects(HEADER + "    update = eval(g)  # <-\n    return update, m\n", "unknown function", "eval")


def test_wrong_arity():
    _rejects(HEADER + "    m = interp(g, m)  # <-\n    return m, m\n", "interp", "3 arguments", "got 2")
    _rejects(HEADER + "    m = interp(g, m, 0.9)\n    update = sign(m, g)  # <-\n    return update, m\n",
             "sign", "1 argument", "got 2")
    _rejects(HEADER + "    update = sqrt()  # <-\n    return update, m\n", "sqrt", "got 0")


def test_scalar_where_tensor_is_needed():
    _rejects(HEADER + "    x = norm(0.5)  # <-\n    update = g * x\n    return update, m\n",
             "scalar where a tensor is needed", "norm")
    _rejects(HEADER + "    n = norm(lr)  # <-\n    return g, m\n", "scalar where a tensor is needed", "'lr'")
    _rejects(HEADER + "    m = interp(g, m, 0.9)\n\n    return lr, m  # <-\n",
             "scalar where a tensor is needed", "update")
    _rejects(HEADER + "    m = interp(g, m, 0.9)\n    update = lr * 0.5\n    return update, m  # <-\n",
             "scalar where a tensor is needed", "update")
    _rejects(HEADER + "    n = norm(g)\n    return g, n  # <-\n", "scalar where a tensor is needed", "'m'")


def test_undefined_variable():
    _rejects(HEADER + "    m = interp(g, q, 0.9)  # <-\n    return g, m\n", "undefined variable", "'q'")
    _rejects(HEADER + "    m = interp(g, m, 0.9)\n    return update, m  # <-\n", "undefined variable", "update")
    # a name is defined only from its assignment on
    _rejects(HEADER + "    x = y * g  # <-\n    y = g * 2.0\n    return x, m\n", "undefined variable", "'y'")


def test_missing_return():
    _rejects(HEADER + "    m = interp(g, m, 0.9)\n    update = sign(m)  # <-\n", "missing", "return")
    _rejects(HEADER + "    update = sign(m)\n    return  # <-\n", "return", "update")


def test_statement_after_return():
    _rejects(HEADER + "    return g, m\n    x = sign(m)  # <-\n", "after return")


def test_wrong_number_of_returned_names():
    _rejects(HEADER + "    m = interp(g, m, 0.9)\n    return m  # <-\n", "expected 2 names, got 1", "m")
    _rejects("def train(w, g, lr):\n\n    update = sign(g)\n    return update, g  # <-\n",
             "expected 1 names, got 2")


def test_return_of_a_literal():
    _rejects(HEADER + "    return 1.0, m  # <-\n", "return", "literal 1.0")
    _rejects(HEADER + "    return g * lr, m  # <-\n", "return")


def test_imports():
    _rejects("import os  # <-\ndef train(w, g, lr):\n    return g\n", "import")
    _rejects("from math import pi  # <-\ndef train(w, g, lr):\n    return g\n", "import")
    _rejects("def train(w, g, lr):\n    import os  # <-\n    return g\n", "import")
    _rejects("def train(w, g, lr):\n    x = __import__(g)  # <-\n    return g\n", "unknown function")


def test_attribute_access():
    _rejects(HEADER + "    update = torch.sign(g)  # <-\n    return update, m\n", "attribute access")
    _rejects(HEADER + "    update = g.T  # <-\n    return update, m\n", "attribute access")
    _rejects(HEADER + "    update = sign(g.data)  # <-\n    return update, m\n", "attribute access")
    _rejects(HEADER + "    g.data = sign(g)  # <-\n    return g, m\n", "attribute access")


def test_subscripts():
    _rejects(HEADER + "    update = g[0]  # <-\n    return update, m\n", "subscript")
    _rejects(HEADER + "    update = sign(g[0])  # <-\n    return update, m\n", "subscript")
    _rejects(HEADER + "    m[0] = sign(g)  # <-\n    return g, m\n", "subscript")


def test_strings_and_docstrings():
    _rejects('def train(w, g, lr):\n    """An update rule."""  # <-\n    return g\n', "string")
    _rejects(HEADER + "    update = sign('g')  # <-\n    return update, m\n", "string")
    _rejects(HEADER + "    update = g * b'x'  # <-\n    return update, m\n", "bytes")
    _rejects('"""module docstring"""  # <-\ndef train(w, g, lr):\n    return g\n', "string")
    _rejects(HEADER + "    update = f'{g}'  # <-\n    return update, m\n", "f-string")


def test_lambdas():
    _rejects(HEADER + "    f = lambda: 0  # <-\n    return g, m\n", "lambda")
    _rejects(HEADER + "    update = sign(lambda x: x)  # <-\n    return update, m\n", "lambda")


def test_loops():
    _rejects(HEADER + "    for i in range(3):  # <-\n        m = m + g\n    return g, m\n", "loop")
    _rejects(HEADER + "    while m:  # <-\n        m = m + g\n    return g, m\n", "loop")
    _rejects(HEADER + "    update = [x for x in g]  # <-\n    return update, m\n", "comprehension")


def test_if():
    _rejects(HEADER + "    if lr:  # <-\n        m = m + g\n    return g, m\n", "if")
    _rejects(HEADER + "    update = g if lr else m  # <-\n    return update, m\n", "conditional")


def test_keyword_arguments():
    _rejects(HEADER + "    update = clip(g, c=1.0)  # <-\n    return update, m\n", "keyword", "clip")
    _rejects(HEADER + "    update = sign(**g)  # <-\n    return update, m\n", "keyword")


def test_nested_expressions():
    _rejects(HEADER + "    update = sqrt(square(g))  # <-\n    return update, m\n", "nested")
    _rejects(HEADER + "    update = g * (m + 1.0)  # <-\n    return update, m\n", "nested")
    _rejects(HEADER + "    update = g * -m  # <-\n    return update, m\n", "nested")
    _rejects(HEADER + "    update = g * m * lr  # <-\n    return update, m\n", "nested")


def test_other_operators_and_targets():
    _rejects(HEADER + "    update = g ** 2  # <-\n    return update, m\n", "operator", "Pow")
    _rejects(HEADER + "    update = g @ m  # <-\n    return update, m\n", "operator")
    _rejects(HEADER + "    update = +g  # <-\n    return update, m\n", "right-hand side")
    _rejects(HEADER + "    update = g  # <-\n    return update, m\n", "right-hand side")
    _rejects(HEADER + "    update = 1.0  # <-\n    return update, m\n", "right-hand side", "literal 1.0")
    _rejects(HEADER + "    a = b = sign(g)  # <-\n    return a, m\n", "several targets")
    _rejects(HEADER + "    a, b = sign(g)  # <-\n    return a, m\n", "tuple")
    _rejects(HEADER + "    update = g < m  # <-\n    return update, m\n", "comparison")
    _rejects(HEADER + "    update = g * True  # <-\n    return update, m\n", "literal True")
    _rejects(HEADER + "    update = g * 1j  # <-\n    return update, m\n", "literal 1j")
    _rejects(HEADER + "    sign(g)  # <-\n    return g, m\n", "must assign")
    _rejects(HEADER + "    pass  # <-\n    return g, m\n", "pass")
    _rejects(HEADER + "    update: float = sign(g)  # <-\n    return update, m\n", "annotated")


def test_a_second_function():
    _rejects("def train(w, g, lr):\n    return g\n\n# another\ndef other(w, g, lr):  # <-\n    return g\n",
             "second")
    _rejects("def train(w, g, lr):\n    def inner(x):  # <-\n        return x\n    return g\n", "only")
    _rejects("class Opt:  # <-\n    pass\n", "class")
    _rejects("async def train(w, g, lr):  # <-\n    return g\n", "async")
    _rejects("# nothing but a comment\n", "no function", line=None)


def test_decorators():
    _rejects("\n@torch.no_grad()  # <-\ndef train(w, g, lr):\n    return g\n", "decorator")


def test_default_args_and_fancy_signatures():
    _rejects("\ndef train(w, g, lr=1e-3):  # <-\n    return g\n", "no defaults")
    _rejects("\ndef train(w, g, *states, lr):  # <-\n    return g\n", "*args")
    _rejects("\ndef train(w, g, lr, **kw):  # <-\n    return g\n", "**kwargs")
    _rejects("\ndef train(w, g, lr, /):  # <-\n    return g\n", "plain names")
    _rejects("\ndef train(w: float, g, lr):  # <-\n    return g\n", "annotations")
    _rejects("\ndef train(w, g, lr) -> float:  # <-\n    return g\n", "annotations")
    _rejects("\ndef train(w, g):  # <-\n    return g\n", "signature", "'lr'")
    _rejects("\ndef train(w, lr, m):  # <-\n    return w, m\n", "signature", "'g'")
    _rejects("\ndef train(w, g, m, m, lr):  # <-\n    return g, m, m\n", "declared twice")


def test_assigning_to_a_constant():
    _rejects(HEADER + "    pi = g * lr  # <-\n    return pi, m\n", "'pi'", "constant")
    _rejects(HEADER + "    eps = g * lr  # <-\n    return eps, m\n", "'eps'", "constant")
    _rejects("\ndef train(w, g, e, lr):  # <-\n    return g, e\n", "'e'", "constant")


def test_non_finite_literal():
    _rejects(HEADER + "    update = g * 1e999  # <-\n    return update, m\n", "not finite")
    _rejects(HEADER + "    update = g * -1e999  # <-\n    return update, m\n", "not finite")
    _rejects(HEADER + "    update = clip(g, 1" + "0" * 400 + ")  # <-\n    return update, m\n", "too large")


def test_augmented_assignment():
    _rejects(HEADER + "    m += g  # <-\n    return g, m\n", "augmented assignment")


def test_binary_garbage_bytes():
    rng = random.Random(0)
    for _ in range(50):
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        with pytest.raises(ProgramError):
            Program.parse(garbage)
    _rejects(b"def train(w, g, lr):\n    return \xff\xfe\n", "not UTF-8", line=None)
    _rejects(b"\x80", "not UTF-8", line=None)


def test_nul_bytes():
    text = "def train(w, g, lr):\n\n    update = g\x00 * lr  # <-\n    return update\n"
    _rejects(text, "null")
    _rejects(text.encode(), "null", line=_marked_line(text))
    _rejects("\x00", "null", line=1)


def test_non_str_input():
    for bad in (None, 5, 1.5, ["def train(w, g, lr):", "    return g"], object()):
        _rejects(bad, "must be str", line=None)


def test_pathological_text_is_a_program_error():
    _rejects("def train(w, g, lr):\n    x = " + "(" * 500 + "g" + ")" * 500 + "  # <-\n    return x\n",
             "syntax error")
    with pytest.raises(ProgramError):
        Program.parse("def train(w, g, lr):\n    x = " + "-" * 100_000 + "g\n    return x\n")
    with pytest.raises(ProgramError):
        Program.parse("def train(w, g, lr):\n    x = g\ud800\n    return x\n")


def test_load_names_the_file(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def train(w, g, lr):\n    x = g[0]\n    return x\n")
    with pytest.raises(ProgramError) as info:
        Program.load(bad)
    assert info.value.line == 2 and "bad.py" in str(info.value) and "subscript" in info.value.reason
    with pytest.raises(ProgramError):
        Program.load(tmp_path / "missing.py")


# -- fuzzing: arbitrary text ------------------------------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_program_error(text):
    """Parse; on success the program round-trips. Anything but ProgramError escaping is a bug."""
    try:
        prog = Program.parse(text)
    except ProgramError as err:
        assert err.line is None or (isinstance(err.line, int) and err.line >= 1)
        return None
    _assert_round_trips(prog)
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
    _assert_round_trips(prog)


# -- fuzzing: mutated valid programs ----------------------------------------------------------------

SEED_TEXTS = [_program_text(n) for n in REFERENCE_NAMES] + [ADAMW_TEXT]
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
    _assert_round_trips(prog)
    # the canonical form is itself a valid program and a fixed point
    canon = canonical_form(prog)
    _assert_round_trips(canon)
    assert canonical_form(canon) == canon
    assert canonical_hash(canon) == canonical_hash(prog)


def test_generator_covers_every_callable_primitive():
    """The grammar draws from the whole registry, so a primitive added later is fuzzed too."""
    assert set(CALLABLE) | set(INFIX) | {"negative"} == set(primitives.names())
    assert all(name.isidentifier() for name in CALLABLE)
