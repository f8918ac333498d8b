"""The odds of a rung: how many children of a program it takes, on average, before one is on the
next rung of the ladder from AdamW to Lion (``experiments/ladder.py``), against what an hour buys.

Children are drawn as ``RegularizedEvolution.ask`` draws them from a tournament winner that is
always ``--parent``: each child is one mutation (``evosearch/search/mutation.py``, the settings
given), mutated again while abstract execution rejects it, its update ignores the gradient, or
(``lr_proportional``) it is not proportional to lr, up to ``max_mutation_tries`` times; every draw
counts as a generated child, as the search's counters count them. Of the accepted children:

- ``same as parent``: the parent's canonical hash or functional fingerprint (the search serves
  them from its cache, untrained);
- each ladder label, judged by what the child computes (``ladder.classify``, run once per
  fingerprint);
- ``distinct new``: how many different fingerprints other than the parent's the children have:
  what the search would train, less those the numeric screen fails (estimated on a sample of them).

Rates are per generated child. The expected number of generated children per rung child is
``1 / p``; an hour generates ``--children-per-hour`` of them at the figures measured on the ViT
proxy (~2,300 trained candidates and ~23,000 children an hour). Settings that make more children new
also make more of them cost training: ``trained per generated`` (the distinct new, unscreened
children of the first hour's worth of draws, per draw) turns the odds into trained candidates per
rung child, against ``--trained-per-hour``.

    python experiments/odds.py --parent adamw -n 200000 --seed 0
    python experiments/odds.py --parent signum-wd -n 100000 --wrap 0.2 --effective --json out.json

``--parent`` is ``adamw`` (the warm start), ``sign-rung`` (the warm start with ``update =
sign(update)`` after the division), ``signum-wd`` (Signum 0.9 with decoupled weight decay 0.01),
a reference program's name, or a program file.

Two more modes. ``--mix FILES`` gives the rates for the weights on the command line from samples
that each used one operator alone (a generated child is one draw of one operator, so the rate is
the weighted mean). ``--climb SEEDS`` runs the search itself (``RegularizedEvolution``) for
``--trained-per-hour`` trained candidates on a surrogate fitness, the rungs' fitness measured on the
ViT proxy given by the ladder (``SURROGATE``), and says when each rung was first trained.

    python experiments/odds.py --mix op/adamw-*.json --wrap 0.5 --wrap-read 1 --effective
    python experiments/odds.py --parent adamw --climb 4 --seed 0 --effective --wrap 0.5 --wrap-read 1

Results and the commands behind them: ``experiments/results/odds.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from evosearch.lang.canonical import canonical_hash
from evosearch.lang.errors import ProgramError
from evosearch.lang.fingerprint import fingerprint
from evosearch.lang.kinds import check
from evosearch.lang.liveness import live_states, pruning_reason
from evosearch.lang.program import Program
from evosearch.lang.pruning import lr_reason
from evosearch.lang.screen import screen_reason
from evosearch.search.evolution import EvolutionConfig, RegularizedEvolution
from evosearch.search.mutation import OPERATORS, MutationConfig, mutate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ladder  # noqa: E402  (experiments/ is not a package)

PARENTS = {
    "sign-rung": """def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, m, 0.9)
    v = interp(g2, v, 0.999)
    sqrt_v = sqrt(v)
    update = m / sqrt_v
    update = sign(update)
    wd = w * 0.01
    update = update + wd
    lr = lr * 0.001
    update = update * lr
    return update, m, v
""",
    "signum-wd": """def train(w, g, m, lr):
    m = interp(g, m, 0.9)
    update = sign(m)
    wd = w * 0.01
    update = update + wd
    update = update * lr
    return update, m
""",
}
RUNGS = ("signum-family", "lion-family", "lion-order", "adamw-like", "other")
TRAINED_PER_HOUR = 2300
CHILDREN_PER_HOUR = 23000


def load_parent(spec: str) -> Program:
    """A parent by the names above, a reference program's name, or a program file."""
    if spec in PARENTS:
        return Program.parse(PARENTS[spec])
    return ladder.load(spec)


