"""Benchmark: the cost of analysing a program, in microseconds per program and as a ratio to
parsing it (measured in one process). The search pays these for every child it generates.
With ``--lengths``, the time and peak memory of parsing and analysing long programs instead (each
length in a fresh process), which must grow linearly with the length.

    python experiments/bench_analysis.py [--repeats 300]
    python experiments/bench_analysis.py --lengths 1000 10000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc

from evosearch import Program, reference
from evosearch.lang.kinds import check
from evosearch.lang.liveness import live_statements


def _us(fn, repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e6


OPS = ("v{i} = v{j} * 0.5", "v{i} = interp(g, v{j}, 0.9)", "v{i} = v{j} + m", "v{i} = sign(v{j})")


def chain(n: int) -> str:
    """A program of ``n`` statements, each defining a new variable from the one before: all live,
    and as many variables as statements (the worst case for a table of variables per statement)."""
    lines = ["def train(w, g, m, lr):", "    v0 = g * lr"]
    lines += ["    " + OPS[i % len(OPS)].format(i=i, j=i - 1) for i in range(1, n - 1)]
    lines += [f"    u = v{n - 2} * lr", f"    return u, v{n - 2}"]
    return "\n".join(lines) + "\n"


def _long_program(n: int) -> dict:
    """Seconds and peak traced MiB of parsing ``chain(n)`` and of analysing it as ``evosearch
    check`` does (liveness, canonical hash, fingerprint, the pruning rules; not the sympy form)."""
    from evosearch.lang.pruning import why_pruned
    text = chain(n)

    def analyse(prog):
        live_statements(prog), prog.canonical_hash(), prog.fingerprint(), why_pruned(prog)

    t0 = time.perf_counter()
    prog = Program.parse(text)
    t1 = time.perf_counter()
    analyse(prog)
    t2 = time.perf_counter()
    out = {"statements": n, "bytes": len(text), "parse_s": t1 - t0, "analysis_s": t2 - t1}
    text = text.replace("def train(", "def again(")   # a second, traced pass on another program
    tracemalloc.start()                                 # (the analyses cache by program)
    prog = Program.parse(text)
    out["parse_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.reset_peak()
    analyse(prog)
    out["analysis_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    out["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def lengths(ns: list[int]) -> None:
    print(f"{'stmts':>7}{'KiB':>7}{'parse s':>9}{'analysis s':>12}{'parse MiB':>11}{'analysis MiB':>14}"
          f"{'max RSS MiB':>13}")
    for n in ns:
        child = subprocess.run([sys.executable, __file__, "--one-length", str(n)], capture_output=True,
                               text=True, check=True)
        r = json.loads(child.stdout)
        print(f"{n:>7}{r['bytes'] / 1024:>7.0f}{r['parse_s']:>9.2f}{r['analysis_s']:>12.2f}"
              f"{r['parse_mib']:>11.1f}{r['analysis_mib']:>14.1f}{r['max_rss_mib']:>13.0f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--lengths", type=int, nargs="+", help="parse and analyse programs of these lengths")
    ap.add_argument("--one-length", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one_length:
        print(json.dumps(_long_program(args.one_length)))
        return
    if args.lengths:
        lengths(args.lengths)
        return
    print(f"{'program':<14}{'stmts':>6}{'parse us':>10}{'check us':>10}{'live us':>9}"
          f"{'hash us':>9}{'fingerprint us':>16}{'fp/parse':>10}")
    for name in reference.names():
        prog = reference.load(name)
        text = str(prog)
        parse = _us(lambda: Program.parse(text), args.repeats)
        chk = _us(lambda: check(prog), args.repeats)
        live = _us(lambda: live_statements(prog), args.repeats)
        h = _us(prog.canonical_hash, args.repeats)
        fp = _us(prog.fingerprint, args.repeats)
        print(f"{name:<14}{len(prog):>6}{parse:>10.0f}{chk:>10.0f}{live:>9.0f}{h:>9.0f}{fp:>16.0f}"
              f"{fp / parse:>10.2f}")


if __name__ == "__main__":
    main()
