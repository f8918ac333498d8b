"""Program text -> the pieces of a program. The text is parsed with ``ast`` and only whitelisted node
shapes are accepted; nothing in it is ever executed. Every rejection is a ProgramError naming the
line and the reason. ``Program.parse`` builds the program from the pieces and checks it."""

from __future__ import annotations

import ast
import warnings

import primitives

from .errors import ProgramError
from .ir import GRAD, LR, WEIGHT, Const, Operand, Statement, Var, const
from .limits import check_bytes, check_text

_BINOPS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide"}

_FOUND = {
    ast.Attribute: "attribute access", ast.Subscript: "a subscript", ast.Lambda: "a lambda",
    ast.For: "a loop", ast.While: "a loop", ast.If: "an if statement", ast.IfExp: "a conditional",
    ast.Import: "an import", ast.ImportFrom: "an import", ast.With: "a with statement",
    ast.AugAssign: "an augmented assignment", ast.AnnAssign: "an annotated assignment",
    ast.Compare: "a comparison", ast.BoolOp: "a boolean operator", ast.ListComp: "a comprehension",
    ast.Starred: "a starred expression", ast.Dict: "a dict", ast.List: "a list", ast.Set: "a set",
    ast.Tuple: "a tuple", ast.ClassDef: "a class", ast.Try: "a try statement", ast.Global: "global",
    ast.Nonlocal: "nonlocal", ast.Delete: "del", ast.Pass: "pass", ast.Raise: "raise",
    ast.Assert: "assert", ast.Await: "await", ast.Yield: "yield", ast.NamedExpr: "a walrus",
    ast.JoinedStr: "an f-string", ast.AsyncFunctionDef: "an async function",
    ast.FunctionDef: "a nested function",
}


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return "a string"
        if isinstance(node.value, bytes):
            return "a bytes literal"
        return f"the literal {node.value!r}"
    for cls, what in _FOUND.items():
        if isinstance(node, cls):
            return what
    return f"a {type(node).__name__} node"


Pieces = tuple[str, tuple[str, ...], tuple[Statement, ...], tuple[str, ...], tuple[int, ...]]


def parse_text(text: str | bytes) -> Pieces:
    """(function name, inputs, statements, outputs, source line of each statement and of the
    return) of a program text; ProgramError, and nothing else, on text outside the language or
    over a limit (``limits.py``: checked first, before ``ast`` sees the text)."""
    if isinstance(text, (bytes, bytearray)):
        check_bytes(len(text))
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProgramError(f"program text is not UTF-8 (byte {exc.start})") from None
    if not isinstance(text, str):
        raise ProgramError(f"a program text must be str, not {type(text).__name__}")
    check_text(text)
    if "\0" in text:  # ast.parse rejects it without a line number
        nul_line = text.count("\n", 0, text.index("\0")) + 1
        raise ProgramError("a NUL byte (null bytes are not allowed)", nul_line)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = ast.parse(text, mode="exec")
    except SyntaxError as exc:
        raise ProgramError(f"syntax error: {exc.msg}", exc.lineno) from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise ProgramError(f"not a program text: {type(exc).__name__}: {exc}") from None
    try:
        return _program(module)
    except RecursionError:
        raise ProgramError("program text nests too deeply") from None


