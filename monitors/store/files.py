"""Files earful keeps beside state.db are readable by their owner only.

state.db holds every mention, author and triage action; its lock, idle and
marker files say what runs when. None of it is anyone else's business, and a
umask of 022 (or 000 under some cron setups) would make each of them world
readable. So every such file is created with mode 0600, whatever the umask,
and SQLite's own -wal and -shm files follow: SQLite gives them the mode of
the database file.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE = 0o600


def open_private(path: Path, flags: int) -> int:
    """`os.open(path, flags | O_CREAT)` with mode 0600, also for a file of ours an older version left readable."""
    fd = os.open(path, flags | os.O_CREAT, PRIVATE)
    try:
        status = os.fstat(fd)
        if status.st_mode & 0o777 != PRIVATE and status.st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_private(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists (then its mode is the owner's choice)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    except FileExistsError:
        pass


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (a reader sees the old or the new content); mode 0600.

    On failure (disk full, read-only directory) the half-written temporary
    file is removed and the error raised; `path` keeps its old content.
    """
    temporary = path.with_name(path.name + ".tmp")
    try:
        fd = open_private(temporary, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        try:
            temporary.unlink()
        except OSError:
            pass
        raise
