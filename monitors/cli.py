"""Entry point of the `earful` command.

Kept tiny on purpose: a plain `earful run` from cron first asks
`idle.nothing_due`, which needs only the standard library, and exits at once
when nothing is due. Only otherwise are typer, rich, pydantic and the rest
imported (see `commands`).
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

DEFAULT_CONFIG = "cron.yaml"
QUIET = {"--quiet", "-q"}
LOCKED_OUT = "another earful run is still working on this state file; this tick does nothing."


def _idle_config(argv: list[str]) -> Path | None:
    """The config path if argv is a plain scheduled `run`, else None."""
    if not argv or argv[0] != "run":
        return None
    rest = [arg for arg in argv[1:] if arg not in QUIET]
    config = os.environ.get("EARFUL_CONFIG", DEFAULT_CONFIG)
    if len(rest) == 2 and rest[0] in ("--config", "-c"):
        config = rest[1]
    elif len(rest) == 1 and rest[0].startswith("--config="):
        config = rest[0].split("=", 1)[1]
    elif rest:
        return None
    return Path(config)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    config = _idle_config(args)
    if config is not None:
        from .idle import nothing_due, run_in_progress

        if nothing_due(config):
            sys.exit(0)
        if run_in_progress(config):
            if not QUIET.intersection(args):
                print(LOCKED_OUT)
            sys.exit(0)
    from .commands import app

    try:
        app(args=args, prog_name="earful", standalone_mode=True)
    except Exception as exc:  # typer re-raises non-click errors; the state's faults are the operator's to fix
        message = fault_message(exc)
        if message is None:
            raise  # a bug: its traceback is what a report needs
        sys.stderr.write(f"earful: {message}\n")
        sys.exit(1)


# A file system that refuses a write: full, read-only, not ours, failing.
_STATE_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def fault_message(exc: BaseException) -> str | None:
    """One line for a fault of the state or its directory (not a bug), or None.

    Disk full or a read-only directory can strike any write of a run, after
    the monitors have stored their batches: each write is a transaction (an
    outbox row stays pending, or "sending" to be reconciled), so the next
    run continues and delivers exactly once. The operator needs the cause,
    not a traceback.
    """
    import sqlite3

    from .store import StateError

    if isinstance(exc, StateError):
        return str(exc)
    if isinstance(exc, sqlite3.DatabaseError):
        text = str(exc)
        if "disk is full" in text:
            advice = "free some space and run again: nothing delivered or pending is lost, the next run continues"
        elif "malformed" in text or "not a database" in text:
            advice = ("state.db is damaged: restore it from a backup, or move it aside and start over deliberately "
                      "with `earful state reset`")
        else:
            advice = "check state.db and its directory are writable; the next run continues where this one stopped"
        return f"the state database failed ({text}); {advice}"
    if isinstance(exc, OSError) and exc.errno in _STATE_FAULTS:
        where = f"{exc.filename}: " if exc.filename else ""
        return (f"{where}{exc.strerror or exc}; free some space or make it writable and run again: nothing delivered "
                "or pending is lost")
    return None


if __name__ == "__main__":  # pragma: no cover
    main()