class Admission:
    """The search's own filter of a mutated child (``RegularizedEvolution.ask``): None if the child
    is kept, else why it is mutated again. Verdicts are kept per program and the lr rule's per
    canonical hash (a function of what the program computes), so each is computed once.
    ``max_states`` (0: none) is the limit on live state tensors, where the search has one."""

    def __init__(self, lr_proportional: bool = True, max_states: int = 0):
        self.lr_proportional = lr_proportional
        self.max_states = max_states
        self.verdicts: dict[Program, str | None] = {}
        self.lr_verdicts: dict[str, str | None] = {}

    def __call__(self, prog: Program) -> str | None:
        if prog not in self.verdicts:
            self.verdicts[prog] = self._judge(prog)
        return self.verdicts[prog]

    def _judge(self, prog: Program) -> str | None:
        try:
            check(prog)
        except ProgramError:
            return "invalid"
        if pruning_reason(prog) is not None:
            return "gradient"
        if self.max_states and len(live_states(prog)) > self.max_states:
            return "states"
        if self.lr_proportional:
            h = canonical_hash(prog)
            if h not in self.lr_verdicts:
                self.lr_verdicts[h] = lr_reason(prog)
            if self.lr_verdicts[h] is not None:
                return "lr"
        return None


@dataclass
class Odds:
    """What a sample of children gave (see the module docstring); plain data for ``--json``."""
    parent: str
    n: int
    seed: int
    mutation: dict
    generated: int = 0
    rejected: dict = field(default_factory=lambda: {"invalid": 0, "gradient": 0, "states": 0, "lr": 0})
    no_child: int = 0                    # tournaments whose max_mutation_tries all failed
    accepted: int = 0
    same_as_parent: int = 0
    counts: dict = field(default_factory=lambda: dict.fromkeys(RUNGS, 0))
    distinct: dict = field(default_factory=lambda: dict.fromkeys(RUNGS, 0))
    first_at: dict = field(default_factory=dict)   # rung -> generated children before its first
    distinct_new: int = 0
    distinct_new_in_hour: int = 0
    screen_sampled: int = 0
    screen_failed: int = 0
    rung_screen_failed: dict = field(default_factory=lambda: dict.fromkeys(RUNGS, 0))
    examples: dict = field(default_factory=dict)   # rung -> [(mutation, ladder verdict)]
    verdicts: dict = field(default_factory=dict)   # sign-based ladder verdict (betas, decay) -> children
    lion_programs: list = field(default_factory=list)  # [mutation, verdict, program] per distinct lion-family child
    children_per_hour: int = CHILDREN_PER_HOUR
    trained_per_hour: int = TRAINED_PER_HOUR
    seconds: float = 0.0

    def rate(self, rung: str) -> float:
        """Children of ``rung`` per generated child."""
        return self.counts[rung] / self.generated if self.generated else 0.0

    def interval(self, rung: str, level: float = 0.95) -> tuple[float, float]:
        """Clopper-Pearson interval of ``rate(rung)``."""
        from scipy.stats import beta
        k, n = self.counts[rung], self.generated
        lo = beta.ppf((1 - level) / 2, k, n - k + 1) if k else 0.0
        hi = beta.ppf(1 - (1 - level) / 2, k + 1, n - k) if k < n else 1.0
        return float(lo), float(hi)

    @property
    def screened_fraction(self) -> float:
        return self.screen_failed / self.screen_sampled if self.screen_sampled else 0.0

    @property
    def trained_per_generated(self) -> float:
        """Of the first hour's worth of generated children, the distinct new ones the screen
        passes (what the search would train), per generated child."""
        window = min(self.generated, self.children_per_hour)
        return self.distinct_new_in_hour * (1 - self.screened_fraction) / window if window else 0.0

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["rates"] = {r: self.rate(r) for r in RUNGS}
        d["intervals"] = {r: self.interval(r) for r in RUNGS}
        d["trained_per_generated"] = self.trained_per_generated
        return d


