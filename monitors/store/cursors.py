"""`cursors`: where each monitor's next fetch starts.

Written only by `ingest`, in the transaction that stores what the fetch
found: a crash leaves the old cursor, and the next run fetches again.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from earful.core import iso

CURSOR = "select cursor from cursors where monitor = ?"
SAVE_CURSOR = ("insert into cursors (monitor, cursor, updated_at) values (?, ?, ?) "
               "on conflict (monitor) do update set cursor = excluded.cursor, updated_at = excluded.updated_at")


class CursorsTable:
    """Mixed into `Store`: the statements on `cursors`."""

    def cursor(self, monitor: str) -> dict[str, Any] | None:
        row = self._row(CURSOR, [monitor])
        return json.loads(row["cursor"]) if row else None

    def _save_cursor(self, monitor: str, cursor: dict[str, Any], now: datetime) -> None:
        self.db.execute(SAVE_CURSOR, [monitor, json.dumps(cursor, default=str), iso(now)])
