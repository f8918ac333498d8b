"""Mutation operators (Chen et al. 2023, Sec. 2.2, after AutoML-Zero): insert a random statement,
delete a statement, modify an argument (another variable, or a constant resampled from N(0, 1) or
scaled by 2**N(0, 1)), and change a statement's function to another of the same arity.

Two operators from symbolic-regression practice, off by default (``[mutation]`` keys):

- ``wrap`` (PySR's insert-node mutation, Cranmer 2023, arXiv 2305.01582): pick a statement
  ``x = ...`` and insert ``x = f(x, ...)`` right after it, ``f`` a random allowed primitive whose
  first argument takes ``x`` and whose result can be of ``x``'s kind (a tensor stays a tensor); its
  other arguments are drawn as an insertion draws them. Every later read of ``x`` sees ``f`` of it:
  one mutation puts a function around a value in use, which a random insertion does only when its
  position, target and first argument all happen to line up.
- ``effective`` (Brameier and Banzhaf 2001, "A comparison of linear genetic programming and neural
  networks", effective mutations): delete, modify_argument, change_function and the wraps pick
  only statements that are live (``lang/liveness.py``: their value reaches the update, at this step
  or a later one); insert draws again (up to ``EFFECTIVE_TRIES`` times) until the statement it
  inserts is live. Mutations of dead code change nothing the search can measure: they come back as
  cache hits. Since no mutation then touches dead code, a deletion also removes the statements
  that are dead in the child (code that a live mutation left dead), so that it cannot pile up to
  ``max_statements``.

Neither operator names a primitive: what ``f`` is and which statement is picked are uniform over
what the settings allow. With ``wrap = 0`` and ``effective = false`` (the defaults) a seed gives
the same children as before they existed.

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
from evosearch.lang.liveness import live_statements, live_states
from evosearch.lang.program import Program
from primitives import SCALAR, TENSOR

OPERATORS = ("insert", "delete", "modify_argument", "change_function", "wrap", "wrap_read")
EFFECTIVE_TRIES = 20      # insertions drawn before one whose statement is dead is kept anyway


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
    wrap: float = 0.0                       # insert `x = f(x, ...)` right after a statement (PySR's insert-node)
    wrap_read: float = 0.0                  # put f(x, ...) around one read of x (ditto, on one edge)
    effective: bool = False                 # mutate only live statements (Brameier and Banzhaf)

    def weights(self) -> list[float]:
        """The weights of ``OPERATORS``, in order."""
        return [self.insert, self.delete, self.modify_argument, self.change_function, self.wrap, self.wrap_read]

    def allowed(self) -> list[str]:
        """The primitives insertions and function changes may use."""
        return sorted(self.primitives) if self.primitives else primitives.names()


def mutate(parent: Program, rng: random.Random, config: MutationConfig) -> tuple[Program, str]:
    """One random mutation of ``parent``; returns (child, a short description of the mutation)."""
    if config.constants_only:
        return _modify_constant(parent, rng)
    weights = config.weights()
    if len(parent.statements) >= config.max_statements:
        weights[0] = weights[4] = weights[5] = 0.0
    if len(parent.statements) <= 1:
        weights[1] = 0.0
    if not _pickable(parent, config):
        weights[1] = weights[2] = weights[3] = weights[4] = 0.0
    if sum(weights) <= 0:         # e.g. only insertions allowed, at max_statements
        return parent, "no mutation allowed"
    op = rng.choices(OPERATORS, weights=weights)[0]
    # (zero weights at the end of the list draw exactly as the list without them: with both wraps
    # at 0 a seed gives the mutations it gave before they existed)
    return globals()[f"_{op}"](parent, rng, config)


def _pickable(prog: Program, config: MutationConfig) -> tuple[int, ...]:
    """The statements delete, modify_argument, change_function and wrap may pick: all, or with
    ``effective`` the live ones (all, when none is live or the dataflow cannot be read)."""
    every = tuple(range(len(prog.statements)))
    if not config.effective:
        return every
    try:
        return live_statements(prog) or every
    except KeyError:          # a variable read before it is defined: a parent mid-way through a walk
        return every


def _pick(prog: Program, rng: random.Random, config: MutationConfig) -> int:
    if not config.effective:
        return rng.randrange(len(prog.statements))
    return rng.choice(_pickable(prog, config))


def _scope(prog: Program, index: int) -> dict[str, str]:
    """The variables (and their kinds) defined before statement ``index``."""
    try:
        return kinds(prog)[index]
    except Exception:  # noqa: BLE001 - an invalid parent still has inputs to draw from
        return {n: INPUT_KINDS.get(n, TENSOR) for n in prog.inputs}


def _random_constant(rng: random.Random) -> Const:
    return _literal(rng.gauss(0.0, 1.0))


def _scaled_constant(old: Const, rng: random.Random) -> Const:
    return _literal(old.value * 2.0 ** rng.gauss(0.0, 1.0))


def _literal(value: float) -> Const:
    """``value`` to 6 decimals, -0.0 made 0.0 (as the parser's ``const`` does): ``Const(-0.0)`` equals
    ``Const(0.0)`` but prints as ``-0.0``, so a program holding it would hash by whichever of the
    two the analyses' caches saw first, and would not print back as itself after a parse."""
    return Const(round(value, 6) + 0.0)


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
    if not config.effective:
        return _insert_once(prog, rng, config)
    for _ in range(EFFECTIVE_TRIES):
        child, what = _insert_once(prog, rng, config)
        index = int(what.rsplit(" ", 1)[1])
        try:
            if index in live_statements(child):
                break
        except KeyError:
            break
    return child, what


def _insert_once(prog: Program, rng: random.Random, config: MutationConfig) -> tuple[Program, str]:
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
    index = _pick(prog, rng, config)
    gone = prog.statements[index]
    child = _replace(prog, prog.statements[:index] + prog.statements[index + 1:])
    if config.effective:
        # Dead code goes with it: no effective mutation touches a dead statement, so nothing else
        # would ever remove one, and it would fill max_statements (what the child computes is the
        # same with or without it).
        try:
            live = set(live_statements(child))
        except KeyError:      # the deletion left a read of nothing: the caller rejects the child
            return child, f"delete {gone}"
        dead = len(child.statements) - len(live)
        if dead:
            child = _replace(child, tuple(s for i, s in enumerate(child.statements) if i in live))
            return child, f"delete {gone} (and {dead} dead statement{'s' if dead > 1 else ''})"
    return child, f"delete {gone}"


def _modify_argument(prog: Program, rng: random.Random, config: MutationConfig) -> tuple[Program, str]:
    index = _pick(prog, rng, config)
    stmt = prog.statements[index]
    pos = rng.randrange(len(stmt.args))
    old = stmt.args[pos]
    if isinstance(old, Const) and not old.name:
        if rng.random() < 0.5:
            new = _random_constant(rng)
        else:
            new = _scaled_constant(old, rng)
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
    new = _random_constant(rng) if rng.random() < 0.5 else _scaled_constant(old, rng)
    new_stmt = Statement(stmt.target, stmt.op, stmt.args[:pos] + (new,) + stmt.args[pos + 1:])
    return (_replace(prog, prog.statements[:i] + (new_stmt,) + prog.statements[i + 1:]),
            f"modify constant {pos + 1} of `{stmt}`: {old} -> {new}")


def _change_function(prog: Program, rng: random.Random, config: MutationConfig) -> tuple[Program, str]:
    index = _pick(prog, rng, config)
    stmt = prog.statements[index]
    same_arity = [n for n in config.allowed() if primitives.get(n).arity == len(stmt.args) and n != stmt.op]
    if not same_arity:     # (interp is the only primitive of three arguments)
        if len(prog.statements) < config.max_statements:
            return _insert(prog, rng, config)
        return _modify_argument(prog, rng, config)     # an insertion would pass max_statements
    new_op = rng.choice(same_arity)
    new_stmt = Statement(stmt.target, new_op, stmt.args)
    statements = prog.statements[:index] + (new_stmt,) + prog.statements[index + 1:]
    return _replace(prog, statements), f"change function of `{stmt}` to {new_op}"


def _wrap(prog: Program, rng: random.Random, config: MutationConfig) -> tuple[Program, str]:
    index = _pick(prog, rng, config)
    stmt = prog.statements[index]
    scope = _scope(prog, index + 1)
    kind = scope.get(stmt.target, TENSOR)
    fits = [n for n in config.allowed() if _takes(primitives.get(n), kind)]
    if not fits:
        return _insert(prog, rng, config)
    prim = primitives.get(rng.choice(fits))
    args = (Var(stmt.target),) + tuple(_random_arg(rng, scope, k, config) for k in prim.arg_kinds[1:])
    new_stmt = Statement(stmt.target, prim.name, args)
    statements = prog.statements[:index + 1] + (new_stmt,) + prog.statements[index + 1:]
    return _replace(prog, statements), f"wrap `{stmt}`: {new_stmt} at {index + 1}"


def _wrap_read(prog: Program, rng: random.Random, config: MutationConfig) -> tuple[Program, str]:
    n = len(prog.statements)
    index, pos = rng.choice(_reads(prog, config))
    name = prog.outputs[pos] if index == n else prog.statements[index].args[pos].name
    scope = _scope(prog, index)
    fits = [f for f in config.allowed() if _takes(primitives.get(f), scope.get(name, TENSOR))]
    if not fits:
        return _insert(prog, rng, config)
    prim = primitives.get(rng.choice(fits))
    args = (Var(name),) + tuple(_random_arg(rng, scope, k, config) for k in prim.arg_kinds[1:])
    new_stmt = Statement(_fresh(prog, scope), prim.name, args)
    statements = list(prog.statements)
    outputs = list(prog.outputs)
    if index == n:
        outputs[pos] = new_stmt.target
        where = f"output {pos + 1}"
    else:
        reader = statements[index]
        reader_args = reader.args[:pos] + (Var(new_stmt.target),) + reader.args[pos + 1:]
        statements[index] = Statement(reader.target, reader.op, reader_args)
        where = f"argument {pos + 1} of `{reader}`"
    statements.insert(index, new_stmt)
    child = Program(prog.inputs, tuple(statements), tuple(outputs), prog.name)
    return child, f"wrap {where}: {new_stmt} at {index}"


def _reads(prog: Program, config: MutationConfig) -> list[tuple[int, int]]:
    """Every read of a variable as (statement index, argument position); the return's outputs are
    (number of statements, output position). With ``effective``, the reads of live statements and
    of the outputs that reach the update."""
    n = len(prog.statements)
    outputs = range(len(prog.outputs))
    if config.effective:
        try:
            live = set(live_states(prog))
            outputs = [0] + [k + 1 for k, state in enumerate(prog.state_names) if state in live]
        except KeyError:
            pass
    return ([(i, p) for i in _pickable(prog, config) for p, a in enumerate(prog.statements[i].args)
             if isinstance(a, Var)] + [(n, k) for k in outputs])


def _fresh(prog: Program, scope) -> str:
    """A variable name the program does not use."""
    taken = set(scope) | set(prog.inputs) | {s.target for s in prog.statements}
    k = len(taken)
    while f"v{k}" in taken:
        k += 1
    return f"v{k}"


def _takes(prim: primitives.Primitive, kind: str) -> bool:
    """Whether ``prim`` takes a value of ``kind`` first and can give back one of that kind (a
    reduction to a number does not wrap a tensor)."""
    if not prim.arg_kinds or (prim.arg_kinds[0] == TENSOR and kind != TENSOR):
        return False
    return not (kind == TENSOR and prim.result_kind == SCALAR)


def _replace(prog: Program, statements) -> Program:
    return Program(prog.inputs, tuple(statements), prog.outputs, prog.name)
