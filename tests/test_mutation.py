"""The mutation operators (``evosearch/search/mutation.py``): the paper's four keep drawing exactly
the children they drew before ``wrap``, ``wrap_read`` and ``effective`` existed; the new operators
make valid children of the shape they promise, stay within ``max_statements``, and touch only live
statements when ``effective`` is on."""

from __future__ import annotations

import hashlib
import random

import pytest
from programs import checked_walk

from evosearch import Program, reference
from evosearch.lang.errors import ProgramError
from evosearch.lang.kinds import check
from evosearch.lang.liveness import live_statements
from evosearch.search.config import parse_config
from evosearch.search.evolution import EvolutionConfig, RegularizedEvolution
from evosearch.search.mutation import MutationConfig, mutate

ONLY_WRAP = dict(insert=0.0, delete=0.0, modify_argument=0.0, change_function=0.0)


def digest(name: str, seed: int, n: int, config: MutationConfig = MutationConfig()) -> str:
    """A hash of ``n`` mutations of a reference program (description and child) for a seed."""
    rng, parent, h = random.Random(seed), reference.load(name), hashlib.sha256()
    for _ in range(n):
        child, what = mutate(parent, rng, config)
        h.update((what + "\n" + str(child) + "\n").encode())
    return h.hexdigest()[:16]


# Recorded with the code before wrap, wrap_read and effective were added (commit 1eb450c).
@pytest.mark.parametrize("name, seed, n, config, expected", [
    ("adamw", 0, 3000, MutationConfig(), "87eb006ebc71d098"),
    ("lion", 0, 3000, MutationConfig(), "9cf24762d79ebd20"),
    ("signum", 0, 3000, MutationConfig(), "f3f1129b5b083fcb"),
    ("sgd", 0, 3000, MutationConfig(), "09fbf191b61173b5"),
    ("adamw", 1, 500, MutationConfig(constants_only=True), "dab4f7b21a301069"),
    ("adamw", 2, 1000, MutationConfig(max_statements=10, primitives=("sign", "interp", "multiply")),
     "9d218e4afff2b035"),
])
def test_the_default_operators_draw_what_they_drew_before(name, seed, n, config, expected):
    assert digest(name, seed, n, config) == expected


def test_a_seeded_search_asks_for_the_children_it_asked_for_before():
    evo = RegularizedEvolution(reference.load("adamw"), EvolutionConfig(population_size=20, tournament_size=5),
                               seed=3)
    h = hashlib.sha256()
    for c in evo.ask(1):
        evo.tell(c.id, 0.5)
    for _ in range(30):
        for c in evo.ask(4):
            h.update((c.mutation + str(c.program)).encode())
            evo.tell(c.id, int(c.canonical_hash[:6], 16) / 16 ** 6)
    assert h.hexdigest()[:16] == "e56271d13e785e98"
    assert (evo.counters.generated, evo.counters.rejected, evo.counters.cache_hits) == (645, 170, 344)


def test_wrap_puts_a_function_around_a_value_right_after_it_is_computed():
    parent = reference.load("adamw")
    rng = random.Random(0)
    config = MutationConfig(wrap=1.0, **ONLY_WRAP)
    for _ in range(300):
        child, what = mutate(parent, rng, config)
        check(child)                              # kind-preserving: every wrap of AdamW is valid
        assert what.startswith("wrap `")
        index = int(what.rsplit(" ", 1)[1])
        new, before = child.statements[index], child.statements[index - 1]
        assert child.statements[:index] + child.statements[index + 1:] == parent.statements
        assert new.target == before.target and new.args[0].name == before.target


def test_wrap_read_changes_one_read_only():
    parent = reference.load("signum")          # m is read twice: by sign and by the return
    rng = random.Random(0)
    config = MutationConfig(wrap_read=1.0, **ONLY_WRAP)
    seen_output = seen_argument = False
    for _ in range(300):
        child, what = mutate(parent, rng, config)
        check(child)
        index = int(what.rsplit(" ", 1)[1])
        new = child.statements[index]
        assert new.target not in {s.target for s in parent.statements} | set(parent.inputs)
        rest = child.statements[:index] + child.statements[index + 1:]
        changed = [(a, b) for a, b in zip(rest, parent.statements) if a != b]
        changed_outputs = [(a, b) for a, b in zip(child.outputs, parent.outputs) if a != b]
        assert len(changed) + len(changed_outputs) == 1
        if changed_outputs:
            seen_output = True
            assert changed_outputs[0] == (new.target, new.args[0].name)
        else:
            seen_argument = True
            (a, b), = changed
            diff = [(x, y) for x, y in zip(a.args, b.args) if x != y]
            assert len(diff) == 1 and diff[0][0].name == new.target and diff[0][1] == new.args[0]
    assert seen_output and seen_argument


@pytest.mark.parametrize("name", ["adamw", "lion", "adam"])
def test_the_new_operators_make_valid_children_and_respect_max_statements(name):
    parent = reference.load(name)
    for config in (MutationConfig(wrap=1.0, wrap_read=1.0, effective=True, **ONLY_WRAP),
                   MutationConfig(wrap=1.0, wrap_read=1.0, insert=1.0, delete=0.0, modify_argument=0.0,
                                  change_function=0.0, effective=True)):
        rng = random.Random(1)
        longest = len(parent.statements) + 3
        config = MutationConfig(**{**config.__dict__, "max_statements": longest})
        prog, valid = parent, 0
        for _ in range(400):
            child, _ = mutate(prog, rng, config)
            assert len(child.statements) <= longest
            try:
                check(child)
            except ProgramError:
                continue
            valid += 1
            prog = child
        assert valid > 200 and len(prog.statements) == longest


