"""The idle cron tick: decide "nothing to do" without importing anything.

`* * * * * earful run` starts a Python process every minute; most of those
ticks find nothing due. Importing pydantic, ruamel, croniter, sqlite-utils
and friends just to learn that costs more than the whole useful work of a
quiet hour. So every full run stores, in state.db, a fingerprint of the
configuration it used (files' mtime and size, values of the environment
variables it referenced) and the next moment anything can be due (a monitor's
next cron slot, an outbox retry). A tick whose fingerprint still matches and
whose clock is before that moment exits after reading one SQLite row, using
only the standard library. Anything unexpected falls through to the full run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from datetime import datetime

    from .config import Config
    from .store import Store

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
    except OSError:
        return None
    found = _STATE_LINE.findall(text)
    if len(found) > 1:
        return None
    state = Path(found[0][1].strip()) if found else Path("state.db")
    return state if state.is_absolute() else config_path.parent / state


def nothing_due(config_path: Path, now: float | None = None) -> bool:
    """True only when certain that a full run would do nothing."""
    state = guess_state_path(config_path)
    if state is None or not state.exists():
        return False
    try:
        con = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1)
        try:
            row = con.execute(
                "select fingerprint, next_wake, files, env_names from idle_cache where config_path = ?",
                [str(config_path.resolve())],
            ).fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return False
    if row is None or row[1] is None:
        return False
    stored, wake, files, env_names = row
    if (now if now is not None else time.time()) >= wake:
        return False
    return fingerprint(json.loads(files), json.loads(env_names)) == stored


def remember(config: "Config", store: "Store", wake: "datetime | None") -> None:
    """Called at the end of a full run (under the run lock)."""
    files = [str(p.resolve()) for p in config.files]
    files.append(str((config.directory / config.settings.env_file).resolve()))
    env_names = sorted(config.env_names)
    store.save_idle_cache(str(config.path.resolve()), fingerprint(files, env_names), wake, files, env_names)
