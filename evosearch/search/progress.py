"""The live progress line of a search (rich), PySR-style: evaluations, evaluations per second, cache
and prune rates, the best fitness with what it means per task (validation loss against tuned
AdamW's), and the best program so far, its live statements one per line.

The driver calls ``log(message)`` and ``update(evo, executor, elapsed)``, and ``note_best(id, text)``
where a progress object has it (any object with the first two will do: README, "Python API")."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.live import Live
from rich.text import Text

from evosearch.symbolic.exact import remove_dead_code

SHOWN_STATEMENTS = 12     # the live display shows at most this many statements of the best program


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
        self.best_note: tuple[int, str] | None = None      # (candidate id, its per-task readings)
        self._shown: tuple[int, str] | None = None         # (candidate id, its program as shown)

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

    def note_best(self, candidate_id: int, readings: str) -> None:
        """What the new best candidate's fitness means per task (shown under the line)."""
        self.best_note = (candidate_id, readings)
        if not self.live and readings:
            print(f"new best #{candidate_id}: {readings}", file=sys.stderr, flush=True)

    def update(self, evo, executor, elapsed: float) -> None:
        """Redraw the line from evolution's counters and best program."""
        c = evo.counters
        if self.start_evals is None:
            self.start_evals = c.evaluated
        rate = (c.evaluated - self.start_evals) / max(time.time() - self.start_time, 1e-9)
        children = c.generated or 1
        seen = c.evaluated + c.cache_hits
        best = evo.best
        line = (f"evals {c.evaluated}/{self.max_evals}  {rate:.2f}/s  cache {c.cache_hits / max(seen, 1):.0%}  "
                f"pruned {c.rejected / children:.0%}  screened {c.screened / children:.0%}  "
                f"workers {executor.workers}  "
                f"best fitness {best.fitness:.4f} (#{best.candidate.id}; 1.0 = tuned AdamW)  {elapsed:.0f}s"
                if best else f"evals {c.evaluated}/{self.max_evals}  starting ({elapsed:.0f}s)")
        if self.live:
            self.live.update(Text("\n".join([line] + self._best_lines(best))))
        elif time.time() - self.last_plain > 10:
            self.last_plain = time.time()
            print(line, file=sys.stderr, flush=True)

    def _best_lines(self, best) -> list[str]:
        if best is None:
            return []
        cid = best.candidate.id
        lines = []
        if self.best_note and self.best_note[0] == cid and self.best_note[1]:
            lines.append(f"  {self.best_note[1]}")
        if self._shown is None or self._shown[0] != cid:
            live = remove_dead_code(best.candidate.program).program
            body = [f"      {s}" for s in live.statements]
            if len(body) > SHOWN_STATEMENTS:
                body = body[:SHOWN_STATEMENTS - 1] + [f"      ... ({len(body) - SHOWN_STATEMENTS + 1} more)"]
            text = "\n".join([f"  def {live.name}({', '.join(live.inputs)}):"] + body
                              + [f"      return {', '.join(live.outputs)}"])
            self._shown = (cid, text)
        return lines + self._shown[1].splitlines()
