"""The ``evosearch`` command: one subcommand per function ``_cmd_<name>``, each importing the layers
it needs when it runs. PROGRAM arguments are anything ``search.loading.load_program`` reads: a
program file, a reference name, RUN:best or RUN:ID."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

# Only light modules here: each command imports the layers it needs (torch and sympy take seconds
# to load), so that `evosearch --help`, `list-tasks`' help and `show` start at once.


def load_program(spec: str):
    """``search.loading.load_program``, imported when a command needs a program."""
    from evosearch.search.loading import load_program as load
    return load(spec)


INTERRUPTED = 130    # the exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it


def _number(kind: type, allowed, wanted: str):
    """An argparse type: ``kind`` (int or float) for which ``allowed(value)`` holds, else the
    option's error says what was ``wanted``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if not allowed(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text}")
        return value
    return parse


_positive_int = _number(int, lambda v: v >= 1, "at least 1")
_positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive number")
_non_negative_float = _number(float, lambda v: 0 <= v < float("inf"), "zero or more")


def _cmd_list(args) -> int:
    from evosearch.lang import reference
    for name in reference.names():
        print(f"{name:<14} {reference.path(name)}\n{'':<14} {reference.description(name)}")
    return 0


def _cmd_tasks(args) -> int:
    import tasks
    if args.config:               # its [tasks] modules, loaded as a search loads them
        from evosearch.search.config import load_config
        load_config(args.config)
    print(f"{'task':<14} {'proxy: steps x batch':<22} {'large: steps x batch':<22} description")
    for name in tasks.names():
        task = tasks.get(name)
        sizes = [f"{task.sizes[s]['steps']} x {task.sizes[s]['batch_size']}" if s in task.sizes else "-"
                 for s in ("proxy", "large")]
        print(f"{name:<14} {sizes[0]:<22} {sizes[1]:<22} {task.description}")
    return 0


def _cmd_check(args) -> int:
    from evosearch.lang.liveness import live_statements
    from evosearch.lang.pruning import why_pruned
    from evosearch.lang.screen import screen_reason
    from evosearch.symbolic.forms import math_text
    prog = load_program(args.program)
    print(prog, end="")
    print(f"statements: {len(prog)} ({len(live_statements(prog))} live)")
    print(f"canonical hash: {prog.canonical_hash()}\nfingerprint:    {prog.fingerprint()}")
    reason = why_pruned(prog)
    screened = None if reason else screen_reason(prog)
    print(f"search would prune it: {reason}" if reason else
          f"search would score it a failure untrained, {screened}" if screened else "search would train it")
    print(math_text(prog))
    return 0


def _cmd_simplify(args) -> int:
    import sympy as sp

    from evosearch.symbolic.exact import simplify_steps
    from evosearch.symbolic.match import FAMILIES, identify
    prog = load_program(args.program)
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
    print(f"family: {family if family else 'none of ' + ', '.join(FAMILIES)}")
    if args.ablate:
        import tasks
        from evosearch.symbolic.ablate import ablate
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
    from evosearch.symbolic.match import match
    result = match(load_program(args.program), args.family)
    print(result)
    return 0 if result.matched else 1


def _cmd_export(args) -> int:
    from evosearch.optim.export import export
    from evosearch.tune.space import LR_DEFAULT_RAW, LR_DEFAULT_SCALED, scales_lr
    prog = load_program(args.program)
    from evosearch.search.loading import names_a_run
    if names_a_run(args.program) and not args.as_is:     # as the search's own discovered.py
        from evosearch.symbolic.exact import simplify_steps
        result = simplify_steps(prog)
        for step in result.steps:
            print(f"simplify: {step}")
        prog = result.program
    lr = args.lr if args.lr is not None else LR_DEFAULT_SCALED if scales_lr(prog) else LR_DEFAULT_RAW
    path = export(prog, args.output, args.class_name, lr=lr)
    print(f"wrote {path} (class {args.class_name})")
    return 0



def _cmd_demo(args) -> int:
    from evosearch.demo import run
    run(args.out)
    return 0


def _cmd_search(args) -> int:
    from evosearch.search.lock import RunFolderLock
    if not args.config and not args.resume:
        raise ValueError("search needs a CONFIG file (or --resume --out RUN to continue a run)")
    if args.out:
        out = Path(args.out)
    elif args.resume:
        raise ValueError("--resume needs --out RUN, the run folder to continue")
    else:  # a fresh, timestamped folder, so that the same command can be run again (as PySR does)
        import time
        out = Path("runs") / f"{Path(args.config).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    with RunFolderLock(out, create=not args.resume):   # a second driver is refused before the slow imports
        return _search(args, out)


