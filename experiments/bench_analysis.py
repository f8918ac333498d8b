"""Benchmark: the cost of analysing a program, in microseconds per program and as a ratio to
parsing it (measured in one process). The search pays these for every child it generates.

    python experiments/bench_analysis.py [--repeats 300]
"""

from __future__ import annotations

import argparse
import time

from evosearch import Program, reference
from evosearch.lang.kinds import check
from evosearch.lang.liveness import live_statements


def _us(fn, repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e6


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=300)
    args = ap.parse_args(argv)
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
