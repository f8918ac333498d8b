"""The ``evosearch`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import reference
from .errors import ProgramError
from .program import Program


def load_program(spec: str) -> Program:
    """A program file, or the name of a shipped reference program (``lion``, ``adamw``, ...)."""
    path = Path(spec)
    if path.exists():
        return Program.load(path)
    if spec in reference.names():
        return reference.load(spec)
    raise ProgramError(f"no program file {spec!r} (and no reference program of that name; "
                       f"known: {', '.join(reference.names())})")


def _cmd_list(args) -> int:
    for name in reference.names():
        print(f"{name:<14} {reference.path(name)}\n{'':<14} {reference.description(name)}")
    return 0


def _cmd_check(args) -> int:
    from .analysis import live_statements, pruning_reason
    from .symbolic import math_text
    prog = load_program(args.program)
    print(prog, end="")
    print(f"statements: {len(prog)} ({len(live_statements(prog))} live)")
    print(f"canonical hash: {prog.canonical_hash()}\nfingerprint:    {prog.fingerprint()}")
    reason = pruning_reason(prog)
    print(f"search would prune it: {reason}" if reason else "search would train it")
    print(math_text(prog))
    return 0


def _cmd_export(args) -> int:
    from .export import export
    prog = load_program(args.program)
    path = export(prog, args.output, args.class_name, lr=args.lr)
    print(f"wrote {path} (class {args.class_name})")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run
    run(args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evosearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list-programs", help="list the shipped reference programs")
    p.set_defaults(fn=_cmd_list)
    p = sub.add_parser("check", help="parse and analyse a program: liveness, hashes, math")
    p.add_argument("program", help="a program file or a reference program name")
    p.set_defaults(fn=_cmd_check)
    p = sub.add_parser("export", help="write a program as a standalone torch.optim.Optimizer module")
    p.add_argument("program", help="a program file or a reference program name")
    p.add_argument("-o", "--output", required=True, help="the .py file to write")
    p.add_argument("--class-name", required=True, help="the optimizer class name")
    p.add_argument("--lr", type=float, default=1e-3, help="the default learning rate (default 1e-3)")
    p.set_defaults(fn=_cmd_export)
    p = sub.add_parser("demo", help="parse, check, export and train with every reference program")
    p.add_argument("--out", default=None, help="folder for the exported modules (default: a temp dir)")
    p.set_defaults(fn=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except ProgramError as exc:
        print(f"evosearch: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"evosearch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