def _search(args, out: Path) -> int:
    from dataclasses import replace

    from evosearch.search.config import SearchConfig, load_config
    from evosearch.search.driver import run_search
    from evosearch.search.progress import Progress
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
    with Progress(cfg.max_evals) as progress:
        outcome = run_search(cfg, out, resume=args.resume, progress=progress)
    print(f"search stopped ({outcome.stopped_by}) after {outcome.evaluations} evaluations, "
          f"{outcome.cache_hits} cache hits, {outcome.rejected} children pruned, {outcome.screened} screened "
          f"out, {outcome.seconds:.0f} s")
    if outcome.stopped_by == "interrupted":      # everything is saved; the user asked to stop now
        print(f"saved in {out}: continue with `evosearch search --resume --out {out}`, or export the best "
              f"with `evosearch export {out}:best -o FILE.py --class-name NAME`")
        return INTERRUPTED
    if outcome.best_id is None:
        return 0
    from evosearch.search.store import RunStore
    store = RunStore(out, readonly=True)
    try:
        found = store.hall_of_fame(1)
    finally:
        store.close()
    if not found:           # the search ran as asked; there is just nothing to export
        print(f"every one of the {outcome.evaluations} trained candidates failed, so nothing was exported; "
              f"`evosearch show {out}` counts the reasons")
        return 0
    return _finish(out, args.class_name, cfg.lr)


def _finish(run: Path, class_name: str, lr: float) -> int:
    """Simplify the best program and export it next to the run, its default ``lr`` the one the
    search scored it with (``[tasks] lr``)."""
    from evosearch.optim.export import export
    from evosearch.symbolic.exact import simplify_steps
    from evosearch.symbolic.forms import math_text
    best = load_program(f"{run}:best")
    result = simplify_steps(best)
    (run / "best_simplified.py").write_text(str(result.program))
    path = export(result.program, run / f"{class_name.lower()}.py", class_name, lr=lr)
    print(f"best program ({run}/best.py):\n{best}")
    for step in result.steps:
        print(f"  simplify: {step}")
    print(f"simplified ({run}/best_simplified.py):\n{result.program}\n{math_text(result.program)}")
    print(f"exported as {path} (class {class_name})")
    return 0


def _cmd_show(args) -> int:
    from evosearch.search.readings import readings_text
    from evosearch.search.report import summary, to_json
    s = summary(args.run)
    if args.json:
        print(to_json(s))
        return 0
    print(f"run {args.run}: {s['evaluations']} evaluations, {s['cache_hits']} cache hits, "
          f"{s['pruned']} pruned and {s['screened']} screened out of {s['generated']} children, "
          f"{s['elapsed']:.0f} s")
    print("fitness: 1.0 is tuned AdamW's validation loss on the same task, seed and budget, 0 the untrained "
          "model's; beside it, each task's loss and its ratio to AdamW's")
    if s["failed"]:
        print(f"failed in training: {s['failed']} of {s['evaluations']} trained candidates (fitness -1); reasons:")
        for reason, n in list(s["failure_reasons"].items())[:8]:
            print(f"  {n:6d}  {reason}")
        if len(s["failure_reasons"]) > 8:
            print(f"  ... and {len(s['failure_reasons']) - 8} more (show --json lists them all)")
    if s["screened"]:
        print(f"failed the numeric screen, untrained: {s['screened']} children (fitness -1); reasons:")
        for reason, n in list(s["screen_reasons"].items())[:4]:
            print(f"  {n:6d}  {reason}")
    if s["early_stopped"]:
        stops = s["early_stopped"]
        print(f"early-stopped, behind the population at a checkpoint: {sum(stops.values())} of {s['evaluations']} "
              f"trained candidates ({', '.join(f'{n} at {c} of training' for c, n in stops.items())}); each scored "
              f"with the fitness it had reached")
    if s["evaluations"] and not s["hall_of_fame"]:
        print("no candidate has trained without failing yet: the hall of fame is empty")
    warm = s["warm_start_fitness"]
    print(f"warm start fitness: {'-' if warm is None else f'{warm:.4f}'}  {readings_text(s['warm_start_tasks'])}")
    for rank, e in enumerate(s["hall_of_fame"], 1):
        family = f"{e['family']} ({', '.join(f'{k}={v:.4g}' for k, v in e['constants'].items())})" \
            if e.get("family") else "no known family"
        print(f"#{rank}  candidate {e['id']}  fitness {e['fitness']:.4f}  family: {family}")
        print(f"    {readings_text(e['tasks'])}")
        text = e.get("simplified") or e["program"]
        print("    " + str(text).strip().replace("\n", "\n    "))
    _print_state_front(s["front"]["states"], s["hall_of_fame"])
    return 0


