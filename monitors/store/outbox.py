"""`outbox`: one row per (item cluster, destination) or notice, delivered exactly once.

The row's `key` is the idempotency key: enqueueing it again is a no-op.
A row goes pending -> sending (written before the send) -> delivered, and
back to pending with a back-off when a send fails; a row found `sending`
later is in doubt and is reconciled before it is sent again.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable

from earful.core import SEVERITY_ORDER, iso, parse_time
from earful.core.redaction import redact

from .records import OutboxRow

ENQUEUE = ("insert into outbox (key, cluster, destination, monitor, status, attempts, next_attempt_at, created_at, kind, "
           "payload) values (?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?) on conflict do nothing")
BY_KEY = "select * from outbox where key = ?"
DELIVERED_REMOTE_ID = "select remote_id from outbox where key = ? and status = 'delivered'"
DELIVERED_OF_CLUSTER = "select * from outbox where cluster = ? and kind = ? and status = 'delivered' order by id"
ALERT_DESTINATIONS = "select destination, key from outbox where cluster = ? and kind = 'alert' order by id"
UNDELIVERED_ALERTS = "select count(*) as n from outbox where cluster = ? and kind = 'alert' and status != 'delivered'"


def _rank(severity: str) -> str:
    """SQL turning the severity name `severity` into its SEVERITY_ORDER number."""
    return f"case {severity} " + " ".join(f"when '{name}' then {n}" for name, n in SEVERITY_ORDER.items()) + " end"


NOTICE_SEVERITY = "json_extract(p.value, '$.severity')"
SEVERITY_RANK = (
    f"coalesce((select max({_rank('m.severity')}) from matches m join items i on i.key = m.item_key "
    "where i.cluster = outbox.cluster), "
    f"(select max({_rank(NOTICE_SEVERITY)}) "
    "from json_each(case when json_valid(outbox.payload) then outbox.payload end, '$.matches') p), "
    f"{SEVERITY_ORDER['medium']})"
)
"""A row's most severe match: the cluster's stored matches, else those a notice carries in its payload,
else medium (a digest)."""

MOST_SEVERE_FIRST = f"order by {SEVERITY_RANK} desc, created_at, id"
"""Delivery order: a high-severity complaint never waits behind older low-severity chatter."""
UNDELIVERED = "status in ('pending', 'sending')"
DUE = (f"select * from outbox where {UNDELIVERED} and (next_attempt_at is null or next_attempt_at <= ?) "
       f"{MOST_SEVERE_FIRST}")
UNDELIVERED_OF = f"select * from outbox where {UNDELIVERED} and destination = ? {MOST_SEVERE_FIRST}"
ALL = "select * from outbox order by id"
WITH_STATUS = "select * from outbox where status = ? order by id"
PENDING_COUNT = "select count(*) as n from outbox where status in ('pending', 'sending')"
NEXT_ATTEMPT = "select min(next_attempt_at) as t from outbox where status in ('pending', 'sending')"
MARK_SENDING = "update outbox set status = 'sending', attempts = attempts + 1, last_attempt_at = ? where id = ?"
MARK_DELIVERED = "update outbox set status = 'delivered', remote_id = ?, delivered_at = ?, last_error = null where id = ?"
MARK_FAILED = "update outbox set status = ?, last_error = ?, next_attempt_at = ?, permanent_error = ? where id = ?"
STATS = "select destination, status, count(*) as n from outbox group by destination, status"
SENT_PER_MONITOR = ("select monitor, count(*) as n from outbox where status = 'delivered' and delivered_at >= ? "
                    "group by monitor")
LAST_ATTEMPTS = ("select destination, status, last_error, last_attempt_at from (select *, row_number() over "
                 "(partition by destination order by last_attempt_at desc, id desc) as n from outbox "
                 "where last_attempt_at is not null) where n = 1")


class OutboxTable:
    """Mixed into `Store`: the statements on `outbox` that enqueue and deliver."""

    def enqueue(self, key: str, cluster: str, destination: str, monitor: str, now: datetime | str,
                kind: str = "alert", payload: dict[str, Any] | None = None) -> bool:
        """Add an outbox row unless one with `key` exists (the idempotency key)."""
        stamp = now if isinstance(now, str) else iso(now)
        cursor = self.db.execute(
            ENQUEUE,
            [key, cluster, destination, monitor, stamp, stamp, kind, None if payload is None else json.dumps(payload, default=str)],
        )
        return cursor.rowcount == 1

    def outbox_row(self, row: dict[str, Any]) -> OutboxRow:
        return OutboxRow.from_row(row)

    def outbox_by_key(self, key: str) -> OutboxRow | None:
        row = self._row(BY_KEY, [key])
        return OutboxRow.from_row(row) if row else None

    def delivered_remote_id(self, key: str) -> str | None:
        row = self._row(DELIVERED_REMOTE_ID, [key])
        return row["remote_id"] if row else None

    def delivered_rows(self, cluster: str, kind: str = "alert") -> list[OutboxRow]:
        return [OutboxRow.from_row(r) for r in self._rows(DELIVERED_OF_CLUSTER, [cluster, kind])]

    def alert_destinations(self, cluster: str) -> dict[str, str]:
        """destination -> outbox key of each alert row of the cluster (what an escalation threads under)."""
        return {r["destination"]: r["key"] for r in self._rows(ALERT_DESTINATIONS, [cluster])}

    def undelivered_alerts(self, cluster: str) -> int:
        return self._row(UNDELIVERED_ALERTS, [cluster])["n"]

    def due_outbox(self, now: datetime, destinations: Iterable[str] | None = None) -> list[OutboxRow]:
        """Rows whose (back-off) time has come, most severe first, then oldest first."""
        wanted = None if destinations is None else set(destinations)
        return [OutboxRow.from_row(r) for r in self._rows(DUE, [iso(now)]) if wanted is None or r["destination"] in wanted]

    def undelivered_outbox(self, destination: str) -> list[OutboxRow]:
        """Every row still to deliver to `destination`, backed off or not, most severe first."""
        return [OutboxRow.from_row(r) for r in self._rows(UNDELIVERED_OF, [destination])]

    def outbox_rows(self, status: str | None = None) -> list[OutboxRow]:
        rows = self._rows(ALL) if status is None else self._rows(WITH_STATUS, [status])
        return [OutboxRow.from_row(r) for r in rows]

    def pending_count(self) -> int:
        return self._row(PENDING_COUNT)["n"]

    def next_outbox_attempt(self) -> datetime | None:
        row = self._row(NEXT_ATTEMPT)
        return parse_time(row["t"]) if row else None

    def mark_sending(self, row_id: int, now: datetime) -> None:
        """Written BEFORE the send: a row found 'sending' later is in doubt."""
        with self.transaction():
            self.db.execute(MARK_SENDING, [iso(now), row_id])

    def mark_delivered(self, row_id: int, remote_id: str, now: datetime) -> None:
        with self.transaction():
            self.db.execute(MARK_DELIVERED, [remote_id, iso(now), row_id])

    def mark_failed(self, row_id: int, error: str, next_attempt_at: datetime, *, permanent: bool = False,
                    in_doubt: bool = False) -> None:
        """Back off; a row `in_doubt` stays 'sending' so the next attempt reconciles before resending."""
        error = redact(error)  # a destination's error may quote its library's exception, URL or headers
        with self.transaction():
            self.db.execute(MARK_FAILED, ["sending" if in_doubt else "pending", error, iso(next_attempt_at), int(permanent), row_id])

    def outbox_stats(self) -> dict[str, dict[str, int]]:
        stats: dict[str, dict[str, int]] = {}
        for row in self._rows(STATS):
            stats.setdefault(row["destination"], {})[row["status"]] = row["n"]
        return stats

    def sent_per_monitor(self, since: datetime) -> dict[str, int]:
        return {r["monitor"]: r["n"] for r in self._rows(SENT_PER_MONITOR, [iso(since)])}

    def last_delivery_attempts(self) -> dict[str, dict[str, Any]]:
        """destination -> its most recent send (status, last_error, last_attempt_at): is it failing right now?"""
        return {r["destination"]: r for r in self._rows(LAST_ATTEMPTS)}
