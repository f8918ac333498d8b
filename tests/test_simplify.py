"""Simplification (``evosearch.symbolic.exact``, checked by ``symbolic.verify``), ablation
(``symbolic.ablate``), and ``evosearch simplify``.

Every exact rewrite is re-checked here independently of ``simplify``'s own check: the original and
the simplified program are run on random noisy quadratics with seeds that ``simplify`` does not use,
and their update trajectories compared (modulo the division guard, and also with it). Family matching
is tested in test_match.py; the programs both use are in programs.py.
"""

from __future__ import annotations

import importlib
import random

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evosearch import Program, reference
from evosearch.symbolic.ablate import ablate
from evosearch.lang.kinds import check
from evosearch.cli import main
from evosearch.symbolic.match import match
from evosearch.search.mutation import MutationConfig, mutate
from evosearch.lang.ir import Const, Statement, Var
from evosearch.symbolic.exact import RTOL, simplify, simplify_steps
from evosearch.symbolic.verify import max_relative_difference, trajectory
from programs import LION_SPLIT, OBFUSCATED, P, RAW_LION, SEEDS


def guarded_difference(p: Program, q: Program, seeds=SEEDS) -> float:
    """max_relative_difference with the primitives' guards on (the division's 1e-8)."""
    worst = 0.0
    for seed in seeds:
        a, b = trajectory(p, seed, guards=True), trajectory(q, seed, guards=True)
        num = np.linalg.norm(a - b, axis=1)
        den = np.maximum(np.linalg.norm(a, axis=1), 1e-12)
        worst = max(worst, float(np.max(num / den)))
    return worst


def ops(prog: Program) -> list[str]:
    return [s.op for s in prog.statements]


def constants(prog: Program) -> list[float]:
    return [a.value for s in prog.statements for a in s.args if isinstance(a, Const)]


# -- every rewrite is exact ----------------------------------------------------------------------

@pytest.mark.parametrize("name", reference.names())
def test_reference_programs_simplify_to_the_same_function(name):
    prog = reference.load(name)
    small = simplify(prog)
    check(small)
    assert len(small.statements) <= len(prog.statements)
    assert max_relative_difference(prog, small, seeds=SEEDS) <= RTOL
    assert guarded_difference(prog, small) <= 1e-4
    assert P(str(small)) == small


@pytest.mark.parametrize("name", sorted(OBFUSCATED))
def test_obfuscated_programs_simplify_to_the_same_function(name):
    prog = OBFUSCATED[name]
    small = simplify(prog)
    check(small)
    assert len(small.statements) <= len(prog.statements)
    assert max_relative_difference(prog, small, seeds=SEEDS) <= RTOL
    assert guarded_difference(prog, small) <= 1e-4
    # simplification is idempotent up to length
    assert len(simplify(small).statements) <= len(small.statements)


# -- specific rewrites ---------------------------------------------------------------------------

def _exact(prog: Program) -> Program:
    small = simplify(prog)
    check(small)
    assert max_relative_difference(prog, small, seeds=SEEDS) <= RTOL
    return small


@pytest.mark.parametrize("magnitude", ["sq = m * m\n    r = sqrt(sq)", "r = abs(m)"])
def test_ratio_to_magnitude_becomes_sign(magnitude):
    prog = P(f"""
def train(w, g, m, lr):
    m = interp(g, m, 0.9)
    {magnitude}
    d = m / r
    update = d * lr
    return update, m
""")
    small = _exact(prog)
    assert "sign" in ops(small)
    assert not {"divide", "sqrt", "abs", "reciprocal"} & set(ops(small))


def test_sign_of_a_positive_multiple_drops_the_multiple():
    small = _exact(P("""
def train(w, g, lr):
    h = g * 2.0
    s = sign(h)
    update = s * lr
    return update
"""))
    (sign_stmt,) = [s for s in small.statements if s.op == "sign"]
    assert sign_stmt.args == (Var("g"),)
    assert len(small.statements) == 2


