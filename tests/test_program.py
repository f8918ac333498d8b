"""The Program value's text and JSON forms (``evosearch.lang.program``; docs/design.md, "The program
language"): reference programs and hand-written texts round-trip, literals parse into the right IR,
and malformed JSON is a ProgramError. Malformed text is tested in test_parse.py, arbitrary input in
test_fuzz.py."""

from __future__ import annotations

import pytest

import primitives
from evosearch import Const, Program, ProgramError, Statement, Var, reference
from programs import ADAMW_TEXT, assert_round_trips, reference_text

# The shipped lion program, as its text form prints it.
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


# -- round trips -------------------------------------------------------------------------------

def test_reference_programs_are_shipped():
    assert {"adamw", "adam", "sgd", "sgd_momentum", "rmsprop", "adagrad", "signsgd", "signum", "lion",
            "powersign", "addsign"} <= set(REFERENCE_NAMES)


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_reference_program_round_trips(name):
    prog = reference.load(name)
    text = reference_text(name)
    assert str(prog) == text
    assert Program.parse(text) == prog
    assert_round_trips(prog)


@pytest.mark.parametrize("text", [ADAMW_TEXT, LION_TEXT], ids=["adamw", "lion"])
def test_design_texts_round_trip(text):
    prog = Program.parse(text)
    assert str(prog) == text
    assert_round_trips(prog)


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
    assert_round_trips(prog)
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

