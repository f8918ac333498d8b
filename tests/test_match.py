"""Family matching (issue 5): obfuscated family members are recognised with the right constants,
the textbook optimizer rebuilt from those constants reproduces the original's trajectory, and near
misses are rejected. The programs are shared with test_simplify.py."""

from __future__ import annotations

import pytest

from evosearch import reference
from evosearch.match import identify, match
from evosearch.verify import max_relative_difference
from test_simplify import (ADAM_OBFUSCATED, LION_SPLIT, MATCHES, P, RAW_LION, SEEDS, SGD_MOMENTUM_OBFUSCATED, SIGNUM_OBFUSCATED, SIGNUM_OLD_MOMENTUM, canonical, simplify)


# -- 3. family matching -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, prog, family, expected", MATCHES, ids=[m[0] for m in MATCHES])
def test_family_is_recognised_with_its_constants(name, prog, family, expected):
    r = match(prog, family)
    assert r.matched, r.reason
    assert r.family == family
    assert set(r.constants) == set(expected)
    for key, value in expected.items():
        assert r.constants[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


@pytest.mark.parametrize("name, prog, family, expected",
                         [m for m in MATCHES if "bias" not in m[0]], ids=[m[0] for m in MATCHES if "bias" not in m[0]])
def test_fitted_constants_rebuild_the_same_optimizer(name, prog, family, expected):
    """The family's textbook program with the fitted constants has the program's trajectory."""
    r = match(prog, family)
    assert r.matched, r.reason
    assert max_relative_difference(prog, canonical(family, r.constants), seeds=SEEDS) <= 1e-6


def test_signum_of_the_old_momentum():
    r = match(SIGNUM_OLD_MOMENTUM, "signum")
    assert r.matched, r.reason
    assert r.constants["beta"] == pytest.approx(0.9)
    assert not match(SIGNUM_OLD_MOMENTUM, "lion").matched


def test_sgd_with_the_old_momentum():
    prog = P("""
def train(w, g, m, lr):
    u = m * lr
    update = u * 0.5
    m = interp(g, m, 0.9)
    return update, m
""")
    r = match(prog, "sgd-momentum")
    assert r.matched, r.reason
    assert r.constants == pytest.approx(dict(momentum=0.9, dampening=0.9, weight_decay=0.0, lr_scale=0.5))


def test_identify_names_the_family():
    assert identify(LION_SPLIT).family == "lion"
    assert identify(ADAM_OBFUSCATED).family == "adam"
    assert identify(SIGNUM_OBFUSCATED).family == "signum"
    assert identify(SGD_MOMENTUM_OBFUSCATED).family == "sgd-momentum"
    assert identify(reference.load("rmsprop")) is None
    assert identify(reference.load("sgd")) is None


NOT_LION = {
    "adamw": reference.load("adamw"),
    "adam": reference.load("adam"),
    "adam-obfuscated": ADAM_OBFUSCATED,
    "signsgd": reference.load("signsgd"),
    "signsgd-with-unused-state": P("""
def train(w, g, m, lr):
    m = interp(g, m, 0.9)
    s = sign(g)
    update = s * lr
    return update, m
"""),
    "signum": reference.load("signum"),
    "signum-obfuscated": SIGNUM_OBFUSCATED,
    "signum-old-momentum": SIGNUM_OLD_MOMENTUM,
    "non-linear-state": P("""
def train(w, g, m, lr):
    u = interp(g, m, 0.9)
    u = sign(u)
    a = abs(g)
    m = interp(a, m, 0.9)
    update = u * lr
    return update, m
"""),
    "not-proportional-to-lr": P("""
def train(w, g, m, lr):
    u = interp(g, m, 0.9)
    u = sign(u)
    m = interp(g, m, 0.99)
    u = u * 0.001
    wd = w * lr
    update = u + wd
    return update, m
"""),
    "lr-squared": P("""
def train(w, g, m, lr):
    u = interp(g, m, 0.9)
    u = sign(u)
    m = interp(g, m, 0.99)
    u = u * lr
    update = u * lr
    return update, m
"""),
    "decay-inside-the-sign": P("""
def train(w, g, m, lr):
    u = interp(g, m, 0.9)
    wd = w * 0.01
    u = u + wd
    u = sign(u)
    m = interp(g, m, 0.99)
    update = u * lr
    return update, m
"""),
    "ascent": P("""
def train(w, g, m, lr):
    u = interp(g, m, 0.9)
    u = sign(u)
    m = interp(g, m, 0.99)
    update = u * lr
    update = -update
    return update, m
"""),
    "two-signs": P("""
def train(w, g, m, lr):
    u = interp(g, m, 0.9)
    u = sign(u)
    s = sign(g)
    u = u + s
    m = interp(g, m, 0.99)
    update = u * lr
    return update, m
"""),
    "raw-lion-before-ablation": RAW_LION,
    "powersign": reference.load("powersign"),
    "addsign": reference.load("addsign"),
}


@pytest.mark.parametrize("name", sorted(NOT_LION))
def test_near_misses_are_not_lion(name):
    r = match(NOT_LION[name], "lion")
    assert not r.matched
    assert r.reason


@pytest.mark.parametrize("name", ["rmsprop", "lion", "adagrad", "sgd_momentum", "signum"])
def test_near_misses_are_not_adam(name):
    r = match(reference.load(name), "adam")
    assert not r.matched and r.reason


def test_adam_without_the_square_root_is_not_adam():
    prog = P("""
def train(w, g, m, v, lr):
    m = interp(g, m, 0.9)
    g2 = square(g)
    v = interp(g2, v, 0.999)
    update = m / v
    update = update * lr
    return update, m, v
""")
    assert not match(prog, "adam").matched


@pytest.mark.parametrize("beta1, beta2", [(1.0, 0.999), (0.9, 1.0), (0.0, 0.999)])
def test_adam_shaped_programs_with_degenerate_averages_are_told_apart_not_crashed(beta1, beta2):
    # a rediscovery run died here: m <- m (beta1 = 1) made the fit divide by zero
    prog = P(f"""
def train(w, g, m, v, lr):
    m = interp(g, m, {beta1})
    g2 = square(g)
    v = interp(g2, v, {beta2})
    denom = sqrt(v)
    update = m / denom
    update = update * lr
    return update, m, v
""")
    r = match(prog, "adam")
    if beta1 == 0.0:     # m = g: still Adam, with beta1 = 0
        assert r.matched and r.constants["beta1"] == 0.0
    else:
        assert not r.matched and r.reason
    identify(prog)      # every family is tried without an exception


def test_lion_is_not_signum_nor_sgd_momentum():
    assert not match(LION_SPLIT, "signum").matched
    assert not match(LION_SPLIT, "sgd-momentum").matched
    assert not match(reference.load("adamw"), "sgd-momentum").matched


def test_public_api_exports_simplify_and_match():
    import evosearch.match
    import evosearch.simplify  # noqa: F401 - importing the submodules must not shadow the functions
    from evosearch import match as public_match, simplify as public_simplify
    assert public_simplify(LION_SPLIT) == simplify(LION_SPLIT)
    assert public_match(LION_SPLIT, "lion").matched


def test_unknown_family_is_an_error():
    with pytest.raises(ValueError, match="unknown family"):
        match(LION_SPLIT, "shampoo")


def test_match_result_prints_the_constants_or_the_reason():
    assert "beta2=0.99" in str(match(LION_SPLIT, "lion"))
    assert "no match" in str(match(reference.load("signsgd"), "lion"))