def _program(module: ast.Module) -> Pieces:
    funcs = [n for n in module.body if isinstance(n, ast.FunctionDef)]
    for node in module.body:
        if not isinstance(node, ast.FunctionDef):
            what = _describe(node.value if isinstance(node, ast.Expr) else node)
            raise ProgramError(f"expected only a function definition, found {what}", node.lineno)
    if not funcs:
        raise ProgramError("no function definition found (expected `def train(w, g, ..., lr):`)")
    if len(funcs) > 1:
        raise ProgramError("a program is one function; found a second definition", funcs[1].lineno)
    fn = funcs[0]
    if fn.decorator_list:
        raise ProgramError("decorators are not allowed", fn.decorator_list[0].lineno)
    a = fn.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs or a.defaults or a.kw_defaults:
        raise ProgramError("the signature takes plain names only (no defaults, *args, **kwargs)", fn.lineno)
    if fn.returns is not None or any(x.annotation is not None for x in a.args):
        raise ProgramError("annotations are not allowed", fn.lineno)
    if getattr(fn, "type_params", None):
        raise ProgramError("type parameters are not allowed", fn.lineno)
    inputs = tuple(x.arg for x in a.args)
    for required in (WEIGHT, GRAD, LR):
        if required not in inputs:
            raise ProgramError(f"the signature must declare the input {required!r}", fn.lineno)
    for name in inputs:
        _check_name(name, fn.lineno)
    if len(set(inputs)) != len(inputs):
        raise ProgramError("an input is declared twice", fn.lineno)

    statements: list[Statement] = []
    lines: list[int] = []
    outputs: tuple[str, ...] | None = None
    for node in fn.body:
        lines.append(node.lineno)
        if outputs is not None:
            raise ProgramError("statement after return", node.lineno)
        if isinstance(node, ast.Return):
            outputs = _return(node)
        elif isinstance(node, ast.Assign):
            statements.append(_assign(node))
        elif isinstance(node, ast.Expr):
            raise ProgramError(f"a statement must assign a name; found {_describe(node.value)}", node.lineno)
        else:
            raise ProgramError(f"found {_describe(node)}; only `name = ...` and `return` are allowed",
                               node.lineno)
    if outputs is None:
        raise ProgramError("missing `return update, <state variables>`", fn.end_lineno or fn.lineno)
    return fn.name, inputs, tuple(statements), outputs, tuple(lines)


def _check_name(name: str, line: int) -> None:
    if name in primitives.CONSTANTS:
        raise ProgramError(f"{name!r} is a constant and cannot be used as a variable", line)


def _return(node: ast.Return) -> tuple[str, ...]:
    value = node.value
    if value is None:
        raise ProgramError("`return` needs the update and the state variables", node.lineno)
    elts = value.elts if isinstance(value, ast.Tuple) else [value]
    names = []
    for e in elts:
        if not isinstance(e, ast.Name):
            raise ProgramError(f"return lists variable names; found {_describe(e)}", node.lineno)
        names.append(e.id)
    return tuple(names)


def _assign(node: ast.Assign) -> Statement:
    line = node.lineno
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
        what = _describe(node.targets[0]) if len(node.targets) == 1 else "several targets"
        raise ProgramError(f"assign to one plain name; found {what}", line)
    target = node.targets[0].id
    _check_name(target, line)
    value = node.value
    if isinstance(value, ast.Call):
        if not isinstance(value.func, ast.Name):
            raise ProgramError(f"call a primitive by name; found {_describe(value.func)}", line)
        fname = value.func.id
        if value.keywords:
            raise ProgramError(f"keyword arguments are not allowed (in the call to {fname})", line)
        if fname not in primitives.registry() or primitives.get(fname).infix:
            raise ProgramError(f"unknown function {fname!r}", line)
        args = tuple(_operand(x, line) for x in value.args)
        return Statement(target, fname, args)
    if isinstance(value, ast.BinOp):
        op = _BINOPS.get(type(value.op))
        if op is None:
            raise ProgramError(f"operator {type(value.op).__name__} is not allowed (only + - * /)", line)
        return Statement(target, op, (_operand(value.left, line), _operand(value.right, line)))
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
        return Statement(target, "negative", (_operand(value.operand, line),))
    raise ProgramError(
        f"the right-hand side must be one call, one binary operation or a negation; found {_describe(value)}",
        line)


def _operand(node: ast.AST, line: int) -> Operand:
    if isinstance(node, ast.Name):
        if node.id in primitives.CONSTANTS:
            return Const(primitives.CONSTANTS[node.id], node.id)
        return Var(node.id)
    negate = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
    lit = node.operand if negate else node
    if isinstance(lit, ast.Constant) and type(lit.value) in (int, float):
        try:
            value = float(lit.value)
        except OverflowError:
            raise ProgramError(f"literal {lit.value} is too large", line) from None
        try:
            return const(-value if negate else value)
        except ProgramError as exc:
            raise ProgramError(exc.reason, line) from None
    if isinstance(node, (ast.Call, ast.BinOp, ast.UnaryOp)):
        raise ProgramError("nested expression: give each operation its own statement", line)
    raise ProgramError(f"an argument must be a variable or a number; found {_describe(node)}", line)
