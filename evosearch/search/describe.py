"""Hall-of-fame descriptions: each program's simplified form and the family it belongs to (sympy,
up to a second per program), made once per canonical hash and kept in the run store."""

from __future__ import annotations

import queue
import threading
import time

from evosearch.lang.program import Program
from evosearch.symbolic.exact import simplify
from evosearch.symbolic.match import identify


class Describer:
    """Describes hall-of-fame programs (sympy: up to a second each) on a background thread, so that
    the driver loop never waits for it; the hall of fame shows each description once it is ready.
    During the search it describes at most one program per ``interval`` seconds: on a 2-core machine
    with 2 workers, describing every new best took ~40% of a core from the workers. ``stop`` ends it
    without waiting for what is queued: a search's end is not held for descriptions nobody asked
    for (``evosearch show`` describes the rest for the screen; ``search`` simplifies its best)."""

    def __init__(self, interval: float = 10.0):
        self.interval = interval
        self.known: dict[str, dict] = {}
        self.queued: set[str] = set()
        self.queue: queue.Queue = queue.Queue()
        self._new = False
        self.finishing = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="evosearch-describer")
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            h, text = item
            started = time.time()
            self.known[h] = describe_program(Program.parse(text))
            self._new = True
            while time.time() - started < self.interval and not self.finishing:
                time.sleep(0.05)

    def get(self, canonical_hash: str, program_text: str) -> dict:
        """The description when ready, else ``{}`` (and the program is queued, once)."""
        if canonical_hash in self.known:
            return self.known[canonical_hash]
        if canonical_hash not in self.queued:
            self.queued.add(canonical_hash)
            self.queue.put((canonical_hash, program_text))
        return {}

    def fresh(self) -> bool:
        """True once after new descriptions became ready."""
        new, self._new = self._new, False
        return new

    def stop(self) -> None:
        """Stop describing: the program being described is finished on the (daemon) thread, the
        rest of the queue is dropped; nothing waits."""
        self.finishing = True
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        self.queue.put(None)


def describe_program(prog: Program) -> dict:
    """``{"simplified": text, "family": str or None, "constants": {...}}`` for a program."""
    try:
        small = simplify(prog)
        fam = identify(small)
    except Exception as exc:  # noqa: BLE001 - a description must never stop a search
        return {"simplified": None, "family": None, "constants": {}, "note": f"{type(exc).__name__}: {exc}"}
    return {"simplified": str(small), "family": fam.family if fam else None,
            "constants": fam.constants if fam else {}}