def sample(parent: Program, n: int, seed: int, mutation: MutationConfig,
           evolution: EvolutionConfig | None = None, parent_name: str = "parent",
           screen_sample: int = 1000, children_per_hour: int = CHILDREN_PER_HOUR,
           trained_per_hour: int = TRAINED_PER_HOUR, examples: int = 3) -> Odds:
    """``n`` accepted children of ``parent`` (see the module docstring), deterministic for ``seed``."""
    evolution = evolution or EvolutionConfig(mutation=mutation)
    check(parent)
    out = Odds(parent_name, n, seed, asdict(mutation), children_per_hour=children_per_hour,
               trained_per_hour=trained_per_hour)
    admit = Admission(evolution.lr_proportional, getattr(evolution, "max_states", 0))
    parent_hash, parent_fp = canonical_hash(parent), fingerprint(parent)
    fp_of: dict[str, str] = {parent_hash: parent_fp}       # canonical hash -> fingerprint
    rung_of: dict[str, str] = {}                           # fingerprint -> rung
    screened: dict[str, bool] = {}                         # fingerprint -> fails the screen
    new_seen: set[str] = set()
    rng = random.Random(seed)
    t0 = time.perf_counter()
    for _ in range(n):
        child = None
        for _ in range(evolution.max_mutation_tries):
            prog, how = mutate(parent, rng, mutation)
            out.generated += 1
            why = admit(prog)
            if why is None:
                child = prog
                break
            out.rejected[why] += 1
        if child is None:
            out.no_child += 1
            continue
        out.accepted += 1
        h = canonical_hash(child)
        if h not in fp_of:
            fp_of[h] = fingerprint(child)
        fp = fp_of[h]
        if fp == parent_fp:
            out.same_as_parent += 1
            continue
        if fp not in rung_of:
            rung_of[fp] = _rung(child)
        rung = rung_of[fp]
        first = fp not in new_seen
        if first:
            new_seen.add(fp)
            out.distinct_new += 1
            if out.generated <= children_per_hour:
                out.distinct_new_in_hour += 1
            if out.screen_sampled < screen_sample:
                screened[fp] = screen_reason(child, evolution.lr) is not None
                out.screen_sampled += 1
                out.screen_failed += screened[fp]
        if rung.startswith(("signum", "lion")):
            out.verdicts[rung] = out.verdicts.get(rung, 0) + 1
        for r in _labels(rung):
            out.counts[r] += 1
            out.first_at.setdefault(r, out.generated)
            if first:
                out.distinct[r] += 1
            if r in ("signum-family", "lion-family", "lion-order"):
                if fp not in screened:
                    screened[fp] = screen_reason(child, evolution.lr) is not None
                if first:
                    out.rung_screen_failed[r] += screened[fp]
                    if r == "lion-family" and len(out.lion_programs) < 100:
                        out.lion_programs.append([how, rung, str(child)])
                    out.examples.setdefault(r, [])
                    if len(out.examples[r]) < examples:
                        out.examples[r].append([how, rung])
    out.seconds = time.perf_counter() - t0
    return out


def _rung(prog: Program) -> str:
    """The ladder verdict as text, label first."""
    return str(ladder.classify(prog))


def _labels(rung: str) -> list[str]:
    label = rung.split(" ", 1)[0]
    labels = [label]
    if label == "lion-family":
        words = dict(w.split("=") for w in rung.split()[1:] if "=" in w)
        if float(words["beta2"]) > float(words["beta1"]):
            labels.append("lion-order")
    return labels


