"""evosearch: discover deep-learning optimizers by evolving symbolic update-rule programs."""

from .errors import ProgramError
from .optimizer import to_optimizer
from .program import Const, Program, Statement, Var
from .simplify import simplify  # noqa: E402  (the function; the module stays evosearch.simplify)
from .match import match  # noqa: E402

__all__ = ["Const", "Program", "ProgramError", "Statement", "Var", "match", "simplify", "to_optimizer"]
__version__ = "0.1.0"
