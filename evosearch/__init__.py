"""evosearch: discover deep-learning optimizers by evolving symbolic update-rule programs."""

from .errors import ProgramError
from .optimizer import to_optimizer
from .program import Const, Program, Statement, Var

__all__ = ["Const", "Program", "ProgramError", "Statement", "Var", "to_optimizer"]
__version__ = "0.1.0"