def test_sign_of_a_negative_multiple_keeps_the_minus():
    prog = P("""
def train(w, g, lr):
    h = g * -3.0
    s = sign(h)
    update = s * lr
    return update
""")
    small = _exact(prog)
    (sign_stmt,) = [s for s in small.statements if s.op == "sign"]
    assert sign_stmt.args == (Var("g"),)
    assert -3.0 not in constants(small)


def test_constants_are_folded():
    small = _exact(P("""
def train(w, g, lr):
    a = 2.0 * 3.0
    b = a * 0.5
    c = b + 1.0
    u = g * c
    lr = lr * 0.25
    update = u * lr
    return update
"""))
    # g * lr * 4 * 0.25 == g * lr
    assert len(small.statements) == 1
    assert all(abs(v - 1.0) < 1e-12 for v in constants(small))


def test_constant_chain_collapses_to_one_literal():
    small = _exact(P("""
def train(w, g, lr):
    a = 2.0 * 3.0
    b = a - 0.5
    u = g * b
    update = u * lr
    return update
"""))
    assert len(small.statements) == 2
    assert constants(small) == [pytest.approx(5.5)]


def test_like_terms_are_collected():
    small = _exact(P("""
def train(w, g, lr):
    u = g + g
    update = u * lr
    return update
"""))
    assert "add" not in ops(small)
    assert ops(small).count("multiply") == 2
    assert constants(small) == [pytest.approx(2.0)]


def test_like_terms_across_statements_cancel():
    small = _exact(P("""
def train(w, g, m, lr):
    m = interp(g, m, 0.9)
    a = m * 3.0
    b = m + m
    c = a - b
    update = c * lr
    return update, m
"""))
    assert len(small.statements) == 2


def test_split_interpolation_merges_into_one_moving_average():
    result = simplify_steps(RAW_LION)
    small = result.program
    assert max_relative_difference(RAW_LION, small, seeds=SEEDS) <= RTOL
    (new_v,) = [s for s in small.statements if s.target == small.outputs[1]]
    assert new_v.op == "interp" and new_v.args[1] == Var("v")
    assert new_v.args[2].value == pytest.approx(0.899 * 1.109, abs=1e-9)   # 0.996991
    # only two interpolations left: the sign's argument and the state's one moving average
    assert ops(small).count("interp") == 2


def test_raw_lion_simplifies_to_nine_statements():
    result = simplify_steps(RAW_LION)
    small = result.program
    check(small)
    assert len(small.statements) == 9
    assert small.inputs == ("w", "g", "v", "lr")
    assert small.state_names == ("v",)
    assert "cosh" not in ops(small) and "sqrt" not in ops(small) and "divide" not in ops(small)
    assert {"clip", "arcsin", "sign", "interp"} <= set(ops(small))
    # clip(g, lr) shrinks the momentum to ~lr*|g|, where the 1e-8 guard of m / sqrt(m*m) is ~1e-4
    # relative; sign(m) has no guard
    assert guarded_difference(RAW_LION, small) <= 1e-3


def test_steps_describe_what_happened():
    result = simplify_steps(RAW_LION)
    text = "\n".join(result.steps)
    assert len(result.steps) == 3
    assert "dead statement" in result.steps[0] and "cosh" in result.steps[0]
    assert "dead state" in result.steps[1] and "'m'" in result.steps[1]
    assert "rewrote" in result.steps[2] and "11 -> 9" in result.steps[2]
    assert "sign" in text and "0.996991" in text
    assert set(result.expressions) == {"update", "v"}


def test_state_overwritten_before_it_is_read_is_dropped():
    prog = P("""
def train(w, g, m, k, lr):
    k = g * 0.5
    m = interp(k, m, 0.9)
    s = sign(m)
    update = s * lr
    return update, m, k
""")
    result = simplify_steps(prog)
    assert result.program.inputs == ("w", "g", "m", "lr")
    assert result.program.state_names == ("m",)
    assert any("dead state" in s and "'k'" in s for s in result.steps)
    assert max_relative_difference(prog, result.program, seeds=SEEDS) <= RTOL


