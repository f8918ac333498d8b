"""The ``evosearch`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import reference
from .config import ConfigError
from .errors import ProgramError
from .program import Program


def load_program(spec: str) -> Program:
    """A program file, or the name of a shipped reference program (``lion``, ``adamw``, ...)."""
    path = Path(spec)
    if path.exists():
        return Program.load(path)
    if spec in reference.names():
        return reference.load(spec)
    raise ProgramError(f"no program file {spec!r} (and no reference program of that name; "
                       f"known: {', '.join(reference.names())})")


def _cmd_list(args) -> int:
    for name in reference.names():
        print(f"{name:<14} {reference.path(name)}\n{'':<14} {reference.description(name)}")
    return 0


def _cmd_check(args) -> int:
    from .analysis import live_statements, pruning_reason
    from .symbolic import math_text
    prog = load_program_spec(args.program)
    print(prog, end="")
    print(f"statements: {len(prog)} ({len(live_statements(prog))} live)")
    print(f"canonical hash: {prog.canonical_hash()}\nfingerprint:    {prog.fingerprint()}")
    reason = pruning_reason(prog)
    print(f"search would prune it: {reason}" if reason else "search would train it")
    print(math_text(prog))
    return 0


def _cmd_simplify(args) -> int:
    import sympy as sp
    from .match import identify
    from .simplify import simplify_steps
    prog = load_program_spec(args.program)
    result = simplify_steps(prog)
    print("exact simplification:")
    for step in result.steps:
        print(f"  - {step}")
    print(f"\n{result.program}")
    if result.expressions:
        print("math (guards omitted):")
        for key, expr in result.expressions.items():
            lhs = "update" if key == "update" else f"{key} <-"
            print(f"  {lhs} = {sp.sstr(expr, full_prec=False)}" if key == "update" else
                  f"  {lhs} {sp.sstr(expr, full_prec=False)}")
            if args.latex:
                print(f"  LaTeX: {sp.latex(expr)}")
        print(sp.pretty(sp.Eq(sp.Symbol("update"), result.expressions["update"]), use_unicode=False))
    family = identify(result.program)
    print(f"family: {family if family else 'none of ' + ', '.join(__import__('evosearch.match', fromlist=['FAMILIES']).FAMILIES)}")
    if args.ablate:
        import tasks
        from .ablate import ablate
        task = tasks.get(args.ablate)
        ab = ablate(result.program, lambda p: task.evaluate(p, seed=0).fitness, args.tolerance)
        print(f"\napproximate simplification on {args.ablate} (tolerance {args.tolerance}; NOT the same "
              f"function): fitness {ab.fitness_before:.4f} -> {ab.fitness_after:.4f}")
        for step in ab.steps:
            print(f"  - {step}")
        print(f"\n{ab.program}")
        family = identify(ab.program)
        print(f"family: {family if family else 'none'}")
    return 0


def _cmd_match(args) -> int:
    from .match import match
    result = match(load_program_spec(args.program), args.family)
    print(result)
    return 0 if result.matched else 1


def _cmd_export(args) -> int:
    from .export import export
    prog = load_program_spec(args.program)
    path = export(prog, args.output, args.class_name, lr=args.lr)
    print(f"wrote {path} (class {args.class_name})")
    return 0


def _cmd_demo(args) -> int:
    from .demo import run
    run(args.out)
    return 0


def load_program_spec(spec: str) -> Program:
    """A program file, a reference name, or RUN:best / RUN:ID for a program in a run folder."""
    if ":" in spec and not Path(spec).exists():
        run, _, which = spec.rpartition(":")
        from .store import RunStore
        if not (Path(run) / "run.sqlite").is_file():
            raise ProgramError(f"{run!r} is not a run folder (no run.sqlite)")
        store = RunStore(run)
        try:
            if which == "best":
                hof = store.hall_of_fame(1)
                if not hof:
                    raise ProgramError(f"run {run!r} has no evaluated program yet")
                return Program.parse(hof[0]["program"])
            if not which.isdigit() or store.candidate(int(which)) is None:
                raise ProgramError(f"run {run!r} has no candidate {which!r} (use RUN:best or RUN:ID)")
            return Program.parse(store.candidate(int(which))["program"])
        finally:
            store.close()
    return load_program(spec)


def _cmd_search(args) -> int:
    from dataclasses import replace
    from .config import load_config, SearchConfig
    from .progress import Progress
    from .search import run_search
    if args.resume and not args.config:
        cfg = SearchConfig()
    else:
        cfg = load_config(args.config)
    overrides = {k: v for k, v in dict(max_evals=args.max_evals, time_limit=args.time_limit,
                                        workers=args.workers, address=args.address, seed=args.seed).items()
                 if v is not None}
    if args.in_process:
        overrides["in_process"] = True
    cfg = replace(cfg, **overrides)
    if args.out:
        out = Path(args.out)
    elif args.resume:
        raise ConfigError("--resume needs --out RUN, the run folder to continue")
    else:  # a fresh, timestamped folder, so that the same command can be run again (as PySR does)
        import time
        out = Path("runs") / f"{Path(args.config).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    with Progress(cfg.max_evals) as progress:
        outcome = run_search(cfg, out, resume=args.resume, progress=progress)
    print(f"search stopped ({outcome.stopped_by}) after {outcome.evaluations} evaluations, "
          f"{outcome.cache_hits} cache hits, {outcome.rejected} children pruned, {outcome.seconds:.0f} s")
    if outcome.best_id is None:
        return 0
    return _finish(out, args.class_name)


def _finish(run: Path, class_name: str) -> int:
    """Simplify the best program and export it next to the run."""
    from .export import export
    from .simplify import simplify_steps
    from .symbolic import math_text
    best = load_program_spec(f"{run}:best")
    result = simplify_steps(best)
    (run / "best_simplified.py").write_text(str(result.program))
    path = export(result.program, run / f"{class_name.lower()}.py", class_name)
    print(f"best program ({run}/best.py):\n{best}")
    for step in result.steps:
        print(f"  simplify: {step}")
    print(f"simplified ({run}/best_simplified.py):\n{result.program}\n{math_text(result.program)}")
    print(f"exported as {path} (class {class_name})")
    return 0


def _cmd_show(args) -> int:
    from .search import summary, to_json
    if not (Path(args.run) / "run.sqlite").is_file():
        raise ProgramError(f"{args.run!r} is not a run folder (no run.sqlite)")
    s = summary(args.run)
    if args.json:
        print(to_json(s))
        return 0
    print(f"run {args.run}: {s['evaluations']} evaluations, {s['cache_hits']} cache hits, "
          f"{s['pruned']} pruned of {s['generated']} children, {s['elapsed']:.0f} s")
    print(f"warm start fitness: {s['warm_start_fitness']}")
    for rank, e in enumerate(s["hall_of_fame"], 1):
        tf = ", ".join(f"{k} {v:.3f}" for k, v in e["task_fitness"].items())
        family = f"{e['family']} ({', '.join(f'{k}={v:.4g}' for k, v in e['constants'].items())})" \
            if e.get("family") else "no known family"
        print(f"#{rank}  candidate {e['id']}  fitness {e['fitness']:.4f}  ({tf})  family: {family}")
        text = e.get("simplified") or e["program"]
        print("    " + str(text).strip().replace("\n", "\n    "))
    return 0


def _cmd_plot(args) -> int:
    from .plot import plot_run
    for path in plot_run(args.run, args.out):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evosearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list-programs", help="list the shipped reference programs")
    p.set_defaults(fn=_cmd_list)
    p = sub.add_parser("check", help="parse and analyse a program: liveness, hashes, math")
    p.add_argument("program", help="a program file or a reference program name")
    p.set_defaults(fn=_cmd_check)
    p = sub.add_parser("simplify", help="simplify a program exactly, show its math and family")
    p.add_argument("program", help="a program file, a reference name, or RUN:best / RUN:ID")
    p.add_argument("--latex", action="store_true", help="also print the math as LaTeX")
    p.add_argument("--ablate", metavar="TASK", help="then simplify approximately on this task")
    p.add_argument("--tolerance", type=float, default=0.01, help="fitness change allowed by --ablate")
    p.set_defaults(fn=_cmd_simplify)
    p = sub.add_parser("match", help="does a program belong to a family? (exit 0 if it matches)")
    p.add_argument("program", help="a program file, a reference name, or RUN:best / RUN:ID")
    from .match import FAMILIES
    p.add_argument("--family", required=True, choices=FAMILIES)
    p.set_defaults(fn=_cmd_match)
    p = sub.add_parser("export", help="write a program as a standalone torch.optim.Optimizer module")
    p.add_argument("program", help="a program file or a reference program name")
    p.add_argument("-o", "--output", required=True, help="the .py file to write")
    p.add_argument("--class-name", required=True, help="the optimizer class name")
    p.add_argument("--lr", type=float, default=1e-3, help="the default learning rate (default 1e-3)")
    p.set_defaults(fn=_cmd_export)
    p = sub.add_parser("search", help="run (or resume) an evolutionary search")
    p.add_argument("config", nargs="?", help="the search's TOML config (optional with --resume)")
    p.add_argument("--out", help="the run folder (default: runs/<config name>-<date>-<time>)")
    p.add_argument("--max-evals", type=int, help="stop after this many trained candidates")
    p.add_argument("--time-limit", type=float, help="stop after this many seconds")
    p.add_argument("--workers", type=int, help="Ray actors (default: one per CPU)")
    p.add_argument("--address", help="join the Ray cluster at this address (default $RAY_ADDRESS, "
                   "else an embedded local Ray)")
    p.add_argument("--seed", type=int, help="the search's random seed")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--in-process", action="store_true", help="evaluate in this process (debugging)")
    p.add_argument("--class-name", default="Discovered", help="class name of the exported best optimizer")
    p.set_defaults(fn=_cmd_search)
    p = sub.add_parser("show", help="summarise a run: counts, hall of fame")
    p.add_argument("run")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(fn=_cmd_show)
    p = sub.add_parser("plot", help="plot best and median fitness against evaluations and time (PNG)")
    p.add_argument("run")
    p.add_argument("--out", help="folder for the PNGs (default: the run folder)")
    p.set_defaults(fn=_cmd_plot)
    from .tune import register_cli as register_tune
    register_tune(sub)
    p = sub.add_parser("demo", help="parse, check, export and train with every reference program")
    p.add_argument("--out", default=None, help="folder for the exported modules (default: a temp dir)")
    p.set_defaults(fn=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except ProgramError as exc:
        print(f"evosearch: error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"evosearch: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"evosearch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
