"""The state opened for reading alone, for `earful backtest`'s promise to write nothing.

`Store(path)` migrates an older schema and keeps the marker file beside
state.db current: both write. `ReadOnlyStore` does neither; its connection
is opened with `mode=ro`, so SQLite itself refuses any statement that
would write, whichever method runs it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .database import StateError, Store, cannot_open


class ReadOnlyStore(Store):
    """Every reading method of `Store`, on a connection that cannot write."""

    def __init__(self, path: Path | str):  # noqa: D107 - no super().__init__: that would migrate and mark
        import sqlite_utils

        self.path = path
        try:
            conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("select count(*) from sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StateError(cannot_open(path, exc)) from None
        self.db = sqlite_utils.Database(conn)

    def close(self) -> None:
        self.db.close()
