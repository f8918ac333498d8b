"""The parser (``evosearch.lang.parse``; docs/design.md, "The program language"): every malformed
input is a ProgramError that names the right line and says what is wrong. Text and JSON round trips
are tested in test_program.py, arbitrary input in test_fuzz.py."""

from __future__ import annotations

import random

import pytest

from evosearch import Program, ProgramError


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
             "nests too deeply", "MAX_NESTING")   # more in test_limits.py
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

