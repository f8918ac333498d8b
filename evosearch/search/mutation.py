"""Mutation operators (Chen et al. 2023, Sec. 2.2, after AutoML-Zero): insert a random statement,
delete a statement, modify an argument (another variable, or a constant resampled from N(0, 1) or
scaled by 2**N(0, 1)), and change a statement's function to another of the same arity.

Pure: a mutation is a function of the parent and a seeded ``random.Random``. A child may be invalid
(e.g. a deleted statement defined a variable that is read later); the caller checks it with abstract
execution and mutates again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import primitives
from evosearch.lang.ir import SPECIAL_INPUTS, Const, Statement, Var
from evosearch.lang.kinds import INPUT_KINDS, kinds
from evosearch.lang.program import Program
from primitives import SCALAR, TENSOR

OPERATORS = ("insert", "delete", "modify_argument", "change_function")


@dataclass(frozen=True)
class MutationConfig:
    """The ``[mutation]`` settings: operator weights, program length, primitives, literals."""
    insert: float = 1.0
    delete: float = 1.0
    modify_argument: float = 1.0
    change_function: float = 1.0
    max_statements: int = 30
    primitives: tuple[str, ...] = ()        # empty: every registered primitive
    constant_probability: float = 0.3       # a new scalar argument is a literal rather than a variable
    constants_only: bool = False            # only literals change (the paper's "AdamW with its
                                            # constants mutated" baseline)

    def weights(self) -> list[float]:
        """The weights of ``OPERATORS``, in order."""
        return [self.insert, self.delete, self.modify_argument, self.change_function]

    def allowed(self) -> list[str]:
        """The primitives insertions and function changes may use."""
        return sorted(self.primitives) if self.primitives else primitives.names()


def mutate(parent: Program, rng: random.Random, config: MutationConfig) -> tuple[Program, str]:
    """One random mutation of ``parent``; returns (child, a short description of the mutation)."""
    if config.constants_only:
        return _modify_constant(parent, rng)
    weights = config.weights()
    if len(parent.statements) >= config.max_statements:
        weights[0] = 0.0
    if len(parent.statements) <= 1:
        weights[1] = 0.0
    if not parent.statements:
        weights[2] = weights[3] = 0.0
    op = rng.choices(OPERATORS, weights=weights)[0]
    return globals()[f"_{op}"](parent, rng, config)


def _scope(prog: Program, index: int) -> dict[str, str]:
    """The variables (and their kinds) defined before statement ``index``."""
    try:
        return kinds(prog)[index]
    except Exception:  # noqa: BLE001 - an invalid parent still has inputs to draw from
        return {n: INPUT_KINDS.get(n, TENSOR) for n in prog.inputs}


def _random_constant(rng: random.Random) -> Const:
    return Const(round(rng.gauss(0.0, 1.0), 6))


def _random_arg(rng: random.Random, scope: dict[str, str], want: str, config: MutationConfig):
    tensors = [n for n, k in scope.items() if k == TENSOR]
    scalars = [n for n, k in scope.items() if k == SCALAR]
    if want == TENSOR:
        return Var(rng.choice(tensors))
    if want == SCALAR or rng.random() < config.constant_probability:
        if scalars and rng.random() < 0.5:
            return Var(rng.choice(scalars))
        return _random_constant(rng)
    return Var(rng.choice(tensors + scalars))


def _insert(prog: Program, rng: random.Random, config: MutationConfig) -> tuple[Program, str]:
    index = rng.randint(0, len(prog.statements))
    scope = _scope(prog, index)
    prim = primitives.get(rng.choice(config.allowed()))
    args = tuple(_random_arg(rng, scope, k, config) for k in prim.arg_kinds)
    # The target is either a variable that already exists (so that the new value can reach an
    # output at once) or a fresh one.
    existing = [n for n in scope if n not in SPECIAL_INPUTS or n == "lr"]
    existing += [s.target for s in prog.statements]
    if existing and rng.random() < 0.7:
        target = rng.choice(sorted(set(existing)))
    else:
        taken = set(scope) | {s.target for s in prog.statements}
        k = len(taken)
        while f"v{k}" in taken:
            k += 1
        target = f"v{k}"
    stmt = Statement(target, prim.name, args)
    statements = prog.statements[:index] + (stmt,) + prog.statements[index:]
    return _replace(prog, statements), f"insert {stmt} at {index}"


def _delete(prog: Program, rng: random.Random, config: MutationConfig) -> tuple[Program, str]:
    index = rng.randrange(len(prog.statements))
    gone = prog.statements[index]
    return _replace(prog, prog.statements[:index] + prog.statements[index + 1:]), f"delete {gone}"


def _modify_argument(prog: Program, rng: random.Random, config: MutationConfig) -> tuple[Program, str]:
    index = rng.randrange(len(prog.statements))
    stmt = prog.statements[index]
    pos = rng.randrange(len(stmt.args))
    old = stmt.args[pos]
    if isinstance(old, Const) and not old.name:
        if rng.random() < 0.5:
            new = _random_constant(rng)
        else:
            new = Const(round(old.value * 2.0 ** rng.gauss(0.0, 1.0), 6))
    else:
        scope = _scope(prog, index)
        want = stmt.primitive.arg_kinds[pos]
        new = _random_arg(rng, scope, want, config)
    args = stmt.args[:pos] + (new,) + stmt.args[pos + 1:]
    new_stmt = Statement(stmt.target, stmt.op, args)
    statements = prog.statements[:index] + (new_stmt,) + prog.statements[index + 1:]
    return _replace(prog, statements), f"modify argument {pos + 1} of `{stmt}`: {old} -> {new}"


def _modify_constant(prog: Program, rng: random.Random) -> tuple[Program, str]:
    slots = [(i, p) for i, s in enumerate(prog.statements) for p, a in enumerate(s.args)
             if isinstance(a, Const) and not a.name]
    if not slots:
        return prog, "no literal to modify"
    i, pos = rng.choice(slots)
    stmt = prog.statements[i]
    old = stmt.args[pos]
    new = _random_constant(rng) if rng.random() < 0.5 else Const(round(old.value * 2.0 ** rng.gauss(0.0, 1.0), 6))
    new_stmt = Statement(stmt.target, stmt.op, stmt.args[:pos] + (new,) + stmt.args[pos + 1:])
    return (_replace(prog, prog.statements[:i] + (new_stmt,) + prog.statements[i + 1:]),
            f"modify constant {pos + 1} of `{stmt}`: {old} -> {new}")


def _change_function(prog: Program, rng: random.Random, config: MutationConfig) -> tuple[Program, str]:
    index = rng.randrange(len(prog.statements))
    stmt = prog.statements[index]
    same_arity = [n for n in config.allowed() if primitives.get(n).arity == len(stmt.args) and n != stmt.op]
    if not same_arity:
        return _insert(prog, rng, config)
    new_op = rng.choice(same_arity)
    new_stmt = Statement(stmt.target, new_op, stmt.args)
    statements = prog.statements[:index] + (new_stmt,) + prog.statements[index + 1:]
    return _replace(prog, statements), f"change function of `{stmt}` to {new_op}"


def _replace(prog: Program, statements) -> Program:
    return Program(prog.inputs, tuple(statements), prog.outputs, prog.name)