def test_changing_the_function_of_interp_at_max_statements_stays_within_it():
    """interp is the only primitive of three arguments: a function change picks another statement's
    argument instead of inserting one past ``max_statements`` (a search once grew programs to 36)."""
    parent = Program.parse("def train(w, g, lr):\n    m = interp(g, w, 0.9)\n    u = interp(m, g, 0.5)\n"
                           "    u = u * lr\n    return u\n")
    only = MutationConfig(insert=0.0, delete=0.0, modify_argument=0.0, change_function=1.0, max_statements=3)
    below = MutationConfig(**{**only.__dict__, "max_statements": 4})
    rng = random.Random(0)
    children = [mutate(parent, rng, only)[0] for _ in range(200)]
    assert max(len(c.statements) for c in children) == 3
    assert any(c != parent for c in children)
    rng = random.Random(0)
    assert max(len(mutate(parent, rng, below)[0].statements) for _ in range(200)) == 4   # below it: insert


def test_effective_mutations_touch_only_live_statements():
    parent = Program.parse("""def train(w, g, m, lr):
    dead = exp(g)
    m = interp(g, m, 0.9)
    unused = m * 3.0
    update = sign(m)
    update = update * lr
    return update, m
""")
    live = live_statements(parent)
    assert live == (1, 3, 4)
    rng = random.Random(0)
    config = MutationConfig(wrap=1.0, wrap_read=1.0, effective=True)
    for _ in range(500):
        child, what = mutate(parent, rng, config)
        op = what.split(" ", 1)[0]
        if op == "insert":                         # measured below
            continue
        if op == "delete":                         # a live statement, and the dead code with it
            gone = [i for i in live if parent.statements[i] not in child.statements]
            assert len(gone) == 1
            try:
                check(child)
            except ProgramError:                   # (a read of nothing: rejected, left as it is)
                continue
            assert "dead" not in str(child) and "unused" not in str(child)
        elif op in ("modify", "change"):
            changed = [i for i, (a, b) in enumerate(zip(child.statements, parent.statements)) if a != b]
            assert len(changed) <= 1 and set(changed) <= set(live)
        elif what.startswith("wrap `"):
            index = int(what.rsplit(" ", 1)[1])
            assert index - 1 in live
        else:                                      # wrap of a read
            assert "dead" not in what.split(":")[0] and "unused" not in what.split(":")[0]
    # insertions are drawn again until live (or 20 tries): nearly every one reaches the update
    inserted_live = total = 0
    for _ in range(300):
        child, what = mutate(parent, rng, MutationConfig(effective=True, delete=0.0, modify_argument=0.0,
                                                         change_function=0.0))
        index = int(what.rsplit(" ", 1)[1])
        total += 1
        inserted_live += index in live_statements(child)
    assert inserted_live / total > 0.95


def test_the_mutation_keys_are_config_keys():
    cfg = parse_config({"mutation": {"wrap": 0.2, "wrap_read": 0.5, "effective": True},
                        "tasks": {"names": ["quadratic"]}})
    assert (cfg.mutation.wrap, cfg.mutation.wrap_read, cfg.mutation.effective) == (0.2, 0.5, True)
    assert cfg.evolution().mutation == cfg.mutation
    assert MutationConfig().wrap == MutationConfig().wrap_read == 0.0 and MutationConfig().effective is False


def test_effective_deletions_keep_dead_code_from_piling_up():
    """A search's programs collect dead code (a live insertion overwrites a value, a modified
    argument stops reading one); with effective mutations nothing but a deletion may remove it, and
    each one does. On a walk of valid children (no selection) effective mutations carry less
    dead code than the plain ones, which delete dead statements only by chance."""
    def walk(effective: bool) -> float:
        rng = random.Random(3)
        # (change_function is off, as when this walk was first measured: a function change on
        # interp then inserted past max_statements)
        config = MutationConfig(effective=effective, wrap=0.5, wrap_read=1.0, change_function=0.0,
                                max_statements=20)
        dead = []
        for prog, what in checked_walk(reference.load("adamw"), rng, config, 2000):
            assert len(prog.statements) <= 20
            dead.append(len(prog.statements) - len(live_statements(prog)))
            if effective and what.startswith("delete"):
                assert dead[-1] == 0
        return sum(dead) / len(dead)
    assert walk(True) < 0.75 * walk(False)


@pytest.mark.parametrize("config", [MutationConfig(insert=0.0, delete=0.0, change_function=0.0),
                                    MutationConfig(constants_only=True)], ids=["modify_argument", "constants_only"])
def test_new_literals_are_never_negative_zero_and_children_print_back_as_themselves(config):
    """A literal scaled or drawn near zero rounds to 0.0, never to -0.0: Const(-0.0) equals Const(0.0)
    but prints differently, so the cached analyses (canonical hash) would depend on which they saw
    first, and the child would not print back as itself after a parse."""
    tiny = Program.parse("def train(w, g, lr):\n    a = g * -0.0000004\n    b = a * -0.0000003\n"
                         "    u = b * lr\n    return u\n")
    rng, zeros = random.Random(0), 0
    for _ in range(400):
        child, _ = mutate(tiny, rng, config)
        literals = [a.value for s in child.statements for a in s.args if hasattr(a, "value") and not a.name]
        assert all(str(v) != "-0.0" for v in literals), str(child)
        zeros += sum(v == 0.0 for v in literals)
        try:
            check(child)
        except ProgramError:
            continue                   # e.g. a variable replaced by a literal where a tensor is needed
        assert str(Program.parse(str(child))) == str(child)
    assert zeros > 20          # the near-zero cases were drawn