def report(o: Odds) -> str:
    """The sample as text: counts, rates with intervals, and children and hours per rung child."""
    lines = [f"parent {o.parent}, {o.n} children (seed {o.seed}), mutation "
             + ", ".join(f"{k}={v}" for k, v in o.mutation.items() if k not in ("primitives",)),
             f"generated {o.generated} (rejected: " + ", ".join(f"{k} {v}" for k, v in o.rejected.items())
             + f"; tournaments without a child {o.no_child}), accepted {o.accepted}, in {o.seconds:.0f} s",
             f"same as parent (cache hits): {o.same_as_parent} = {o.same_as_parent / max(o.accepted, 1):.1%} "
             f"of accepted, {o.same_as_parent / max(o.generated, 1):.1%} of generated",
             f"distinct new fingerprints: {o.distinct_new} ({o.distinct_new_in_hour} in the first "
             f"{min(o.generated, o.children_per_hour)} generated); the screen fails {o.screen_failed} "
             f"of {o.screen_sampled} sampled ({o.screened_fraction:.1%})",
             f"trained per generated child (first hour's draws): {o.trained_per_generated:.3f} "
             f"(flag figures: {o.trained_per_hour / o.children_per_hour:.3f})",
             "",
             f"{'rung':<14} {'children':>8} {'distinct':>8} {'per generated':>14} {'95% interval':>21} "
             f"{'generated/rung':>14} {'hours@flag':>10} {'trained/rung':>12} {'hours@trained':>13}"]
    for r in RUNGS:
        p = o.rate(r)
        lo, hi = o.interval(r)
        per = 1 / p if p else float("inf")
        trained = o.trained_per_generated * per
        lines.append(f"{r:<14} {o.counts[r]:>8} {o.distinct[r]:>8} {p:>14.3g} {f'[{lo:.2g}, {hi:.2g}]':>21} "
                     f"{per:>14.3g} {per / o.children_per_hour:>10.3g} {trained:>12.3g} "
                     f"{trained / o.trained_per_hour:>13.3g}")
    if o.verdicts:
        top = sorted(o.verdicts.items(), key=lambda kv: -kv[1])[:8]
        lines.append("sign-based children by verdict: " + "; ".join(f"{v}: {k}" for k, v in top))
    for r, ex in o.examples.items():
        lines.append(f"first {r} children (distinct; screen fails {o.rung_screen_failed[r]} of {o.distinct[r]}):")
        lines += [f"  {how}  ->  {verdict}" for how, verdict in ex]
    return "\n".join(lines)


# -- rates for any weights, from one-operator samples -----------------------------------------------
def mix(samples: list[dict], mutation: MutationConfig, draws: int = 20000) -> dict:
    """Each rung's rate per generated child under ``mutation``'s operator weights, from samples
    (``Odds.to_dict``) of the same parent that each used one operator alone, with the same
    ``effective``: a generated child is one draw of one operator, so the rate is the weighted mean
    of the operators' rates. Returns rung -> (rate, 2.5% and 97.5% points of the rate with each
    operator's rate drawn from its Jeffreys posterior), and "same as parent" the same way."""
    import numpy as np
    by_op = {}
    for d in samples:
        m = d["mutation"]
        ops = [op for op in OPERATORS if m.get(op, 0.0) > 0]
        if bool(m.get("effective")) == mutation.effective and len(ops) == 1:
            by_op[ops[0]] = d
    weights = {op: w for op, w in zip(OPERATORS, mutation.weights()) if w > 0}
    missing = sorted(set(weights) - set(by_op))
    if missing:
        raise ValueError(f"no one-operator sample for {missing} (effective={mutation.effective})")
    total = sum(weights.values())
    rng = np.random.default_rng(0)
    out = {}
    for key in RUNGS + ("same as parent",):
        rate, sampled = 0.0, np.zeros(draws)
        for op, w in weights.items():
            d = by_op[op]
            k = d["same_as_parent"] if key == "same as parent" else d["counts"][key]
            n = d["generated"]
            rate += w / total * k / n
            sampled += w / total * rng.beta(k + 0.5, n - k + 0.5, draws)
        out[key] = (rate, min(rate, float(np.quantile(sampled, 0.025))), float(np.quantile(sampled, 0.975)))
    return out


# -- a search on a surrogate fitness --------------------------------------------------------------
# The rungs' fitness on the ViT proxy (seeds 0 and 1, the warm start's scale lr * 0.001): AdamW 0.970,
# the warm start with sign after the division (Signum 0.9) 0.992, the same with weight decay 1 (in
# units of the sign step; here 0.1 <= wd <= 10) 1.005, Lion (0.9, 0.99) 1.012 (wd 0.01) and 1.017
# (wd 1). The surrogate gives a rung's fitness only near what was measured: Signum's beta in
# [0.3, 0.95] (Signum 0.99 trained worse than AdamW there), Lion's order with beta1 >= 0.3 and
# beta2 <= 0.999, weight decay in [0, 10]. Every other sign rule (nearly sign(g), a near-sum, a
# negative or enormous decay) scores as AdamW: nothing says it beats it.
SURROGATE = {"other": 0.5, "adamw-like": 0.970, "signum": (0.992, 1.005), "lion": (1.012, 1.017)}
SURROGATE_NOISE = 0.005      # per program (by fingerprint): how much fitness varies within a rung
STRONG_DECAY, MAX_DECAY = 0.1, 10.0
MOMENTUM, MAX_BETA, MAX_BETA2 = 0.3, 0.95, 0.999


