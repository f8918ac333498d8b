"""Programs shared by several test files (docs/design.md, "Tests follow the layers"): the paper's
AdamW warm start as text, with helpers for the text form of reference programs; the paper's raw Lion;
and obfuscated members of each family (same function, unusual text), which the simplification and
family-matching tests share."""

from __future__ import annotations

from evosearch import Program, reference
from evosearch.lang.errors import ProgramError
from evosearch.lang.kinds import check
from evosearch.search.mutation import mutate

# Seeds that simplify's internal check (verify.max_relative_difference's default 0, 1, 2) never sees.
SEEDS = (11, 12, 13)


def P(text: str) -> Program:
    return Program.parse(text)


def checked_walk(prog: Program, rng, config, steps: int):
    """A random walk of ``steps`` of the search's own mutations from ``prog``, each child kept only
    if it passes ``check`` (as the search keeps children): yields (kept child, its mutation)."""
    for _ in range(steps):
        child, what = mutate(prog, rng, config)
        try:
            check(child)
        except ProgramError:
            continue
        prog = child
        yield child, what


# -- program text ------------------------------------------------------------------------------------

# The paper's AdamW warm start, exactly as docs/design.md ("The program language") writes it: the
# shipped ``adamw`` program.
ADAMW_TEXT = """\
def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, m, 0.9)
    v = interp(g2, v, 0.999)
    sqrt_v = sqrt(v)
    update = m / sqrt_v
    wd = w * 0.01
    update = update + wd
    lr = lr * 0.001
    update = update * lr
    return update, m, v
"""


def reference_text(name: str) -> str:
    """A reference file without its leading comment lines: what ``str(prog)`` must print."""
    lines = reference.path(name).read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "".join(lines)


def assert_round_trips(prog: Program) -> None:
    """The text form and the JSON form both give the program back."""
    text = str(prog)
    again = Program.parse(text)
    assert again == prog
    assert str(again) == text
    assert Program.from_json(prog.to_json()) == prog


# -- the paper's raw Lion ------------------------------------------------------------------------------

# The paper's raw program that became Lion (Chen et al. 2023, Program 4 / Sec. 3.2).
RAW_LION = P("""
def train(w, g, m, v, lr):
    g = clip(g, lr)
    g = arcsin(g)
    m = interp(g, v, 0.899)
    m2 = m * m
    v = interp(g, m, 1.109)
    abs_m = sqrt(m2)
    update = m / abs_m
    wd = w * 0.4602
    update = update + wd
    lr = lr * 0.0002
    m = cosh(update)
    update = update * lr
    return update, m, v
""")


# -- obfuscated members of each family --------------------------------------------------------------
# Split interpolations: interp(g, interp(g, m, a), b) is one
# moving average with weight a*b on m.

LION_SPLIT = P("""
def train(w, g, mu, junk, lr):
    dead = exp(g)
    c0 = interp(g, mu, 0.75)
    c = interp(g, c0, 1.2)
    c2 = c * c
    cabs = sqrt(c2)
    s = c / cabs
    decay = w * 0.01
    step = s + decay
    lr = lr * 0.01
    lr = lr * 0.03
    step = step * lr
    m0 = interp(g, mu, 0.9)
    mu = interp(g, m0, 1.1)
    junk = square(step)
    return step, mu, junk
""")

LION_DECAY_AFTER_SIGN = P("""
def train(w, g, avg, lr):
    mix = interp(g, avg, 0.95)
    d = sign(mix)
    step = d * lr
    step = step * 0.0001
    decay = w * lr
    decay = decay * 0.00001
    step = step + decay
    avg = interp(g, avg, 0.98)
    return step, avg
""")

# Heavy-ball state (m <- g + 0.99 m, not a standard moving average) and the sign's argument
# g + 0.09 m, proportional to 0.1 g + 0.9 m_std with m_std = 0.01 m: beta1 = 0.9 in Lion's units.
# The decay is added before the sign is taken in program order, and sign is written m / abs(m).
LION_HEAVY_BALL = P("""
def train(w, g, m, lr):
    wd = w * 0.02
    a = m * 0.09
    b = g + a
    absb = abs(b)
    s = b / absb
    s = s + wd
    m = m * 0.99
    m = m + g
    s = s * lr
    update = s * 0.0003
    return update, m
""")

ADAM_OBFUSCATED = P("""
def train(w, g, first, second, spare, lr):
    gg = g * g
    f0 = interp(g, first, 0.5)
    first = interp(g, f0, 1.8)
    s0 = interp(gg, second, 0.9)
    second = interp(gg, s0, 1.11)
    root = sqrt(second)
    ratio = first / root
    junk = log(ratio)
    decay = w * 0.1
    ratio = ratio + decay
    lr = lr * 0.1
    lr = lr * 0.01
    update = ratio * lr
    spare = tanh(g)
    return update, first, second, spare
""")

# Un-normalised moments (m <- g + 0.9 m, v <- g^2 + 0.999 v): in standard units the scale is
# 0.001 * 10 * sqrt(0.001) and the decoupled decay 1e-5 / that scale.
ADAM_UNNORMALISED = P("""
def train(w, g, m, v, lr):
    m = m * 0.9
    m = m + g
    g2 = square(g)
    v = v * 0.999
    v = v + g2
    r = sqrt(v)
    u = m / r
    u = u * 0.001
    wd = w * 0.00001
    u = u + wd
    update = u * lr
    return update, m, v
""")

SIGNUM_OBFUSCATED = P("""
def train(w, g, extra, mom, lr):
    k = interp(g, mom, 0.5)
    mom = interp(g, k, 1.9)
    extra = cosh(mom)
    mm = mom * mom
    r = sqrt(mm)
    s = mom / r
    lr = lr * 0.1
    lr = lr * 0.02
    update = s * lr
    return update, extra, mom
""")

# The sign of the old momentum (taken before the state is updated) is Signum too, beta1 = 1.
SIGNUM_OLD_MOMENTUM = P("""
def train(w, g, m, lr):
    s = sign(m)
    m = interp(g, m, 0.9)
    update = s * lr
    return update, m
""")

SGD_MOMENTUM_OBFUSCATED = P("""
def train(w, g, velocity, unused, lr):
    junk = sin(g)
    v0 = interp(g, velocity, 0.5)
    velocity = interp(g, v0, 1.8)
    wd = w * 0.001
    update = velocity + wd
    lr = lr * 0.5
    lr = lr * 0.2
    update = update * lr
    unused = g * 2.0
    return update, velocity, unused
""")

OBFUSCATED = {"lion-split": LION_SPLIT, "lion-decay-after-sign": LION_DECAY_AFTER_SIGN,
              "lion-heavy-ball": LION_HEAVY_BALL, "adam-obfuscated": ADAM_OBFUSCATED,
              "adam-unnormalised": ADAM_UNNORMALISED, "signum-obfuscated": SIGNUM_OBFUSCATED,
              "signum-old-momentum": SIGNUM_OLD_MOMENTUM, "sgd-momentum-obfuscated": SGD_MOMENTUM_OBFUSCATED}
