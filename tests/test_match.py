"""Family matching (``evosearch.symbolic.match``): obfuscated family members are recognised with the
right constants, the textbook optimizer rebuilt from those constants reproduces the original's
trajectory, near misses are rejected, and ``evosearch match``. The programs are shared with
test_simplify.py (programs.py)."""

from __future__ import annotations

import math

import pytest

from evosearch import Program, reference
from evosearch.cli import main
from evosearch.symbolic.match import FAMILIES, identify, match
from evosearch.symbolic.exact import simplify
from evosearch.symbolic.verify import max_relative_difference
from programs import (ADAM_OBFUSCATED, ADAM_UNNORMALISED, LION_DECAY_AFTER_SIGN, LION_HEAVY_BALL, LION_SPLIT, P,
                      RAW_LION, SEEDS, SGD_MOMENTUM_OBFUSCATED, SIGNUM_OBFUSCATED, SIGNUM_OLD_MOMENTUM)

# (name, program, family, expected constants)
MATCHES = [
    ("lion-reference", reference.load("lion"), "lion",
     dict(beta1=0.9, beta2=0.99, weight_decay=0.01, lr_scale=1.0)),
    ("lion-split", LION_SPLIT, "lion", dict(beta1=0.9, beta2=0.99, weight_decay=0.01, lr_scale=3e-4)),
    ("lion-decay-after-sign", LION_DECAY_AFTER_SIGN, "lion",
     dict(beta1=0.95, beta2=0.98, weight_decay=0.1, lr_scale=1e-4)),
    ("lion-heavy-ball", LION_HEAVY_BALL, "lion", dict(beta1=0.9, beta2=0.99, weight_decay=0.02, lr_scale=3e-4)),
    ("adamw-warm-start", reference.load("adamw"), "adam",
     dict(beta1=0.9, beta2=0.999, weight_decay=0.01, lr_scale=1e-3)),
    ("adam-bias-corrected", reference.load("adam"), "adam",
     dict(beta1=0.9, beta2=0.999, weight_decay=0.0, lr_scale=1.0)),
    ("adamw-bias-corrected", reference.load("adamw_torch"), "adam",
     dict(beta1=0.9, beta2=0.999, weight_decay=0.01, lr_scale=1.0)),
    ("adam-obfuscated", ADAM_OBFUSCATED, "adam", dict(beta1=0.9, beta2=0.999, weight_decay=0.1, lr_scale=1e-3)),
    ("adam-unnormalised", ADAM_UNNORMALISED, "adam",
     dict(beta1=0.9, beta2=0.999, weight_decay=1e-5 / (1e-2 * math.sqrt(1e-3)),
          lr_scale=1e-2 * math.sqrt(1e-3))),
    ("signum-reference", reference.load("signum"), "signum", dict(beta=0.9, weight_decay=0.0, lr_scale=1.0)),
    ("signum-obfuscated", SIGNUM_OBFUSCATED, "signum", dict(beta=0.95, weight_decay=0.0, lr_scale=2e-3)),
    ("sgd-momentum-reference", reference.load("sgd_momentum"), "sgd-momentum",
     dict(momentum=0.9, dampening=0.0, weight_decay=0.0, lr_scale=1.0)),
    ("sgd-momentum-obfuscated", SGD_MOMENTUM_OBFUSCATED, "sgd-momentum",
     dict(momentum=0.9, dampening=0.9, weight_decay=0.001, lr_scale=0.1)),
]


def canonical(family: str, c: dict) -> Program:
    """The family's textbook program with the fitted constants (torch.optim's conventions for
    sgd-momentum: buf <- momentum*buf + (1 - dampening)*g, update = lr*(buf + decay))."""
    body = {
        "lion": f"""
    u = interp(g, m, {c.get('beta1')!r})
    u = sign(u)
    m = interp(g, m, {c.get('beta2')!r})""",
        "signum": f"""
    m = interp(g, m, {c.get('beta')!r})
    u = sign(m)""",
        "sgd-momentum": f"""
    m = m * {c.get('momentum')!r}
    gd = g * {1.0 - c.get('dampening', 0.0)!r}
    m = m + gd
    u = m * 1.0""",
        "adam": f"""
    m = interp(g, m, {c.get('beta1')!r})
    g2 = square(g)
    v = interp(g2, v, {c.get('beta2')!r})
    r = sqrt(v)
    u = m / r""",
    }[family]
    states = "m, v" if family == "adam" else "m"
    return P(f"""
def train(w, g, {states}, lr):{body}
    wd = w * {c['weight_decay']!r}
    u = u + wd
    lr = lr * {c['lr_scale']!r}
    u = u * lr
    return u, {states}
""")


# -- family matching -----------------------------------------------------------------------------

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
    import evosearch.symbolic.exact
    import evosearch.symbolic.match  # noqa: F401 - importing the submodules must not shadow the functions
    from evosearch import match as public_match, simplify as public_simplify
    assert public_simplify(LION_SPLIT) == simplify(LION_SPLIT)
    assert public_match(LION_SPLIT, "lion").matched


def test_unknown_family_is_an_error():
    with pytest.raises(ValueError, match="unknown family"):
        match(LION_SPLIT, "shampoo")


def test_match_result_prints_the_constants_or_the_reason():
    assert "beta2=0.99" in str(match(LION_SPLIT, "lion"))
    assert "no match" in str(match(reference.load("signsgd"), "lion"))


# -- command line ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, family, code", [("lion", "lion", 0), ("signum", "lion", 1),
                                                ("adamw", "adam", 0), ("rmsprop", "adam", 1),
                                                ("sgd_momentum", "sgd-momentum", 0), ("signum", "signum", 0)])
def test_cli_match_exit_code(name, family, code, capsys):
    assert main(["match", str(reference.path(name)), "--family", family]) == code
    out = capsys.readouterr().out
    assert family in out and ("matched" in out) == (code == 0)


def test_cli_match_unknown_family_is_rejected(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["match", str(reference.path("lion")), "--family", "shampoo"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_cli_match_families_cover_the_module():
    assert set(FAMILIES) == {"lion", "signum", "sgd-momentum", "adam"}
