"""The idle cron tick: decide "nothing to do" without importing anything.

`* * * * * earful run` starts a Python process every minute; most of those
ticks find nothing due. Importing pydantic, ruamel, croniter, sqlite-utils
and friends just to learn that costs more than the whole useful work of a
quiet hour. So every full run writes, beside state.db, a small JSON file
(`state.db.idle.json`, replaced atomically) with a fingerprint of the
configuration it used (files' mtime and size, values of the environment
variables it referenced) and the next moment anything can be due (a monitor's
next cron slot, an outbox retry, a reply re-check, an SLA deadline). A tick
whose fingerprint still matches and whose clock is before that moment exits
after reading that file, using only the standard library and without
touching state.db (beyond a stat: an emptied one falls through to the full
run, which refuses it). Anything unexpected falls through to the full run.
The file is private (0600); when it cannot be written (disk full) the old
one is removed, so no tick trusts a stale "nothing due", and the run fails
with one line (StateError).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from datetime import datetime

    from .config import Config

_STATE_LINE = re.compile(r"""^state:[ \t]*(?P<q>["']?)(?P<path>[^"'#\r\n]+?)(?P=q)[ \t]*(?:#.*)?$""", re.M)


def fingerprint(files: Iterable[str], env_names: Iterable[str]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name in files:
        try:
            st = os.stat(name)
            digest.update(f"{name}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
        except OSError:
            digest.update(f"{name}\0missing\n".encode())
    for name in sorted(env_names):
        digest.update(f"{name}={os.environ.get(name, '')}\n".encode())
    return digest.hexdigest()


def guess_state_path(config_path: Path) -> Path | None:
    """The state file named in cron.yaml, read with a regex (no YAML parser)."""
    try:
        text = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # the full run reports what is wrong with it
        return None
    found = _STATE_LINE.findall(text)
    if len(found) > 1:
        return None
    state = Path(found[0][1].strip()) if found else Path("state.db")
    return state if state.is_absolute() else config_path.parent / state


def cache_path(state: Path) -> Path:
    return Path(f"{state}.idle.json")


def nothing_due(config_path: Path, now: float | None = None) -> bool:
    """True only when certain that a full run would do nothing."""
    state = guess_state_path(config_path)
    if state is None:
        return False
    try:
        if os.stat(state).st_size == 0:
            return False
        cached = json.loads(cache_path(state).read_text(encoding="utf-8"))
        if cached["config_path"] != str(config_path.resolve()) or cached["next_wake"] is None:
            return False
        if (now if now is not None else time.time()) >= cached["next_wake"]:
            return False
        return fingerprint(cached["files"], cached["env_names"]) == cached["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def run_in_progress(config_path: Path) -> bool:
    """True when another earful run holds this deployment's run lock (see `lock.run_lock`).

    Asked before anything heavy is imported or the configuration is loaded, so
    an overlapping tick (a slow catch-up, an overrun) costs milliseconds instead
    of a full configuration load. It only probes: the lock is released at once,
    and the full run takes it again for real, so a race only means the full
    path answers "locked" itself. Any doubt (no state path, no lock file yet,
    no flock on this platform) says False.
    """
    state = guess_state_path(config_path)
    if state is None:
        return False
    try:
        import fcntl

        fd = os.open(f"{state}.lock", os.O_RDWR)
    except (ImportError, OSError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def remember(config: "Config", wake: "datetime | None") -> None:
    """Called at the end of a full run (under the run lock)."""
    files = [str(p.resolve()) for p in config.files]
    files.append(str((config.directory / config.settings.env_file).resolve()))
    env_names = sorted(config.env_names)
    data = {"config_path": str(config.path.resolve()), "fingerprint": fingerprint(files, env_names),
            "next_wake": wake.timestamp() if wake else None, "files": files, "env_names": env_names}
    target = cache_path(config.state_path)
    from .store import StateError
    from .store.files import write_private

    try:
        write_private(target, json.dumps(data))
    except OSError as exc:
        try:
            target.unlink()
        except OSError:
            pass
        raise StateError(f"{target}: cannot write ({exc.strerror or exc}); free some space or make the directory "
                         "writable: nothing delivered or pending is lost, the next run continues") from None
