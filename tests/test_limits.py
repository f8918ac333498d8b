"""How large a program may be (``evosearch.lang.limits``; docs/design.md, "The program language"):
text over a limit is a ProgramError that names the limit, found before ``ast`` or any analysis
sees the text, and parsing and analysis up to the limits take memory linear in the program's length."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evosearch import Const, Program, ProgramError, Statement, Var
from evosearch.lang import limits
from evosearch.lang.limits import MAX_BYTES, MAX_NESTING, MAX_STATEMENTS

OPS = ("v{i} = v{j} * 0.5", "v{i} = interp(g, v{j}, 0.9)", "v{i} = v{j} + m", "v{i} = sign(v{j})")


def chain(n: int) -> str:
    """A program of ``n`` statements, each defining a new variable from the one before (all live):
    the worst case for a variable table copied per statement."""
    lines = ["def train(w, g, m, lr):", "    v0 = g * lr"]
    lines += ["    " + OPS[i % len(OPS)].format(i=i, j=i - 1) for i in range(1, n - 1)]
    lines += [f"    u = v{n - 2} * lr", f"    return u, v{n - 2}"]
    return "\n".join(lines) + "\n"


def _parse_peak(text: str) -> int:
    tracemalloc.start()
    try:
        Program.parse(text)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_parsing_takes_memory_linear_in_the_length():
    """Four times the statements, about four times the memory (it was sixteen: the variable table
    was copied for every statement; 10,000 statements took 1.5 GB)."""
    small, large = _parse_peak(chain(1_000)), _parse_peak(chain(4_000))
    assert large < 6 * small, f"{small / 2**20:.1f} MiB at 1,000 statements, {large / 2**20:.1f} MiB at 4,000"


def test_the_statement_limit():
    prog = Program.parse(chain(MAX_STATEMENTS))
    assert len(prog) == MAX_STATEMENTS
    with pytest.raises(ProgramError, match="MAX_STATEMENTS") as info:
        Program.parse(chain(MAX_STATEMENTS + 1))
    assert info.value.line > MAX_STATEMENTS
    # a program built without text (mutation, the run store's JSON) is held to the same limit
    over = Program(("w", "g", "lr"), (Statement("u", "multiply", (Var("g"), Const(0.5))),) * (MAX_STATEMENTS + 1),
                   ("u",))
    with pytest.raises(ProgramError, match="MAX_STATEMENTS"):
        Program.from_json(over.to_dict())


@pytest.mark.parametrize("expression", [
    " + ".join(["g"] * 100_000),                  # was a RecursionError inside ast
    "-" * 100_000 + "g",                           # was a MemoryError with an empty message
    "(" * 500 + "g" + ")" * 500,
    "not " * 100_000 + "g",
    "g" + ".a" * 100_000,
    "(\n" + "-\n" * 100_000 + "g)",               # over many lines, still one statement
    "f'{" + "-" * 100_000 + "g}'",
], ids=["sum", "negations", "parentheses", "nots", "attributes", "lines", "f-string"])
def test_deep_nesting_is_refused_by_name(expression):
    text = f"def train(w, g, lr):\n    u = {expression}\n    return u\n"
    with pytest.raises(ProgramError, match="MAX_NESTING") as info:
        Program.parse(text)
    assert info.value.line == 2
    assert str(MAX_NESTING) in info.value.reason


@pytest.mark.parametrize("comment", ["# (((( ----", "# don't count (((( ----"],
                         ids=["line by line", "tokenized"])
def test_comments_and_literals_do_not_count_as_nesting(comment):
    text = ("# " + "-" * 3 * MAX_NESTING + "\n"
            + "def train(w, g, lr):\n"
            + "".join(f"    g = g * {k}.5  {comment}\n" for k in range(MAX_NESTING))
            + "    return g\n")
    assert len(Program.parse(text)) == MAX_NESTING


def _expression_depth(tree: ast.AST) -> int:
    """The most expression nodes on one path from the root (iterative: the tree may be deep)."""
    deepest, stack = 0, [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        depth += isinstance(node, ast.expr)
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in ast.iter_child_nodes(node))
    return deepest


# Each way of nesting one expression in another, as a function of the inner expression's text.
NESTINGS = [
    lambda x: f"-{x}", lambda x: f"not {x}", lambda x: f"~{x}", lambda x: f"{x} + g", lambda x: f"g * {x}",
    lambda x: f"g ** {x}", lambda x: f"f({x})", lambda x: f"f(g, *{x})", lambda x: f"({x}).a", lambda x: f"g[{x}]",
    lambda x: f"g[{x}:1]", lambda x: f"({x})", lambda x: f"({x}, g)", lambda x: f"{x} if g else g",
    lambda x: f"lambda: {x}", lambda x: f"[{x}]", lambda x: f"{{g: {x}}}", lambda x: f"{{{x}}}",
    lambda x: f"(a := {x})", lambda x: f"g < {x}", lambda x: f"[a for a in {x}]", lambda x: f"(yield {x})",
    lambda x: f"f'{{{x}}}'", lambda x: f'f"{{{x}}}"',                     # f-strings: tokenized
    lambda x: f"(\n{x}\n)", lambda x: f"({x}  # ((( --\n)", lambda x: f"{x} \\\n + g",   # over lines
]


@st.composite
def nested_expressions(draw) -> str:
    """An expression nested up to 30 deep, each level one of a few (1 to 3) of the ways above."""
    ways = draw(st.lists(st.sampled_from(NESTINGS), min_size=1, max_size=3, unique=True))
    text = draw(st.sampled_from(["g", "1.5"]))
    for _ in range(draw(st.integers(0, 30))):
        text = draw(st.sampled_from(ways))(text)
    return text


@pytest.mark.parametrize("way", range(len(NESTINGS)))
def test_every_way_of_nesting_counts(way):
    text = "g"
    for _ in range(MAX_NESTING + 1):
        text = NESTINGS[way](text)
    with pytest.raises(ProgramError, match="MAX_NESTING"):
        Program.parse(f"def train(w, g, lr):\n    u = {text}\n    return u\n")


@settings(max_examples=300, deadline=None)
@given(nested_expressions(), st.sampled_from(["", "  # it's a comment"]))
def test_what_passes_the_nesting_limit_nests_no_deeper(expression, comment):
    """Whatever passes the limit check (line by line, or tokenized where there is a quote) and
    parses has no expression nested deeper than about twice MAX_NESTING (here lowered to 6; an
    f-string field is two levels for one brace)."""
    text = f"def train(w, g, lr):{comment}\n    u = {expression}\n    return u\n"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(limits, "MAX_NESTING", 6)
        try:
            limits.check_text(text)
        except ProgramError:
            return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # `1.5.a` and the like
            tree = ast.parse(text)
    except SyntaxError:
        return
    assert _expression_depth(tree) <= 2 * 6 + 3


def test_a_huge_file_is_refused_in_seconds_under_a_memory_cap(tmp_path):
    """A 2.6 MB file of 100,000 statements grew to 24 GB before it was killed; here each file is
    loaded in a process that may not pass 2 GiB of address space."""
    (tmp_path / "long.py").write_text(chain(100_000))                          # 2.6 MB
    (tmp_path / "compact.py").write_text(                                     # 100,000 statements in 0.6 MB
        "def train(w, g, lr):\n" + " u=-g\n" * 100_000 + " return u\n")
    with open(tmp_path / "sparse.py", "wb") as f:                              # 4 GiB, read no further
        f.truncate(4 << 30)                                                    # than the limit
    script = textwrap.dedent("""
        import resource, sys, time
        from evosearch import Program, ProgramError
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        for name in sys.argv[1:]:
            t0 = time.perf_counter()
            try:
                Program.load(name)
                print("parsed", name)
            except ProgramError as exc:
                print(f"{time.perf_counter() - t0:.2f}", exc.reason)
    """)
    files = [str(tmp_path / n) for n in ("long.py", "compact.py", "sparse.py")]
    out = subprocess.run([sys.executable, "-c", script, *files], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert len(lines) == 3, out.stdout
    for line, limit in zip(lines, ("MAX_BYTES", "MAX_STATEMENTS", "MAX_BYTES")):
        seconds, reason = line.split(" ", 1)
        assert limit in reason
        assert float(seconds) < 5.0, line
    assert f"{MAX_BYTES:,}" in lines[0]