def surrogate_rung(rung: ladder.Rung) -> str | None:
    """"signum" or "lion" where the surrogate gives a rung's fitness (see above), else None."""
    if not rung.sign_based or not 0.0 <= (rung.weight_decay or 0.0) <= MAX_DECAY or rung.beta1 < MOMENTUM:
        return None
    if rung.lion_order:
        return "lion" if rung.beta2 <= MAX_BETA2 else None
    return "signum" if rung.beta1 <= MAX_BETA else None


def surrogate_fitness(rung: ladder.Rung, fp: str, noise: bool = True) -> float:
    """The ladder's fitness for a program (``SURROGATE``) plus, with ``noise``, a fixed pseudo-random
    offset per fingerprint, N(0, ``SURROGATE_NOISE``): within a rung, programs differ, as they do in
    training."""
    import hashlib
    import math
    step = surrogate_rung(rung)
    if step is not None:
        pair = SURROGATE[step]
        base = pair[1] if (rung.weight_decay or 0.0) >= STRONG_DECAY else pair[0]
    elif rung.sign_based:
        base = SURROGATE["adamw-like"]
    else:
        base = SURROGATE[rung.label]
    if not noise:
        return base
    u1, u2 = (int(hashlib.blake2b(f"{fp}:{k}".encode(), digest_size=8).hexdigest(), 16) / 2 ** 64 for k in (1, 2))
    return base + SURROGATE_NOISE * math.sqrt(-2 * math.log(u1 or 1e-300)) * math.cos(2 * math.pi * u2)


def climb(warm: Program, config: EvolutionConfig, seed: int, budget: int = TRAINED_PER_HOUR,
          batch: int = 8) -> dict:
    """A search (``RegularizedEvolution``, the real ask/tell) on the surrogate fitness for ``budget``
    trained candidates: when each rung was first trained (trained candidates so far, generated
    children so far), and the best program's rung at the end. The warm start scores its own rung
    with no offset."""
    evo = RegularizedEvolution(warm, config, seed=seed)
    rungs: dict[str, ladder.Rung] = {}
    first: dict[str, list[int]] = {}
    first_programs: dict[str, list[str]] = {}
    for c in evo.ask(1):
        evo.tell(c.id, surrogate_fitness(ladder.classify(warm), c.fingerprint, noise=False))
    while evo.counters.evaluated < budget:
        children = evo.ask(batch)
        if not children:
            break
        for c in children:
            if c.fingerprint not in rungs:
                rungs[c.fingerprint] = ladder.classify(c.program)
            rung = rungs[c.fingerprint]
            evo.tell(c.id, surrogate_fitness(rung, c.fingerprint))
            for label in _climb_labels(rung):
                if label not in first:
                    first[label] = [evo.counters.evaluated, evo.counters.generated]
                    first_programs[label] = [str(rung), str(c.program)]
    best = rungs.get(evo.best.candidate.fingerprint) or ladder.classify(evo.best.candidate.program)
    in_population = {}
    for m in evo.population:
        r = rungs.get(m.candidate.fingerprint)
        if r is not None:
            for label in _climb_labels(r):
                in_population[label] = in_population.get(label, 0) + 1
    return {"seed": seed, "trained": evo.counters.evaluated, "generated": evo.counters.generated,
            "cache_hits": evo.counters.cache_hits, "first": first, "first_programs": first_programs, "best": str(best),
            "best_fitness": evo.best.fitness, "best_program": str(evo.best.candidate.program),
            "in_population": in_population}


def _climb_labels(rung: ladder.Rung) -> list[str]:
    """The ladder label, Lion's order, and the rung the surrogate rewards, if any."""
    labels = [rung.label] + (["lion-order"] if rung.lion_order else [])
    step = surrogate_rung(rung)
    return labels + ([f"{step} rung"] if step else [])


