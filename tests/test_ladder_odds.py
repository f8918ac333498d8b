"""The ladder classifier (``experiments/ladder.py``) and the odds sampler (``experiments/odds.py``):
the classifier names the reference programs' rungs and sees through dead code and rewrites; the
sampler filters children exactly as ``RegularizedEvolution.ask`` does, is deterministic for a
seed, and runs end to end; and the search never imports either."""

from __future__ import annotations

import ast
import importlib
import random
import subprocess
import sys
from pathlib import Path

import pytest

from evosearch import Program, reference
from evosearch.search import evolution
from evosearch.search.evolution import EvolutionConfig, RegularizedEvolution
from evosearch.search.mutation import MutationConfig

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"


def script(name: str):
    sys.path.insert(0, str(EXPERIMENTS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(EXPERIMENTS))


ladder = script("ladder")
odds = script("odds")

SIGN_RUNG = odds.PARENTS["sign-rung"]


def variant(text: str, state: str = "m") -> Program:
    """A one-state program from its body."""
    body = "".join(f"    {line}\n" for line in text.strip().splitlines())
    return Program.parse(f"def train(w, g, {state}, lr):\n{body}")


@pytest.mark.parametrize("name, label, beta1, beta2, wd", [
    ("adamw", "adamw-like", None, None, None),
    ("adam", "adamw-like", None, None, None),
    ("adamw_torch", "adamw-like", None, None, None),
    ("rmsprop", "adamw-like", None, None, None),
    ("adagrad", "adamw-like", None, None, None),
    ("signum", "signum-family", 0.9, None, 0.0),
    ("signsgd", "signum-family", 0.0, None, 0.0),
    ("lion", "lion-family", 0.9, 0.99, 0.01),
    ("sgd", "other", None, None, None),
    ("sgd_momentum", "other", None, None, None),
    ("powersign", "other", None, None, None),
    ("addsign", "other", None, None, None),
])
def test_reference_programs(name, label, beta1, beta2, wd):
    r = ladder.classify(reference.load(name))
    assert r.label == label, r
    for got, want in ((r.beta1, beta1), (r.beta2, beta2), (r.weight_decay, wd)):
        assert (got is None) == (want is None) and (want is None or got == pytest.approx(want, abs=1e-6))


@pytest.mark.parametrize("prog, label, beta1, beta2, wd", [
    # the first rung: sign after AdamW's division (the second moment no longer matters)
    (Program.parse(SIGN_RUNG), "signum-family", 0.9, None, 0.01),
    # and a second average of the state after the update read it (the paper's raw Lion)
    (Program.parse(SIGN_RUNG.replace("    update = sign(update)\n",
                                     "    m = interp(g, m, 1.1)\n    update = sign(update)\n")),
     "lion-family", 0.9, 0.99, 0.01),
    # Lion rewritten: dead code, sums for interp, a cube and two negations around the sign, lr first
    (variant("""
junk = exp(g)
a = mom * 0.9
b = g * 0.1
c = a + b
d = cube(c)
s = sign(d)
s = -s
s = -s
mom = mom * 0.99
gg = g * 0.01
mom = gg + mom
junk = junk * lr
dec = w * lr
dec = dec * 0.5
s = s * lr
upd = s + dec
return upd, mom""", state="mom"), "lion-family", 0.9, 0.99, 0.5),
    # heavy-ball momentum has the same sign as an average
    (variant("m = m * 0.95\nm = m + g\nu = sign(m)\nu = u * 0.01\nu = u * lr\nreturn u, m"),
     "signum-family", 0.95, None, 0.0),
    # a search's Lion: a second moment that stays zero (its state starts at zero and only ever
    # feeds itself), so the division's guard makes (m + g) / ~0 saturate the clip: 0.677 sign(m + g)
    (Program.parse("""def train(w, g, m, v, lr):
    v11 = cbrt(v)
    v12 = sinh(w)
    v = cosine_sim(v11, v12)
    g2 = square(v11)
    m = interp(g, m, 0.9)
    v = interp(g2, v, 0.50493)
    v13 = cbrt(g2)
    sqrt_v = norm(v13)
    sqrt_v = min(v, sqrt_v)
    v10 = log1p(sqrt_v)
    v14 = m + g
    update = v14 / v10
    v9 = clip(update, 1.477943)
    v9 = reciprocal(v9)
    update = v9 + w
    update = update * lr
    return update, m, v
"""), "lion-family", 0.45, 0.9, 1.47794301),
    # Lion's shape with a shorter state average than the update's: lion-family, not Lion's order
    (variant("update = interp(g, m, 0.9)\nupdate = sign(update)\nm = interp(g, m, 0.5)\nupdate = update * lr\n"
             "return update, m"), "lion-family", 0.9, 0.5, 0.0),
])
def test_rewritten_programs(prog, label, beta1, beta2, wd):
    r = ladder.classify(prog)
    assert (r.label, r.beta1, r.beta2, r.weight_decay) == (
        label, pytest.approx(beta1, abs=1e-6), beta2 if beta2 is None else pytest.approx(beta2, abs=1e-6),
        pytest.approx(wd, abs=1e-8)), r
    assert r.lion_order == (label == "lion-family" and beta2 > beta1)


@pytest.mark.parametrize("body", [
    "m = interp(g, m, 0.9)\nx = w * 0.1\nx = m + x\nupdate = sign(x)\nupdate = update * lr\nreturn update, m",
    "m = interp(g, m, 0.9)\nupdate = sign(m)\nwd = square(w)\nupdate = update + wd\nupdate = update * lr\n"
    "return update, m",
    "m = interp(g, m, 0.9)\nupdate = sign(m)\na = sign(g)\nupdate = update * a\nupdate = update * lr\nreturn update, m",
    "m = interp(g, m, 0.9)\nupdate = sign(m)\na = abs(g)\nupdate = update * a\nupdate = update * lr\nreturn update, m",
    "m = interp(g, m, 0.9)\nupdate = sign(m)\nupdate = update * lr\nupdate = -update\nreturn update, m",
    "m = interp(g, m, 0.9)\nn = norm(m)\nupdate = m / n\nupdate = update * lr\nreturn update, m",
    "m = interp(g, m, 0.9)\nupdate = m / m\nupdate = update * lr\nreturn update, m",
    "m = interp(g, m, 0.9)\nupdate = sign(m)\nn = global_norm(g)\nn = clip(n, 100.0)\nupdate = update * n\n"
    "update = update * lr\nreturn update, m",
    "m = interp(g, m, 0.9)\nx = m * 100000.0\nx = clip(x, 1.0)\nupdate = x * lr\nreturn update, m",
    "m = interp(g, m, 0.9)\nupdate = sign(m)\nx = w * w\nx = x * 0.01\nupdate = update + x\nupdate = update * lr\n"
    "return update, m",
    "m = interp(g, m, 0.9)\nv = square(m)\nv = sqrt(v)\nupdate = m / v\nupdate = -update\nupdate = update * lr\n"
    "return update, m",
])
def test_look_alikes_are_other(body):
    """The weights inside the sign, a decay that is not linear, a product of two signs, a sign
    times a magnitude, ascent, a per-tensor normalisation, a constant step (invariant to the
    gradient's scale, but no descent), adaptive ascent, a sign step that grows with the gradient's
    norm, a clip that saturates at unit gradients only, and a decay quadratic in the weights."""
    assert ladder.classify(variant(body)).label == "other"


@pytest.mark.parametrize("tail, why", [("m = square(v)", "odd"), ("m = v * lr", "odd"), ("m = cube(sqrt_v)", "odd"),
                                       ("m = update * sqrt_v", "linear"), ("m = v * update", "linear")])
def test_a_momentum_made_of_the_second_moment_is_not_lion(tail, why):
    """Children of the sign rung that return a function of the second moment as the momentum: the
    update is sign(0.1 g + 0.9 f), ~signSGD with a small term; on single-lag probes f decays
    geometrically like Lion's average (0.999**k from v), but it is either not odd in the gradient
    or, times the sign, not additive over gradient histories."""
    prog = Program.parse(SIGN_RUNG.replace("    return update, m, v", f"    {tail}\n    return update, m, v"))
    r = ladder.classify(prog)
    assert r.label == "other" and why in r.why, r


def test_the_search_never_imports_the_ladder():
    """Nothing in the engine imports the classifier or the sampler (they single out sign and Lion;
    the search must not), nor anything from experiments/."""
    for path in (ROOT / "evosearch").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("ladder", "odds", "experiments"), (path, name)
        assert "sys.path" not in path.read_text() or "experiments" not in path.read_text(), path


def test_admission_is_asks_filter(monkeypatch):
    """Every program ``ask`` generates gets the same verdict from ``odds.Admission``: the children
    it kept are exactly those the sampler keeps, and it rejected as many as the sampler rejects."""
    generated = []
    real = evolution.mutate

    def recording(parent, rng, config):
        child, what = real(parent, rng, config)
        generated.append(child)
        return child, what
    monkeypatch.setattr(evolution, "mutate", recording)
    evo = RegularizedEvolution(reference.load("adamw"), EvolutionConfig(population_size=10, tournament_size=2),
                               seed=5)
    kept = []
    for c in evo.ask(1):
        evo.tell(c.id, 0.5)
    for _ in range(25):
        for c in evo.ask(4):
            kept.append(c.program)
            evo.tell(c.id, int(c.canonical_hash[:6], 16) / 16 ** 6)
    kept += [h.candidate.program for h in evo.take_cache_hits()]
    kept += [s.candidate.program for s in evo.take_screened()]
    admit = odds.Admission()
    verdicts = [admit(p) for p in generated]
    assert sum(v is not None for v in verdicts) == evo.counters.rejected > 0
    assert sorted(map(str, (p for p, v in zip(generated, verdicts) if v is None))) == sorted(map(str, kept))


def test_sample_is_deterministic_and_counts_add_up():
    parent = odds.load_parent("signum-wd")
    config = MutationConfig(wrap_read=0.5)
    a = odds.sample(parent, 300, 7, config, screen_sample=20).to_dict()
    b = odds.sample(parent, 300, 7, config, screen_sample=20).to_dict()
    a.pop("seconds"), b.pop("seconds")
    assert a == b
    assert a["accepted"] + a["no_child"] == 300
    assert a["generated"] == a["accepted"] + sum(a["rejected"].values())
    assert a["same_as_parent"] + sum(a["counts"][r] for r in ("signum-family", "lion-family", "adamw-like",
                                                                "other")) == a["accepted"]
    assert a["counts"]["signum-family"] > 0   # most changes of Signum keep its sign


def test_odds_script_smoke(tmp_path):
    out = tmp_path / "odds.json"
    proc = subprocess.run([sys.executable, str(EXPERIMENTS / "odds.py"), "--parent", "adamw", "-n", "200",
                           "--seed", "1", "--wrap", "0.2", "--effective", "--screen-sample", "10", "--json",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "signum-family" in proc.stdout and "generated/rung" in proc.stdout
    assert '"wrap": 0.2' in out.read_text() and '"effective": true' in out.read_text()


def test_ladder_script_smoke():
    proc = subprocess.run([sys.executable, str(EXPERIMENTS / "ladder.py"), "lion", "adamw"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "lion: lion-family beta1=0.9 beta2=0.99 wd=0.01" in proc.stdout
    assert "adamw: adamw-like" in proc.stdout


def test_rng_is_not_shared_with_the_classifier():
    """Classifying does not draw from ``random``: a sample's children do not depend on it."""
    state = random.getstate()
    ladder.classify(reference.load("lion"))
    assert random.getstate() == state


def test_mix_is_the_weighted_mean_of_one_operator_rates():
    def one(op: str, generated: int, signum: int, same: int) -> dict:
        weights = {name: 0.0 for name in ("insert", "delete", "modify_argument", "change_function", "wrap",
                                         "wrap_read")}
        counts = dict.fromkeys(odds.RUNGS, 0)
        counts["signum-family"] = signum
        return {"mutation": {**weights, op: 1.0, "effective": False}, "generated": generated,
                "same_as_parent": same, "counts": counts}
    samples = [one("insert", 1000, 10, 300), one("delete", 500, 0, 100), one("modify_argument", 800, 0, 400),
               one("change_function", 400, 4, 0), one("wrap", 2000, 40, 200)]
    rates = odds.mix(samples, MutationConfig(wrap=2.0))
    assert rates["signum-family"][0] == pytest.approx((10 / 1000 + 0 + 0 + 4 / 400 + 2 * 40 / 2000) / 6)
    assert rates["same as parent"][0] == pytest.approx((0.3 + 0.2 + 0.5 + 0 + 2 * 0.1) / 6)
    lo, hi = rates["signum-family"][1:]
    assert lo < rates["signum-family"][0] < hi
    with pytest.raises(ValueError, match="wrap_read"):
        odds.mix(samples, MutationConfig(wrap_read=1.0))
    with pytest.raises(ValueError, match="effective=True"):
        odds.mix(samples, MutationConfig(effective=True))


def test_a_surrogate_climb_runs_the_real_search():
    config = EvolutionConfig(population_size=8, tournament_size=2, mutation=MutationConfig(wrap_read=0.5))
    r = odds.climb(odds.load_parent("signum-wd"), config, seed=0, budget=12)
    assert r["trained"] >= 12 and r["generated"] > r["trained"]
    assert r["best"].split()[0] in ladder.LABELS and r["first"]
    assert odds.surrogate_fitness(ladder.classify(reference.load("adamw")), "x", noise=False) == 0.970
    assert odds.surrogate_fitness(ladder.classify(reference.load("lion")), "x", noise=False) == 1.012
    assert odds.surrogate_fitness(ladder.classify(reference.load("signum")), "x", noise=False) == 0.992
    assert odds.surrogate_fitness(ladder.classify(reference.load("signsgd")), "x", noise=False) == 0.970
    assert odds.surrogate_fitness(ladder.classify(reference.load("sgd")), "x", noise=False) == 0.5
    lion_strong = ladder.Rung("lion-family", 0.9, 0.99, 1.0)
    assert odds.surrogate_fitness(lion_strong, "x", noise=False) == 1.017
    for far in (ladder.Rung("lion-family", 0.9, 0.99, 1e9), ladder.Rung("signum-family", 0.99, None, 0.0),
                ladder.Rung("lion-family", 0.01, 0.9, 0.0)):
        assert odds.surrogate_fitness(far, "x", noise=False) == 0.970
