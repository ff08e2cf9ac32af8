"""One run per state file at a time.

Overlapping cron ticks (a slow source, a long catch-up) must never deliver
the same alert twice or fight over SQLite's write lock. The run holds an
exclusive `flock` on `<state>.lock` for its whole duration; the kernel
releases it when the process exits for any reason, kill -9 included, so a
crashed run never leaves a stale lock behind. The lock file is private
(0600) like everything beside state.db; a directory earful cannot write in
is the operator's to fix, said in one line (StateError), not a traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from .store import StateError
from .store.files import open_private


@contextlib.contextmanager
def run_lock(state_path: Path) -> Iterator[bool]:
    """Yield True while holding the lock, False if another run holds it."""
    lock_path = Path(f"{state_path}.lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_private(lock_path, os.O_RDWR)
    except OSError as exc:
        raise StateError(f"{lock_path}: cannot create the run lock ({exc.strerror or exc}); earful keeps state.db and "
                         f"its lock in {lock_path.parent}, which must exist and be writable by this user") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the pid is for a curious admin; a full disk must not stop the run that holds the lock
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