def test_a_wrong_rewrite_is_rejected(monkeypatch):
    """simplify's own trajectory check must be able to fail: a rewrite that is 0.1% off is refused."""
    simplify_module = importlib.import_module("evosearch.symbolic.exact")
    monkeypatch.setattr(simplify_module, "simplify_expression",
                        lambda expr, symbols: sp.expand(expr) * sp.Float(1.001))
    result = simplify_module.simplify_steps(LION_SPLIT)
    assert any("rejected" in s for s in result.steps)
    assert max_relative_difference(LION_SPLIT, result.program, seeds=SEEDS) <= RTOL


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_verification_does_not_ignore_overflowing_differences():
    p = P("""
def train(w, g, lr):
    update = g * 1e200
    return update
""")
    q = P("""
def train(w, g, lr):
    update = g * 3e200
    return update
""")
    assert max_relative_difference(p, q) > RTOL


def test_a_program_that_is_already_short_is_kept():
    lion = reference.load("lion")
    result = simplify_steps(lion)
    assert len(result.program.statements) == len(lion.statements)
    assert result.steps   # says what it did (or why it kept the program)


@pytest.mark.parametrize("reduction", ["clip_by_global_norm(t, 0.5)", "clip_by_global_norm(g, t)"])
def test_a_reduction_used_twice_simplifies_and_matches(reduction):
    # each use once built its own sympy function of the same name, which lambdify (in the check and
    # in match) refused: "more than one implementation with name ..." (a 1-hour search's hall of fame)
    prog = P(f"""
def train(w, g, m, lr):
    t = clip_by_global_norm(g, lr)
    u = {reduction}
    m = interp(u, m, 0.9)
    d = sign(m)
    update = d * lr
    return update, m
""")
    small = simplify(prog)
    assert max_relative_difference(prog, small, seeds=SEEDS) <= RTOL
    result = match(small, "lion")     # the scale of u varies with |g|: no constant fits it
    assert not result.matched and result.reason


# -- the paper's raw Lion, ablated -----------------------------------------------------------------

@pytest.fixture
def quadratic_fitness(evosearch_cache):
    import tasks
    task = tasks.get("quadratic")
    # lr=20: the raw program's own scale (0.0002) then takes steps the quadratic responds to;
    # at lr=1 the momentum barely matters and any tolerance that admits the arcsin ablation
    # also admits deleting the momentum update.
    return lambda p: task.evaluate(p, seed=0, lr=20.0).fitness


def test_raw_lion_ablates_to_lion(quadratic_fitness):
    small = simplify(RAW_LION)
    result = ablate(small, quadratic_fitness, tolerance=0.01)
    assert "clip" not in ops(result.program) and "arcsin" not in ops(result.program)
    assert len(result.steps) == 2 and all("fitness" in s for s in result.steps)
    assert abs(result.fitness_after - result.fitness_before) <= 0.01
    r = match(result.program, "lion")
    assert r.matched, r.reason
    assert r.constants["beta1"] == pytest.approx(0.899, rel=1e-6)
    assert r.constants["beta2"] == pytest.approx(0.996991, rel=1e-6)
    assert r.constants["weight_decay"] == pytest.approx(0.4602, rel=1e-6)
    assert r.constants["lr_scale"] == pytest.approx(0.0002, rel=1e-6)


# -- command line ----------------------------------------------------------------------------------

@pytest.fixture
def raw_lion_file(tmp_path):
    path = tmp_path / "raw_lion.py"
    path.write_text(str(RAW_LION))
    return path


def test_cli_simplify_prints_program_steps_and_math(raw_lion_file, capsys):
    assert main(["simplify", str(raw_lion_file)]) == 0
    out = capsys.readouterr().out
    small = simplify(RAW_LION)
    assert str(small).strip() in out
    assert "dead statement" in out and "dead state" in out
    assert "update = " in out and "v <- " in out and "0.996991" in out
    assert "LaTeX" not in out


def test_cli_simplify_latex(raw_lion_file, capsys):
    assert main(["simplify", str(raw_lion_file), "--latex"]) == 0
    out = capsys.readouterr().out
    latex = [line for line in out.splitlines() if line.strip().startswith("LaTeX:")]
    assert len(latex) == 2                          # the update and the one live state
    assert "\\operatorname{sign}" in latex[0] and "0.4602 w" in latex[0]
    assert "0.996991 v" in latex[1]


