"""The run-folder lock: one driver per run folder.

A driver holds an OS file lock (``flock``) on ``RUN/driver.lock`` for as long as it runs, and removes
the file when it stops. The kernel releases the lock when the process ends, however it ends (SIGKILL
included): a killed driver leaves the file behind but not the lock, and ``--resume`` needs no
clean-up. A second driver on the same folder is
refused at once with the holder's PID and host, which the holder writes into the file. Reading a run
(``show``, ``plot``, ``export``) takes no lock: SQLite's WAL lets readers in while the driver writes.

On a network file system the lock is as good as the file system's locking (NFSv4 supports it; some
FUSE mounts silently do not): keep run folders on a local disk or a file system that does.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from .store import RunFolderError

LOCK_FILE = "driver.lock"


class RunInUseError(RunFolderError):
    """Another driver holds the run folder; the message names its PID and host."""


class RunFolderLock:
    """``with RunFolderLock(folder):`` hold ``folder`` for this process, or raise RunInUseError.
    ``create=True`` makes the folder for a new run (and removes it again at the exit if nothing but
    the lock was written into it: a search refused before it started leaves no folder behind);
    otherwise the folder must hold a run to resume. Re-entrant within a process: the command line takes the
    lock before its slow imports, and ``run_search`` takes it again."""

    def __init__(self, folder: str | Path, create: bool = False):
        self.folder = Path(folder)
        self.create = create
        self.made = False

    def __enter__(self) -> RunFolderLock:
        key = self.folder.resolve()
        if key in _held:
            _held[key][1] += 1
            return self
        if self.create:
            self.made = not self.folder.exists()
            self.folder.mkdir(parents=True, exist_ok=True)
        elif not (self.folder / "run.sqlite").is_file():
            raise RunFolderError(f"{str(self.folder)!r} holds no run to resume (no run.sqlite)")
        f = _lock(self.folder / LOCK_FILE, self.folder)
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                            "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        f.flush()
        _held[key] = [f, 1]
        return self

    def __exit__(self, *exc) -> None:
        key = self.folder.resolve()
        _held[key][1] -= 1
        if _held[key][1]:
            return
        f = _held.pop(key)[0]
        (self.folder / LOCK_FILE).unlink(missing_ok=True)    # unlinked while held (see _lock), then freed
        f.close()
        if self.made and not any(self.folder.iterdir()):
            try:
                self.folder.rmdir()
            except OSError:            # another search has just begun to use it
                pass


def _lock(path: Path, folder: Path):
    """The lock file at ``path``, open and flock-ed by this process. A holder unlinks the file before
    it lets go, so a lock taken on a file that is no longer at ``path`` is worthless: try again on
    the new one. (A driver that died holding it left the file behind, unlocked: that one is taken.)"""
    while True:
        f = open(path, "a+")           # not truncated before the lock is ours: the holder wrote it
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = _holder_text(f.read())
            f.close()
            raise RunInUseError(f"{str(folder)!r} is in use by {holder}: wait for that search to end, "
                                f"or stop it (Ctrl-C saves it) before using this run folder") from None
        except BaseException:
            f.close()
            raise
        try:
            if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                return f
        except FileNotFoundError:
            pass
        f.close()


_held: dict[Path, list] = {}     # folder -> [open lock file, depth]: the folders this process holds


def _holder_text(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"the search of PID {holder['pid']} on host {holder['host']} (since {holder['since']})"
    except (ValueError, KeyError, TypeError):
        return "another search (which has not written its PID yet)"
