"""Dead edits: a child judged from its parent where the two differ only in code the update cannot see.

Most children of a bloated linear program (Brameier and Banzhaf 2007, "Linear Genetic
Programming", ch. 3: non-effective code) change a statement whose value never reaches the update.
Such a child computes exactly what its parent computes: it has the parent's canonical form, live
states and pruning verdict, and the cache serves it. ``dead_edit`` recognises it by looking only
at where the two programs differ, so that the search need not run abstract execution, liveness and
the canonical form on the whole child. (On the tiny task, iris_mlp from the AdamW warm start, 59% of
children have their parent's canonical hash; ``dead_edit`` recognised 54% of all children, measured
on 2026-11-30.)

It says True only when that is certain; False means "analyse the child in full", never "the child
is different" or "the child is invalid".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ProgramError
from .kinds import check_variable_name, kinds, statement_kind
from .limits import check_statements
from .liveness import live_statements

if TYPE_CHECKING:
    from .program import Program


def dead_edit(parent: Program, child: Program) -> bool:
    """Whether ``child`` is the well-kinded ``parent`` with one dead statement changed (same target,
    a value of the same kind), one dead statement inserted (its value read by nothing: no later
    statement reads its target before one assigns it again, and the return does not) or one dead
    statement deleted (its value read by nothing, or its target defined before it with a value of
    the same kind), and itself well-kinded. Then ``child`` passes
    ``check`` and has the parent's canonical hash, ``live_states`` and ``pruning_reason``.
    ``parent`` must pass ``check``."""
    if (child.inputs, child.outputs, child.name) != (parent.inputs, parent.outputs, parent.name):
        return False
    ps, cs = parent.statements, child.statements
    i = next((k for k, (a, b) in enumerate(zip(ps, cs)) if a is not b and a != b), min(len(ps), len(cs)))
    try:
        table = kinds(parent)                                 # a recent parent's is kept
        if len(cs) == len(ps):
            if i == len(ps):
                return True                                   # the same statements
            if cs[i].target != ps[i].target or cs[i + 1:] != ps[i + 1:] or i in live_statements(parent):
                return False
            # the same kind: every later statement and the return read what they read in the parent
            return statement_kind(cs[i], table[i]) == table.results[i]
        if len(cs) == len(ps) + 1 and cs[i + 1:] == ps[i:]:
            target = cs[i].target
            if not _unread(target, cs[i + 1:], child.outputs):
                return False                                  # its value may be read: not dead
            check_statements(len(cs))
            check_variable_name(target)
            statement_kind(cs[i], table[i])
            return True
        if len(cs) == len(ps) - 1 and cs[i:] == ps[i + 1:] and i not in live_statements(parent):
            target = ps[i].target
            if _unread(target, cs[i:], child.outputs):
                return True
            # what read the deleted value (dead statements, a dead state's return) now reads the one before
            return target in table[i] and table[i][target] == table.results[i]
    except ProgramError:
        return False                                          # the full check says why
    return False


def _unread(target: str, later, outputs: tuple[str, ...]) -> bool:
    """Whether no statement of ``later`` reads ``target`` before one assigns it again, and, if none
    does, the return does not list it: a value written to ``target`` just before ``later`` is read
    by nothing."""
    for s in later:
        if target in s.reads():
            return False
        if s.target == target:
            return True
    return target not in outputs