def _print_state_front(front: dict, hall_of_fame: list[dict]) -> None:
    """The best program per number of live state tensors, as a table, then the programs that the
    hall of fame above does not show."""
    if not any(front.values()):
        return
    rank = {e["id"]: i for i, e in enumerate(hall_of_fame, 1)}
    print("best program per number of live state tensors (memory: Adam keeps 2, Lion 1; length = live "
          "statements):")
    print("  states  candidate  fitness  length")
    for bucket, e in front.items():
        if e is None:
            print(f"  {bucket:>6}  {'-':>9}  {'-':>7}  {'-':>6}")
            continue
        notes = ([f"hall of fame #{rank[e['id']]}"] if e["id"] in rank else []) + \
            ([] if e["on_front"] else ["no better than fewer states"])
        print(f"  {bucket:>6}  {e['id']:>9}  {e['fitness']:7.4f}  {e['length']:>6}  {', '.join(notes)}".rstrip())
    for bucket, e in front.items():
        if e is not None and e["id"] not in rank:
            print(f"{bucket} state{'' if bucket == '1' else 's'}: candidate {e['id']}")
            text = e.get("simplified") or e["program"]
            print("    " + str(text).strip().replace("\n", "\n    "))


def _cmd_plot(args) -> int:
    from evosearch.search.plot import plot_run
    for path in plot_run(args.run, args.out):
        print(f"wrote {path}")
    return 0


def _add_tune(subparsers) -> None:
    from evosearch.tune.tunable import TUNABLE
    p = subparsers.add_parser(
        "tune", help="tune a program's lr and constants with population-based training (Ray Tune)",
        description="Tune a program's learning rate, weight decay and interpolation weights with Ray "
                    "Tune's PopulationBasedTraining on one task; report the best setting's fitness "
                    "against the program's defaults and tuned AdamW, and write the tuned program.")
    p.add_argument("program", help="a program file, a reference program name, or RUN:best / RUN:ID")
    p.add_argument("--task", required=True, help="the task to tune on (see tasks.names())")
    p.add_argument("--task-module", action="append", default=[], metavar="FILE",
                   help="a task module of your own (a .py file or package folder) that defines --task; repeatable")
    p.add_argument("--size", default="proxy", help="task size (default proxy)")
    p.add_argument("--samples", type=_positive_int, default=8, help="PBT population size (default 8)")
    p.add_argument("--time-limit", type=_positive_float, help="stop the trials after this many seconds")
    p.add_argument("--address", help="join the Ray cluster at this address (default $RAY_ADDRESS, "
                   "else an embedded local Ray)")
    p.add_argument("--workers", type=_positive_int, help="CPUs of the embedded local Ray (default: all)")
    p.add_argument("--device", default="auto", help='where trials train: "auto" (a GPU when Ray gives the trial '
                   'one), "cpu", "cuda" or "cuda:N"; as a search\'s [executor] device (default auto)')
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPUs each trial asks Ray for (a fraction shares one GPU; default 0)")
    p.add_argument("--seed", type=int, default=0, help="training seed and PBT seed (default 0)")
    p.add_argument("--lr", type=_positive_float, help="the default lr input (centre of the lr range; default 1 "
                   "for programs that scale lr themselves, else 1e-3)")
    p.add_argument("--params", help=f"comma-separated subset of {','.join(TUNABLE)} (default: all)")
    p.add_argument("--iterations", type=_positive_int, default=10, help="training chunks (default 10)")
    p.add_argument("--perturbation-interval", type=_positive_int, default=2,
                   help="iterations between PBT exploit/explore steps (default 2)")
    p.add_argument("--storage", help="folder for Ray Tune's results (default: a temporary folder)")
    p.add_argument("--out", help="the tuned program file (default: tuned_<program>_<task>.py)")
    p.set_defaults(fn=_cmd_tune)


