"""`state.db.id`: which state this deployment delivered its alerts from.

SQLite treats a missing or 0-byte file as a new, empty database. An emptied
state.db (a full disk truncating it, a careless `> state.db`, a restore gone
wrong) or a different one copied over it would therefore start earful
afresh, silently, and every item the sources still list would be posted to
Slack and the help desk again. The marker beside it remembers the identity
of the state (the moment its schema was first created, which sqlite-utils
records with its first migration) and whether anything was ever delivered
from it. A deployment with a delivery history refuses a state that is empty,
missing or another one, and says how to start over on purpose
(`earful state reset`, which forgets the marker). Without a delivery history
there is nothing to post twice, so a new state is simply adopted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .files import write_private

RESET_HINT = "earful state reset"


@dataclass(frozen=True)
class Recorded:
    """What the marker says: the state's identity, and whether alerts were delivered from it."""

    state: str
    delivered: bool


def marker_path(state: Path) -> Path:
    return Path(f"{state}.id")


def read(state: Path) -> Recorded | None:
    """The marker of `state`, or None when there is none. A damaged marker raises ValueError."""
    try:
        data = json.loads(marker_path(state).read_text(encoding="utf-8"))
        return Recorded(str(data["state"]), bool(data["delivered"]))
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{marker_path(state)} is damaged ({type(exc).__name__}); if state.db is the right one, "
                         f"start over deliberately with `{RESET_HINT}`") from None


def write(state: Path, recorded: Recorded) -> None:
    write_private(marker_path(state), json.dumps({"state": recorded.state, "delivered": recorded.delivered}) + "\n")


def forget(state: Path) -> bool:
    """Remove the marker (the deliberate start over); True if there was one."""
    try:
        marker_path(state).unlink()
    except FileNotFoundError:
        return False
    return True


def is_empty(state: Path) -> bool:
    """No database there: missing, or 0 bytes with no write-ahead log that SQLite would recover from."""
    wal = Path(f"{state}-wal")
    return _size(state) == 0 and _size(wal) == 0


def refusal_before_open(state: Path, recorded: Recorded | None) -> str | None:
    """Why `state` must not be opened (it would start empty over a delivery history), or None."""
    if recorded is None or not recorded.delivered or not is_empty(state):
        return None
    what = "empty" if state.exists() else "missing"
    return (f"{state} is {what}, but this deployment has delivered alerts before ({marker_path(state).name}): "
            f"starting from an empty state would post them all again. Restore state.db from a backup, or start over "
            f"deliberately with `{RESET_HINT}`; nothing was run")


def refusal_after_open(state: Path, recorded: Recorded | None, identity: str) -> str | None:
    """Why the opened state must not be used (it is not the one alerts were delivered from), or None."""
    if recorded is None or not recorded.delivered or recorded.state == identity:
        return None
    return (f"{state} is not the state this deployment delivered alerts from (it was created {identity}; "
            f"{marker_path(state).name} expects {recorded.state}): it was replaced, and earful would post items "
            f"again. Put the right file back, or accept this one deliberately with `{RESET_HINT}`; nothing was run")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