def test_cli_simplify_ablate_is_reported_as_approximate(raw_lion_file, capsys, evosearch_cache):
    assert main(["simplify", str(raw_lion_file), "--ablate", "quadratic", "--tolerance", "0.01"]) == 0
    out = capsys.readouterr().out
    exact, _, approximate = out.partition("approximate simplification on quadratic")
    assert approximate, out
    assert "NOT the same function" in approximate and "fitness" in approximate
    assert "arcsin" in exact and "arcsin" not in approximate.split("def train")[1]


# -- property: simplify never breaks a program ------------------------------------------------------

@st.composite
def mutated_programs(draw):
    parent = reference.load(draw(st.sampled_from(reference.names())))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    config = MutationConfig(max_statements=16)
    prog = parent
    for _ in range(draw(st.integers(1, 6))):
        for _attempt in range(20):
            child, _ = mutate(prog, rng, config)
            try:
                check(child)
            except Exception:  # noqa: BLE001 - an invalid child is mutated again
                continue
            prog = child
            break
    return prog


def perturbed(prog: Program, rel: float = 1e-12) -> Program:
    """``prog`` with its update multiplied by 1 + rel: a rounding-sized change."""
    scaled = Statement("perturbed_update", "multiply", (Var(prog.outputs[0]), Const(1.0 + rel)))
    return Program(prog.inputs, prog.statements + (scaled,), ("perturbed_update",) + prog.outputs[1:], prog.name)


def well_conditioned(prog: Program) -> bool:
    """Finite, not all zero, and not chaotic: a rounding-sized change of the update stays small
    over the trajectory (w <- w - tanh(g)**2 / w amplifies rounding to 1e-3; any rewrite of it,
    even a*(b/w) -> a*b/w, differs that much on some seed)."""
    a = np.concatenate([trajectory(prog, seed) for seed in SEEDS])
    if not (np.all(np.abs(a) < 1e20) and np.any(a != 0)):
        return False
    return max_relative_difference(prog, perturbed(prog), seeds=SEEDS) <= 1e-9


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # overflow in programs that blow up
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_programs())
def test_simplify_preserves_mutated_programs(prog):
    result = simplify_steps(prog)
    small = result.program
    check(small)
    assert len(small.statements) <= len(prog.statements)
    assert all(isinstance(s, str) and s for s in result.steps)
    if well_conditioned(prog):
        assert max_relative_difference(prog, small, seeds=SEEDS) <= RTOL


def test_chaotic_programs_are_told_apart():
    chaotic = P("""
def train(w, g, lr):
    update = tanh(g)
    lr = update / w
    update = update * lr
    return update
""")
    assert not well_conditioned(chaotic)
    assert well_conditioned(reference.load("lion")) and well_conditioned(reference.load("adamw"))


def test_a_value_constant_within_the_tolerance_is_folded_and_a_near_constant_factor_is_explained():
    warm = str(reference.load("adamw"))
    tiny = Program.parse(warm.replace("def train(w, g, m, v, lr):", "def train(w, g, m, v, lr, t):")
                         .replace("    update = update * lr\n", "    k = power(1.00000001, t)\n    update = update * k\n"
                                  "    update = update * lr\n"))
    result = simplify_steps(tiny)
    assert any(s.startswith("folded `k = power(1.00000001, t)`") for s in result.steps), result.steps
    assert "power" not in str(result.program) and len(result.program) == len(tiny) - 1
    assert max_relative_difference(tiny, result.program, seeds=SEEDS) <= RTOL
    # what a search found: a factor that reads as constant in training, where sqrt(v) is small
    near = Program.parse(warm.replace("    update = update * lr\n", "    k = power(0.50019, sqrt_v)\n"
                                      "    update = update * k\n    update = update * lr\n"))
    result = simplify_steps(near)
    assert any(s.startswith("kept `k = power(0.50019, sqrt_v)`: not a constant") for s in result.steps)
    assert "power(0.50019, sqrt_v)" in str(result.program)