def climb_report(runs: list[dict], budget: int) -> str:
    lines = [f"surrogate search, {budget} trained candidates per seed:"]
    for r in runs:
        firsts = ", ".join(f"{k} at {v[0]} trained ({v[1]} generated)" for k, v in sorted(r["first"].items())
                           if k != "other")
        lines.append(f"  seed {r['seed']}: {r['trained']} trained of {r['generated']} generated; best: {r['best']} "
                     f"({r['best_fitness']:.4f}); first: {firsts or '-'}")
    for label in ("signum-family", "lion-family", "lion-order", "signum rung", "lion rung"):
        reached = [r["first"][label][0] for r in runs if label in r["first"]]
        lines.append(f"{label}: trained in {len(reached)} of {len(runs)} seeds"
                     + (f", after {sorted(reached)} trained candidates" if reached else ""))
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parent", default="adamw")
    ap.add_argument("-n", type=int, default=200_000, help="accepted children to sample")
    ap.add_argument("--seed", type=int, default=0)
    for f in fields(MutationConfig):
        if f.name in ("primitives",):
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            ap.add_argument(flag, action="store_true", help=f"[mutation] {f.name}")
        else:
            ap.add_argument(flag, type=int if f.type in ("int", int) else float, default=f.default,
                            help=f"[mutation] {f.name} (default {f.default})")
    ap.add_argument("--no-lr-rule", action="store_true", help="[search] lr_proportional = false")
    ap.add_argument("--children-per-hour", type=int, default=CHILDREN_PER_HOUR)
    ap.add_argument("--trained-per-hour", type=int, default=TRAINED_PER_HOUR)
    ap.add_argument("--screen-sample", type=int, default=1000,
                    help="distinct new children the numeric screen is run on, for its failure rate")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--mix", type=Path, nargs="+", metavar="JSON",
                    help="instead: rates for the weights given, from one-operator samples' --json files")
    ap.add_argument("--climb", type=int, default=0, metavar="SEEDS",
                    help="instead: a search on the surrogate fitness from --parent, for --trained-per-hour "
                         "trained candidates, on seeds --seed .. --seed + SEEDS - 1")
    ap.add_argument("--population-size", type=int, default=100)
    ap.add_argument("--tournament-size", type=int, default=10)
    ap.add_argument("--restart-patience", type=int, default=0)
    args = ap.parse_args(argv)
    mutation = MutationConfig(**{f.name: getattr(args, f.name) for f in fields(MutationConfig)
                                 if f.name != "primitives"})
    evolution = EvolutionConfig(args.population_size, args.tournament_size, args.restart_patience,
                                mutation=mutation, lr_proportional=not args.no_lr_rule)
    if args.mix:
        rates = mix([json.loads(p.read_text()) for p in args.mix], mutation)
        per = {k: 1 / v[0] if v[0] else float("inf") for k, v in rates.items()}
        print(f"weights {dict(zip(OPERATORS, mutation.weights()))}, effective={mutation.effective}")
        for key, (rate, lo, hi) in rates.items():
            print(f"{key:<15} {rate:.3g} per generated [{lo:.2g}, {hi:.2g}]; {per[key]:.3g} generated per child, "
                  f"{per[key] / args.children_per_hour:.3g} hours at {args.children_per_hour}/hour")
        return
    if args.climb:
        runs = [climb(load_parent(args.parent), evolution, seed, args.trained_per_hour)
                for seed in range(args.seed, args.seed + args.climb)]
        print(climb_report(runs, args.trained_per_hour))
        if args.json:
            args.json.write_text(json.dumps({"mutation": asdict(mutation), "population_size": args.population_size,
                                             "tournament_size": args.tournament_size,
                                             "restart_patience": args.restart_patience, "runs": runs},
                                            indent=1) + "\n")
        return
    o = sample(load_parent(args.parent), args.n, args.seed, mutation, evolution, args.parent,
               args.screen_sample, args.children_per_hour, args.trained_per_hour)
    print(report(o))
    if args.json:
        args.json.write_text(json.dumps(o.to_dict(), indent=1) + "\n")


if __name__ == "__main__":
    main()
