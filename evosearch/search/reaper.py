"""The reaper: a small process that ends what an embedded Ray left behind when its driver dies.

Ray ties its GCS and raylet to the driver that started them, but the agents and workers the raylet
started outlive a driver killed with SIGKILL by a minute or two (they wait on the dead GCS before
they exit). ``watch()`` starts this module as its own process, in its own session (so that Ctrl-C
in the terminal does not reach it), reading a pipe whose other end only the driver holds.
Every second it notes the driver's descendants; when the pipe closes (the driver is gone, however it
ended) it kills those that are still alive and exits. Linux only (it reads ``/proc``); elsewhere
``watch`` does nothing. Standard library only: it starts in milliseconds.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from pathlib import Path

_PROC = Path("/proc")
_pipe: int | None = None       # this process's end of the reaper's pipe, open for as long as it lives


def watch() -> None:
    """Start the reaper for this process (once; later calls do nothing). Processes that already
    descend from this one are not its business and are left alone."""
    global _pipe
    if _pipe is not None or not (_PROC / "self" / "stat").exists():
        return
    existing = [str(pid) for pid, _ in descendants(os.getpid())]
    read, _pipe = os.pipe()          # both ends close-on-exec: only the reaper's stdin stays open
    try:
        os.posix_spawn(sys.executable, [sys.executable, "-S", __file__, str(os.getpid()), *existing],
                       os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, read, 0)], setsid=True)
    finally:
        os.close(read)


def descendants(*roots: int) -> list[tuple[int, str]]:
    """(pid, start time) of every living descendant of the ``roots``, from one reading of ``/proc``."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat:
                children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found, todo = [], list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child[0])
    return found


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a living process, or None."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()      # after "pid (command)", which may hold spaces
    return int(fields[1]), fields[19]


def _alive(pid: int, start: str) -> bool:
    """Whether the process noted as (pid, start time) still runs (not another one with its pid)."""
    stat = _stat(pid)
    return stat is not None and stat[1] == start


def _reap(driver: int, ignored: set[int]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tracked: dict[int, str] = {}
    while True:
        ready, _, _ = select.select([0], [], [], 1.0)
        if ready and not os.read(0, 4096):
            break                                    # the driver's end closed: it is gone
        tracked = {pid: start for pid, start in tracked.items() if _alive(pid, start)}   # (pids get reused)
        tracked.update((pid, start) for pid, start in descendants(driver)
                       if pid not in ignored and pid != os.getpid())
    tracked = {pid: start for pid, start in tracked.items() if _alive(pid, start)}
    tracked.update(descendants(*tracked))            # and what they started since the last look
    for pid, start in tracked.items():
        if _alive(pid, start):                       # the same process, not a new one with its pid
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    _reap(int(sys.argv[1]), {int(a) for a in sys.argv[2:]})
