"""evosearch: discover deep-learning optimizers by evolving symbolic update-rule programs.

The public API (``docs/design.md``, "Public API"): ``Program`` and its pieces, ``ProgramError``,
``to_optimizer``, ``simplify``, ``match`` and the shipped ``reference`` programs. The engine's
layers are subpackages: ``lang`` (the program language), ``symbolic`` (sympy forms, simplification,
family matching), ``optim`` (programs on torch, export), ``search`` (evolution, evaluation, Ray,
the run store) and ``tune``; ``cli`` is the command line.
"""

from .lang import reference
from .lang.errors import ProgramError
from .lang.ir import Const, Statement, Var
from .lang.program import Program
from .optim.factory import to_optimizer
from .symbolic.exact import simplify
from .symbolic.match import match

__all__ = ["Const", "Program", "ProgramError", "Statement", "Var", "match", "reference", "simplify",
           "to_optimizer"]
__version__ = "0.1.0"
