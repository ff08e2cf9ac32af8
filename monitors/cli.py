"""Entry point of the `earful` command.

Kept tiny on purpose: a plain `earful run` from cron first asks
`idle.nothing_due`, which needs only the standard library, and exits at once
when nothing is due. Only otherwise are typer, rich, pydantic and the rest
imported (see `commands`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_CONFIG = "cron.yaml"


def _idle_config(argv: list[str]) -> Path | None:
    """The config path if argv is a plain scheduled `run`, else None."""
    if not argv or argv[0] != "run":
        return None
    rest = [arg for arg in argv[1:] if arg not in ("--quiet", "-q")]
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
        from .idle import nothing_due

        if nothing_due(config):
            sys.exit(0)
    from .commands import app
    from .store import StateError

    try:
        app(args=args, prog_name="earful", standalone_mode=True)
    except StateError as exc:  # typer re-raises non-click errors; this one is the operator's to fix, not a bug
        sys.stderr.write(f"earful: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
