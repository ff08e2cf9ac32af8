"""One run per state file at a time.

Overlapping cron ticks (a slow source, a long catch-up) must never deliver
the same alert twice or fight over SQLite's write lock. The run holds an
exclusive `flock` on `<state>.lock` for its whole duration; the kernel
releases it when the process exits for any reason, kill -9 included, so a
crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def run_lock(state_path: Path) -> Iterator[bool]:
    """Yield True while holding the lock, False if another run holds it."""
    lock_path = Path(f"{state_path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