def _cmd_tune(args) -> int:
    import tasks
    from evosearch.tune.pbt import tune
    prog = load_program(args.program)
    tasks.load_modules([str(Path(m).resolve()) for m in args.task_module])
    try:
        tasks.get(args.task, args.size)
    except KeyError as exc:          # an unknown task or size: a usage error, not a crash
        raise ValueError(exc.args[0]) from None
    tunables = [s.strip() for s in args.params.split(",") if s.strip()] if args.params else None
    out = args.out or f"tuned_{re.sub(r'[^0-9A-Za-z]+', '_', Path(args.program).stem)}_{args.task}.py"
    result = tune(prog, args.task, args.samples, args.time_limit, args.address, args.seed, args.size,
                  lr=args.lr, tunables=tunables, iterations=args.iterations,
                  perturbation_interval=args.perturbation_interval, workers=args.workers,
                  storage_path=args.storage, out=out, modules=args.task_module, device=args.device,
                  gpus_per_trial=args.gpus_per_trial)
    print(result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="evosearch", description="Discover deep-learning optimizers by "
                                     "evolutionary search over symbolic update-rule programs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list-programs", help="list the shipped reference programs")
    p.set_defaults(fn=_cmd_list)
    p = sub.add_parser("list-tasks", help="list the proxy tasks with their sizes and descriptions",
                       description="List the built-in tasks, those of installed packages (entry point group "
                                   "evosearch.tasks) and, with --config, the config's [tasks] modules.")
    p.add_argument("--config", help="a search config whose [tasks] modules to list too")
    p.set_defaults(fn=_cmd_tasks)
    p = sub.add_parser("check", help="parse and analyse a program: liveness, hashes, math")
    p.add_argument("program", help="a program file or a reference program name")
    p.set_defaults(fn=_cmd_check)
    p = sub.add_parser("simplify", help="simplify a program exactly, show its math and family")
    p.add_argument("program", help="a program file, a reference name, or RUN:best / RUN:ID")
    p.add_argument("--latex", action="store_true", help="also print the math as LaTeX")
    p.add_argument("--ablate", metavar="TASK", help="then simplify approximately on this task")
    p.add_argument("--tolerance", type=_non_negative_float, default=0.01,
                   help="fitness change allowed by --ablate")
    p.set_defaults(fn=_cmd_simplify)
    p = sub.add_parser("match", help="does a program belong to a family? (exit 0 if it matches)")
    p.add_argument("program", help="a program file, a reference name, or RUN:best / RUN:ID")
    from evosearch.symbolic.families import FAMILIES
    p.add_argument("--family", required=True, choices=FAMILIES)
    p.set_defaults(fn=_cmd_match)
    p = sub.add_parser("export", help="write a program as a standalone torch.optim.Optimizer module",
                       description="Write a program as a module that imports only torch. A program from a "
                                   "run (RUN:best, RUN:ID) is simplified first, as the search's own "
                                   "discovered.py is; files and reference programs are exported as written.")
    p.add_argument("program", help="a program file, a reference program name, or RUN:best / RUN:ID")
    p.add_argument("--as-is", action="store_true", help="export a run's program without simplifying it")
    p.add_argument("-o", "--output", required=True, help="the .py file to write")
    p.add_argument("--class-name", required=True, help="the optimizer class name")
    p.add_argument("--lr", type=_positive_float,
                   help="the constructor's default learning rate (default: 1.0 for a program that scales lr "
                        "by a literal itself, as every searched program does, else 1e-3)")
    p.set_defaults(fn=_cmd_export)
    p = sub.add_parser("search", help="run (or resume) an evolutionary search")
    p.add_argument("config", nargs="?", help="the search's TOML config (optional with --resume)")
    p.add_argument("--out", help="the run folder (default: runs/<config name>-<date>-<time>)")
    p.add_argument("--max-evals", type=_positive_int, help="stop after this many trained candidates")
    p.add_argument("--time-limit", type=_positive_float,
                   help="stop when the run has searched this many seconds (on --resume, counting the "
                        "earlier sessions' time)")
    p.add_argument("--workers", type=_positive_int, help="Ray actors (default: one per CPU)")
    p.add_argument("--address", help="join the Ray cluster at this address (default $RAY_ADDRESS, "
                   "else an embedded local Ray)")
    p.add_argument("--seed", type=int, help="the search's random seed")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--in-process", action="store_true", help="evaluate in this process (debugging)")
    p.add_argument("--class-name", default="Discovered", help="class name of the exported best optimizer")
    p.set_defaults(fn=_cmd_search)
    p = sub.add_parser("show", help="summarise a run: counts, hall of fame, best program per state count")
    p.add_argument("run")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(fn=_cmd_show)
    p = sub.add_parser("plot", help="plot fitness against evaluations, time, program length and state "
                       "count (PNG)")
    p.add_argument("run")
    p.add_argument("--out", help="folder for the PNGs (default: the run folder)")
    p.set_defaults(fn=_cmd_plot)
    _add_tune(sub)
    p = sub.add_parser("demo", help="parse, check, export and train with every reference program")
    p.add_argument("--out", default=None, help="folder for the exported modules (default: a temp dir)")
    p.set_defaults(fn=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a bad program, config or argument is one line on stderr and exit code
    2."""
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:                # `evosearch show RUN | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # (no error at exit either)
        return 0
    except KeyboardInterrupt:              # outside the search loop (which saves and returns 130 itself)
        print("evosearch: interrupted", file=sys.stderr)
        return INTERRUPTED
    except (OSError, ValueError) as exc:   # ProgramError, ConfigError, RunFolderError are ValueErrors
        print(f"evosearch: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:               # SQLite's own errors (a full disk, a locked database)
        import sqlite3
        if not isinstance(exc, sqlite3.Error):
            raise
        print(f"evosearch: error: the run's database: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
