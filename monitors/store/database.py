"""state.db: everything earful remembers between cron ticks.

One SQLite file in WAL mode (readers never block the single writer; the
run lock keeps writers to one), migrated forward with sqlite-utils'
migrations. The important property is transactional: `ingest` stores a
monitor's mentions, their matches, the outbox rows for their alerts and the
monitor's new cursor in ONE transaction, so a crash leaves either all of it
or none of it, and the next run re-fetches from the old cursor.

`Store` is the connection, its transactions and that commit point; every
other statement lives in the per-table mixin it inherits (items.py,
outbox.py, ...). A mixin uses only `self.db`, `self.transaction()`,
`self._rows()` and `self._row()`, which is the seam a second backend
implements.
"""

from __future__ import annotations

import errno
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from earful.core import Match, Mention, iso

from . import marker
from .bulk import BulkLoad
from .cursors import CursorsTable
from .digests import DigestsTable
from .files import create_private
from .flood import FloodTable
from .health import HealthTable
from .items import TEXT_WINDOW, URL_WINDOW, ItemsTable
from .migrations import migrations
from .outbox import OutboxTable
from .quarantine import QuarantineTable
from .queries import QueriesTable
from .records import OutboxRow, Recorded
from .runs import RunsTable
from .search import SearchTable
from .spikes import SpikesTable

__all__ = ["OutboxRow", "StateError", "Store"]  # OutboxRow: digests.py types against it here


ANY_DELIVERED = "select 1 as found from outbox where status = 'delivered' limit 1"


class StateError(Exception):
    """state.db cannot be opened or upgraded (corrupt, not a database, not writable, disk full), or must not be
    used (emptied or replaced while this deployment has delivered alerts from it)."""


def cannot_open(path: Path | str, exc: Exception) -> str:
    """One line for the operator: what failed, and the way out that loses nothing."""
    text = str(exc)
    if "disk is full" in text or getattr(exc, "errno", None) == errno.ENOSPC:
        advice = "the disk is full: free some space and run again (nothing delivered or pending is lost)"
    elif isinstance(exc, OSError) or "readonly" in text or "unable to open" in text:
        advice = "check the file and its directory exist and are writable by this user"
    else:
        advice = (f"it is damaged or not an earful state.db: restore it from a backup, or move it aside and start "
                  f"over deliberately with `{marker.RESET_HINT}` (earful may then alert again on items it had seen)")
    return f"{path}: cannot open the state database ({text}); {advice}"


class Store(ItemsTable, CursorsTable, OutboxTable, RunsTable, QueriesTable, HealthTable, FloodTable, SpikesTable,
            DigestsTable, SearchTable, QuarantineTable, BulkLoad):
    """The state file. Open one per process; not shared across threads."""

    def __init__(self, path: Path | str):
        import sqlite3

        import sqlite_utils

        self.path = path
        memory = str(path) == ":memory:"
        self._marker: marker.Recorded | None = None  # what state.db.id says once this state is known
        self._identity = ""
        try:
            recorded = None if memory else self._check_before_open(Path(path))
            if not memory:
                create_private(Path(path))  # 0600 before SQLite creates it; its -wal and -shm inherit the mode
            self.db = sqlite_utils.Database(memory=True) if memory else sqlite_utils.Database(str(path))
            conn = self.db.conn
            conn.execute("PRAGMA busy_timeout = 30000")
            if not memory:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            # 64 MiB page cache: dedupe lookups stay flat with a million items (measured: 17 -> 7 us per lookup)
            conn.execute("PRAGMA cache_size = -65536")
            conn.execute("PRAGMA foreign_keys = ON")
            migrations.apply(self.db)
            if not memory:
                self._adopt(recorded)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StateError(cannot_open(path, exc)) from None

    # -- the marker beside state.db (see marker.py) ------------------------
    @staticmethod
    def _check_before_open(path: Path) -> marker.Recorded | None:
        try:
            recorded = marker.read(path)
        except ValueError as exc:
            raise StateError(str(exc)) from None
        refusal = marker.refusal_before_open(path, recorded)
        if refusal:
            raise StateError(refusal)
        return recorded

    def _adopt(self, recorded: marker.Recorded | None) -> None:
        """Refuse a state that replaced the one alerts were delivered from; otherwise make the marker name this one."""
        applied = migrations.applied(self.db)
        self._identity = applied[0].applied_at if applied else ""
        refusal = marker.refusal_after_open(Path(self.path), recorded, self._identity)
        if refusal:
            self.db.close()
            raise StateError(refusal)
        self._marker = recorded if recorded is not None and recorded.state == self._identity else None
        self._remember_history()

    def _remember_history(self) -> None:
        """Write the marker when this state is new to it, and once more when its first alert has been delivered."""
        if self._marker is not None and self._marker.delivered:
            return
        current = marker.Recorded(self._identity, self._row(ANY_DELIVERED) is not None)
        if current != self._marker:
            marker.write(Path(self.path), current)
            self._marker = current

    def close(self) -> None:
        import sqlite3

        try:
            if self._identity:
                self._remember_history()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StateError(f"{marker.marker_path(Path(self.path))}: cannot record the delivery history ({exc})") from None
        finally:
            self._identity = ""
            self.db.close()

    def transaction(self) -> AbstractContextManager:
        """Everything inside commits together or not at all; nested blocks join the outer transaction."""
        return self.db.atomic()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row of `sql` as a dict (for the mixins)."""
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _row(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row of `sql`, or None (for the mixins)."""
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def count(self, table: str, *, monitor: str | None = None) -> int:
        """Rows in `table` (a name of this schema, never user input), or only `monitor`'s."""
        if not table.isidentifier():
            raise ValueError(f"not a table name: {table!r}")
        if monitor is None:
            return self._row(f'select count(*) as n from "{table}"')["n"]
        return self._row(f'select count(*) as n from "{table}" where monitor = ?', [monitor])["n"]

    # -- ingestion: the commit point -------------------------------------
    def ingest(self, monitor: str, batch: Iterable[tuple[Mention, Sequence[Match], Sequence[str]]],
               cursor: dict[str, Any], now: datetime,
               on_record: Callable[[Mention, Recorded], None] | None = None,
               route: Callable[[Mention, Sequence[str]], Sequence[str]] | None = None) -> list[Recorded]:
        """Store mentions + matches, enqueue alerts, advance the cursor: atomically.

        `batch` yields (mention, matches, destinations); destinations empty
        means "store, don't alert" (no match, or written by the brand).
        `route(mention, destinations)` narrows those inside the transaction,
        from the very mention being stored (the hub's `routing.Router`: no
        ticket for what the brand had already answered).
        `on_record` runs inside the same transaction for each mention (reply
        tracking opens its queries there, so they commit with the alerts).
        """
        results: list[Recorded] = []
        stamps = (iso(now), iso(now - URL_WINDOW), iso(now - TEXT_WINDOW))
        with self.transaction():
            for mention, matches, destinations in batch:
                record = self._record(monitor, mention, matches, stamps)
                for destination in (route(mention, destinations) if route else destinations):
                    if self.enqueue(f"{record.cluster}#{destination}", record.cluster, destination, monitor, stamps[0]):
                        record.alerts.append(destination)
                if on_record is not None:
                    on_record(mention, record)
                results.append(record)
            self._save_cursor(monitor, cursor, now)
        return results
