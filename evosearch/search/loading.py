"""Where a program comes from, named by one string (the command line's PROGRAM, a config's
``warm_start``): a program file, the name of a shipped reference program (``lion``, ``adamw``, ...),
or ``RUN:best`` / ``RUN:ID`` for the best or a given candidate of a run folder."""

from __future__ import annotations

from pathlib import Path

from evosearch.lang import reference
from evosearch.lang.errors import ProgramError
from evosearch.lang.program import Program

from .store import RunStore


def load_program(spec: str) -> Program:
    """The program ``spec`` names (see the module docstring); ProgramError saying what was
    looked for when there is none."""
    if Path(spec).is_file():
        return Program.load(spec)
    if names_a_run(spec):
        run, _, which = spec.rpartition(":")
        return _from_run(run, which)
    if spec in reference.names():
        return reference.load(spec)
    raise ProgramError(f"no program file {spec!r} (and no reference program of that name; "
                       f"known: {', '.join(reference.names())})")


def names_a_run(spec: str) -> bool:
    """Whether ``spec`` is ``RUN:best`` / ``RUN:ID`` (a searched program), not a file or a name."""
    return ":" in spec and not Path(spec).is_file()


def _from_run(run: str, which: str) -> Program:
    store = RunStore(run, readonly=True)
    try:
        if which == "best":
            hof = store.hall_of_fame(1)
            if not hof:
                raise ProgramError(f"run {run!r} has no evaluated program yet")
            return Program.parse(hof[0]["program"])
        row = store.candidate(int(which)) if which.isdigit() else None
        if row is None:
            raise ProgramError(f"run {run!r} has no candidate {which!r} (use RUN:best or RUN:ID)")
        return Program.parse(row["program"])
    finally:
        store.close()
