"""The live progress line of a search (rich), PySR-style: evaluations, evaluations per second, cache
and prune rates, the best fitness and the best program so far."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.live import Live
from rich.text import Text


class Progress:
    """The live progress line on stderr (a terminal), or a plain line every 10 s (a log)."""

    def __init__(self, max_evals: int, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.max_evals = max_evals
        self.live = Live(Text(""), console=self.console, refresh_per_second=4, transient=False) \
            if self.console.is_terminal else None
        self.last_plain = 0.0
        self.start_evals = None
        self.start_time = time.time()

    def __enter__(self):
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.live.__exit__(*exc)

    def log(self, message: str) -> None:
        """Print a message above the live line."""
        self.console.print(message)

    def update(self, evo, executor, elapsed: float) -> None:
        """Redraw the line from evolution's counters and best program."""
        c = evo.counters
        if self.start_evals is None:
            self.start_evals = c.evaluated
        rate = (c.evaluated - self.start_evals) / max(time.time() - self.start_time, 1e-9)
        children = c.generated or 1
        seen = c.evaluated + c.cache_hits
        best = evo.best
        prog = " ".join(str(best.candidate.program).split()) if best else "-"
        line = (f"evals {c.evaluated}/{self.max_evals}  {rate:.2f}/s  cache {c.cache_hits / max(seen, 1):.0%}  "
                f"pruned {c.rejected / children:.0%}  workers {executor.workers}  "
                f"best {best.fitness:.4f} (#{best.candidate.id})  {elapsed:.0f}s" if best else
                f"evals {c.evaluated}/{self.max_evals}  starting ({elapsed:.0f}s)")
        if self.live:
            self.live.update(Text(f"{line}\n{prog[:200]}"))
        elif time.time() - self.last_plain > 10:
            self.last_plain = time.time()
            print(line, file=sys.stderr, flush=True)
