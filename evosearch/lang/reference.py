"""The reference programs shipped with evosearch (``evosearch/lang/programs/*.py``): the paper's
AdamW warm start, Lion and the optimizers they are compared with."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .program import Program

PROGRAM_DIR = Path(__file__).parent / "programs"


def names() -> list[str]:
    """The names of the shipped programs (``adamw``, ``lion``, ...), sorted."""
    return sorted(p.stem for p in PROGRAM_DIR.glob("*.py"))


def path(name: str) -> Path:
    """The file of a shipped program; KeyError naming the known ones for an unknown name."""
    p = PROGRAM_DIR / f"{name}.py"
    if not p.is_file():
        raise KeyError(f"no reference program {name!r}; known: {', '.join(names())}")
    return p


@lru_cache(maxsize=None)
def load(name: str) -> Program:
    """A shipped program, parsed and checked (cached)."""
    return Program.load(path(name))


def description(name: str) -> str:
    """The comment lines at the top of the program file."""
    lines = []
    for line in path(name).read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines)
