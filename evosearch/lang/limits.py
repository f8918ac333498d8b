"""How large a program may be. A text or a program over a limit is a ProgramError that names the
limit, raised before ``ast`` parses the text and before any analysis, so that a huge or deeply
nested input (a mistyped path, a generated file, a corrupted run folder) costs milliseconds instead
of the machine's memory. The limits are far above what a search makes (``[mutation]
max_statements``, 30 by default) and every analysis in ``lang`` is linear in a program's size up
to them (docs/design.md, "The program language")."""

from __future__ import annotations

import io
import tokenize

from .errors import ProgramError

MAX_BYTES = 1 << 20          # program text, UTF-8: 1 MiB, 100 bytes for each of MAX_STATEMENTS
MAX_STATEMENTS = 10_000      # statements in one program
MAX_NESTING = 100            # operators and brackets in one statement, a bound on how deep its syntax
                             # tree is: Python's parser gives up past 200 nested brackets or a few
                             # thousand operators, some of it as a RecursionError or a MemoryError
                             # with no message; a statement of the language has a handful

# Everything that can nest one expression inside another: operators, brackets, attribute dots and
# the keywords of nesting expressions. A statement's count of them bounds how deep it nests.
_NESTING_CHARS = "([{.+-*/%@&|^~<>!:"
_NESTING_WORDS = ("not", "if", "lambda", "await", "yield")
_DROP_NESTING_CHARS = str.maketrans("", "", _NESTING_CHARS)


def _limit(name: str) -> str:
    return f"the limit evosearch.lang.limits.{name} = {globals()[name]:,}"


def check_bytes(size: int) -> None:
    """ProgramError if a program text of ``size`` bytes is over MAX_BYTES."""
    if size > MAX_BYTES:
        raise ProgramError(f"the program text is {size:,} bytes, over {_limit('MAX_BYTES')} bytes")


def check_statements(count: int, line: int | None = None) -> None:
    """ProgramError if ``count`` statements are over MAX_STATEMENTS."""
    if count > MAX_STATEMENTS:
        raise ProgramError(f"more than {MAX_STATEMENTS:,} statements, over {_limit('MAX_STATEMENTS')}", line)


def check_text(text: str) -> None:
    """ProgramError if ``text`` is over a limit: its size, its number of statements, or any one
    statement's nesting. Linear in the text and never recursive, cheapest first: counts over the
    whole text (enough for any program a search makes), then line by line where the text has no
    strings or backslashes, and the tokenizer only where those leave a doubt."""
    check_bytes(len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass")))
    if _nesting(text) <= MAX_NESTING and text.count("\n") + text.count(";") <= MAX_STATEMENTS and "\r" not in text:
        return
    if any(c in text for c in "'\"\\\r") or not _plainly_within_limits(text):
        _scan(text)


def _nesting(code: str) -> int:
    """How many operators, brackets and nesting keywords ``code`` holds, at most (words inside
    names count too)."""
    return len(code) - len(code.translate(_DROP_NESTING_CHARS)) + sum(map(code.count, _NESTING_WORDS))


def _plainly_within_limits(text: str) -> bool:
    """True if a text without strings, backslashes or carriage returns is within the statement and
    nesting limits. Without strings, a comment runs from ``#`` to the end of the line and a
    statement goes on to the next line only inside brackets; the counts err on the high side
    (``;`` and words inside names), and False only means "look closer"."""
    statements = nesting = depth = 0
    for line in text.split("\n"):
        code = line.partition("#")[0]
        nesting += _nesting(code)
        depth += sum(map(code.count, "([{")) - sum(map(code.count, ")]}"))
        if nesting > MAX_NESTING:
            return False
        if depth <= 0:      # the statement ends with the line (below 0: a syntax error, ast's to report)
            depth = nesting = 0
            statements += (1 + code.count(";")) if code.strip() else 0
            if statements > MAX_STATEMENTS + 2:   # + 2: the `def` line and the return
                return False
    return True


def _scan(text: str) -> None:
    """Count statements and each statement's nesting token by token (comments and literals do not
    count), stopping at the first limit passed. A text the tokenizer rejects is left to ``ast``,
    which reports the syntax error where the tokenizer stopped."""
    logical_lines, nesting, first_line = 0, 0, None
    tokens = tokenize.generate_tokens(io.StringIO(text, newline=None).readline)
    try:
        for tok in tokens:
            if tok.type == tokenize.NEWLINE or tok.type == tokenize.OP and tok.string == ";":
                logical_lines += 1
                if logical_lines > MAX_STATEMENTS + 2:
                    check_statements(logical_lines - 2, tok.start[0])
                nesting, first_line = 0, None
                continue
            if tok.type in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                continue
            first_line = first_line or tok.start[0]
            if tok.type == tokenize.OP and tok.string[0] in _NESTING_CHARS:
                nesting += 1
            elif tok.type == tokenize.NAME and tok.string in _NESTING_WORDS:
                nesting += 1
            elif tok.type == tokenize.STRING:   # an f-string's fields are expressions
                nesting += sum(map(tok.string.count, _NESTING_CHARS))
            if nesting > MAX_NESTING:
                raise ProgramError(f"the statement nests too deeply: more than {MAX_NESTING} operators "
                                   f"and brackets, over {_limit('MAX_NESTING')}", first_line)
    except (tokenize.TokenError, SyntaxError):
        return
