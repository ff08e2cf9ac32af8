"""Tests that need something from outside Python: skipped loudly on a developer's
machine that lacks it, failed in CI, so they can never silently not run.

A test declares the need with a marker (`@pytest.mark.chromium`, or
`pytestmark = pytest.mark.chromium` for a module); conftest consults `NEEDS`.
CI runs with the environment variable CI set (any non-empty value but
"false"/"0"), and there a missing need fails every test that declared it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Need:
    marker: str
    what: str
    how: str
    present: Callable[[], bool]

    def reason(self) -> str:
        return f"needs {self.what}, which this machine lacks ({self.how})"


def _chromium() -> bool:
    path = os.environ.get("EARFUL_CHROMIUM", "/usr/bin/chromium")
    return os.path.isfile(path) and os.access(path, os.X_OK) or (os.sep not in path and shutil.which(path) is not None)


def postgres_dsn() -> str:
    """Where the PostgreSQL tests connect to create their own databases (a libpq connection string)."""
    return os.environ.get("EARFUL_TEST_POSTGRES", "dbname=postgres")


def _postgresql() -> bool:
    try:
        import psycopg

        with psycopg.connect(postgres_dsn(), connect_timeout=3):
            return True
    except Exception:  # not installed, no server, no role: all mean "lacks it"
        return False


NEEDS = {
    need.marker: need
    for need in (
        Need("chromium", "Debian's chromium (Playwright drives it for the review sites)",
             "sudo apt-get install chromium, or point $EARFUL_CHROMIUM at one; .ci/run installs it", _chromium),
        Need("postgresql", "a PostgreSQL server this user can create databases on (the second state backend)",
             "apt-get install postgresql, start it with pg_ctlcluster, `createuser -s $USER`, or set "
             "$EARFUL_TEST_POSTGRES to a libpq connection string; .ci/run does all this", _postgresql),
    )
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
