"""state.db: everything earful remembers between cron ticks.

One SQLite file in WAL mode (readers never block the single writer; the
run lock keeps writers to one), migrated forward with sqlite-utils'
migrations. The important property is transactional: `ingest` stores a
monitor's mentions, their matches, the outbox rows for their alerts and the
monitor's new cursor in ONE transaction, so a crash leaves either all of it
or none of it, and the next run re-fetches from the old cursor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from earful.core import Mention
from earful.core import Match

from earful.core import iso, parse_time

from ..dedupe import canonical_url, text_fingerprint
from .migrations import migrations

URL_WINDOW = timedelta(days=30)
TEXT_WINDOW = timedelta(days=7)


@dataclass
class Recorded:
    """What `ingest` decided for one mention."""

    key: str
    outcome: str  # new | duplicate | clustered | updated
    cluster: str
    alerts: list[str] = field(default_factory=list)  # destinations newly enqueued


@dataclass
class OutboxRow:
    id: int
    key: str
    cluster: str
    destination: str
    monitor: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    remote_id: str | None
    created_at: datetime
    kind: str = "alert"
    payload: dict[str, Any] | None = None


_MENTION_FIELDS = [f.name for f in fields(Mention) if f.name != "raw"]


def mention_to_row(mention: Mention) -> dict[str, Any]:
    row = {name: getattr(mention, name) for name in _MENTION_FIELDS}
    row["created_at"] = iso(mention.created_at)
    row["author_is_brand"] = int(mention.author_is_brand)
    row["brand_replied"] = None if mention.brand_replied is None else int(mention.brand_replied)
    row["raw"] = json.dumps(dict(mention.raw), default=str, ensure_ascii=False)
    return row


def row_to_mention(row: dict[str, Any]) -> Mention:
    values = {name: row[name] for name in _MENTION_FIELDS}
    values["created_at"] = parse_time(row["created_at"])
    values["author_is_brand"] = bool(row["author_is_brand"])
    values["brand_replied"] = None if row["brand_replied"] is None else bool(row["brand_replied"])
    values["raw"] = json.loads(row["raw"] or "{}")
    return Mention(**values)


def match_to_row(match: Match) -> dict[str, Any]:
    return {
        "item_key": match.mention_key,
        "pack": match.pack,
        "rule_id": match.rule_id,
        "labels": json.dumps(list(match.labels)),
        "severity": match.severity,
        "destinations": None if match.destinations is None else json.dumps(list(match.destinations)),
        "reply_within_s": None if match.reply_within is None else int(match.reply_within.total_seconds()),
        "escalate": None if match.escalate is None else json.dumps(list(match.escalate)),
    }


def row_to_match(row: dict[str, Any]) -> Match:
    def listed(value: str | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(json.loads(value))

    return Match(
        mention_key=row["item_key"],
        rule_id=row["rule_id"],
        pack=row["pack"],
        labels=tuple(json.loads(row["labels"])),
        severity=row["severity"],
        destinations=listed(row["destinations"]),
        reply_within=None if row["reply_within_s"] is None else timedelta(seconds=row["reply_within_s"]),
        escalate=listed(row["escalate"]),
    )


_ITEM_COLUMNS = [*_MENTION_FIELDS, "raw", "key", "monitor", "canonical_url", "fingerprint", "cluster",
                 "first_seen_at", "last_seen_at"]
_INSERT_ITEM = f"insert into items ({', '.join(_ITEM_COLUMNS)}) values ({', '.join('?' for _ in _ITEM_COLUMNS)})"
_MATCH_COLUMNS = ["item_key", "pack", "rule_id", "labels", "severity", "destinations", "reply_within_s", "escalate"]
_UPSERT_MATCH = (f"insert or replace into matches ({', '.join(_MATCH_COLUMNS)}) "
                 f"values ({', '.join('?' for _ in _MATCH_COLUMNS)})")


class StateError(Exception):
    """state.db cannot be opened or upgraded (corrupt, not a database, not writable, disk full)."""


class Store:
    """The state file. Open one per process; not shared across threads."""

    def __init__(self, path: Path | str):
        import sqlite3

        import sqlite_utils

        self.path = path
        memory = str(path) == ":memory:"
        try:
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
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StateError(
                f"{path}: cannot open the state database ({exc}). Check the file and its directory are writable "
                "and that it is an earful state.db; if it is damaged, move it aside: earful starts a fresh one "
                "(and may alert again on items it had seen)"
            ) from None

    def close(self) -> None:
        self.db.close()

    # -- plain SQL, for the modules that own their tables (replies, health, flood, digest) --
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row of `sql` as a dict."""
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def row(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row of `sql`, or None."""
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    # -- monitors and runs ----------------------------------------------
    def monitor_state(self, name: str) -> dict[str, Any]:
        return self.row("select * from monitor_state where monitor = ?", [name]) or {"monitor": name}

    def all_monitor_states(self) -> dict[str, dict[str, Any]]:
        return {row["monitor"]: row for row in self.rows("select * from monitor_state")}

    def start_run(self, monitor: str, now: datetime) -> int:
        """Record a run as started. `last_start` is written only when it
        finishes, so a run killed half-way leaves its monitor due."""
        with self.db.atomic():
            cursor = self.db.execute(
                "insert into runs (monitor, started_at, status) values (?, ?, 'running')", [monitor, iso(now)]
            )
            return cursor.lastrowid

    def finish_run(self, run_id: int, monitor: str, *, ok: bool, now: datetime, fetched: int = 0, new_items: int = 0,
                   alerts: int = 0, requests: int = 0, error: str | None = None, defer_until: datetime | None = None,
                   not_modified: bool = False) -> None:
        with self.db.atomic():
            self.db.execute(
                "update runs set finished_at = ?, status = ?, fetched = ?, new_items = ?, alerts = ?, requests = ?, "
                "error = ?, not_modified = ? where id = ?",
                [iso(now), "ok" if ok else "failed", fetched, new_items, alerts, requests, error, int(not_modified), run_id],
            )
            self.db.execute(
                "insert into monitor_state (monitor, last_start) select monitor, started_at from runs where id = ? "
                "on conflict(monitor) do update set last_start = excluded.last_start",
                [run_id],
            )
            if ok:
                self.db.execute(
                    "update monitor_state set last_success = ?, last_status = 'ok', consecutive_failures = 0, "
                    "last_error = null, defer_until = null, "
                    "last_new_item_at = case when ? > 0 then ? else last_new_item_at end where monitor = ?",
                    [iso(now), new_items, iso(now), monitor],
                )
            else:
                self.db.execute(
                    "update monitor_state set last_status = 'failed', consecutive_failures = coalesce(consecutive_failures, 0) + 1, "
                    "last_error = ?, defer_until = ? where monitor = ?",
                    [error, iso(defer_until), monitor],
                )

    def recent_runs(self, monitor: str, limit: int = 20) -> list[dict[str, Any]]:
        return self.rows("select * from runs where monitor = ? order by id desc limit ?", [monitor, limit])

    def run_totals(self, since: datetime) -> dict[str, dict[str, Any]]:
        rows = self.rows(
            "select monitor, count(*) runs, sum(status = 'failed') failures, sum(new_items) new_items, sum(alerts) alerts "
            "from runs where started_at >= ? group by monitor",
            [iso(since)],
        )
        return {row["monitor"]: row for row in rows}

    def mark_abandoned_runs(self, now: datetime) -> int:
        """Runs still 'running' belong to a process that died (we hold the lock)."""
        cursor = self.db.execute(
            "update runs set status = 'crashed', finished_at = ?, error = 'the process died during this run' "
            "where status = 'running'",
            [iso(now)],
        )
        self.db.conn.commit()
        return cursor.rowcount

    # -- request budgets ----------------------------------------------
    def budget_used(self, monitor: str, period: str) -> int:
        row = self.row("select used from budgets where monitor = ? and period = ?", [monitor, period])
        return row["used"] if row else 0

    def save_budget(self, monitor: str, period: str, used: int, limit: int | None, now: datetime) -> None:
        with self.db.atomic():
            self.db["budgets"].upsert({"monitor": monitor, "period": period, "used": used, "limit_": limit,
                                       "updated_at": iso(now)}, pk=("monitor", "period"))

    def budgets(self, period: str) -> dict[str, dict[str, Any]]:
        return {r["monitor"]: r for r in self.rows("select * from budgets where period = ?", [period])}

    # -- cursors --------------------------------------------------------
    def cursor(self, monitor: str) -> dict[str, Any] | None:
        row = self.row("select cursor from cursors where monitor = ?", [monitor])
        return json.loads(row["cursor"]) if row else None

    # -- ingestion: the commit point -------------------------------------
    def ingest(self, monitor: str, batch: Iterable[tuple[Mention, Sequence[Match], Sequence[str]]],
               cursor: dict[str, Any], now: datetime,
               on_record: Callable[[Mention, Recorded], None] | None = None) -> list[Recorded]:
        """Store mentions + matches, enqueue alerts, advance the cursor: atomically.

        `batch` yields (mention, matches, destinations); destinations empty
        means "store, don't alert" (no match, or written by the brand).
        `on_record` runs inside the same transaction for each mention (reply
        tracking opens its queries there, so they commit with the alerts).
        """
        results: list[Recorded] = []
        stamps = (iso(now), iso(now - URL_WINDOW), iso(now - TEXT_WINDOW))
        with self.db.atomic():
            for mention, matches, destinations in batch:
                record = self._record(monitor, mention, matches, stamps)
                for destination in destinations:
                    if self._enqueue(record.cluster, destination, monitor, stamps[0]):
                        record.alerts.append(destination)
                if on_record is not None:
                    on_record(mention, record)
                results.append(record)
            self.db.execute(
                "insert into cursors (monitor, cursor, updated_at) values (?, ?, ?) "
                "on conflict(monitor) do update set cursor = excluded.cursor, updated_at = excluded.updated_at",
                [monitor, json.dumps(cursor, default=str), iso(now)],
            )
        return results

    def _record(self, monitor: str, mention: Mention, matches: Sequence[Match], stamps: tuple[str, str, str]) -> Recorded:
        """Insert or recognise one mention; `stamps` = (now, url window start, text window start) as ISO text."""
        now, url_since, text_since = stamps
        key = mention.key
        execute = self.db.conn.execute
        existing = execute("select cluster, text, title from items where key = ?", (key,)).fetchone()
        if existing:
            cluster, old_text, old_title = existing
            outcome = "duplicate"
            if (old_text, old_title) != (mention.text, mention.title):
                row = mention_to_row(mention)
                execute("update items set title = ?, text = ?, brand_replied = ?, raw = ?, last_seen_at = ? where key = ?",
                        (row["title"], row["text"], row["brand_replied"], row["raw"], now, key))
                outcome = "updated"
            self._save_matches(matches)
            return Recorded(key, outcome, cluster)

        canonical = canonical_url(mention.link_url or mention.url)
        fingerprint = text_fingerprint(mention.title, mention.text)
        cluster = None
        if canonical:
            hit = execute("select cluster from items where canonical_url = ? and first_seen_at >= ? "
                          "order by first_seen_at limit 1", (canonical, url_since)).fetchone()
            cluster = hit[0] if hit else None
        if cluster is None and fingerprint:
            hit = execute("select cluster from items where fingerprint = ? and first_seen_at >= ? "
                          "order by first_seen_at limit 1", (fingerprint, text_since)).fetchone()
            cluster = hit[0] if hit else None
        outcome = "clustered" if cluster else "new"
        row = mention_to_row(mention)
        row.update(key=key, monitor=monitor, canonical_url=canonical, fingerprint=fingerprint,
                   cluster=cluster or key, first_seen_at=now, last_seen_at=now)
        execute(_INSERT_ITEM, [row[name] for name in _ITEM_COLUMNS])
        self._save_matches(matches)
        return Recorded(key, outcome, cluster or key)

    def _save_matches(self, matches: Sequence[Match]) -> None:
        if matches:
            self.db.conn.executemany(_UPSERT_MATCH, [[row[c] for c in _MATCH_COLUMNS] for row in map(match_to_row, matches)])

    def _enqueue(self, cluster: str, destination: str, monitor: str, now: datetime | str) -> bool:
        return self.enqueue(f"{cluster}#{destination}", cluster, destination, monitor, now)

    def enqueue(self, key: str, cluster: str, destination: str, monitor: str, now: datetime | str,
                kind: str = "alert", payload: dict[str, Any] | None = None) -> bool:
        """Add an outbox row unless one with `key` exists (the idempotency key)."""
        stamp = now if isinstance(now, str) else iso(now)
        cursor = self.db.execute(
            "insert or ignore into outbox (key, cluster, destination, monitor, status, attempts, next_attempt_at, created_at, "
            "kind, payload) values (?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?)",
            [key, cluster, destination, monitor, stamp, stamp, kind, None if payload is None else json.dumps(payload, default=str)],
        )
        return cursor.rowcount == 1

    def delivered_remote_id(self, key: str) -> str | None:
        row = self.row("select remote_id from outbox where key = ? and status = 'delivered'", [key])
        return row["remote_id"] if row else None

    def delivered_rows(self, cluster: str, kind: str = "alert") -> list["OutboxRow"]:
        rows = self.rows("select * from outbox where cluster = ? and kind = ? and status = 'delivered' order by id", [cluster, kind])
        return [self.outbox_row(r) for r in rows]

    # -- items -----------------------------------------------------------
    def item(self, key: str) -> Mention | None:
        row = self.row("select * from items where key = ?", [key])
        return row_to_mention(row) if row else None

    def cluster_mentions(self, cluster: str) -> list[Mention]:
        rows = self.rows("select * from items where cluster = ? order by first_seen_at, rowid", [cluster])
        return [row_to_mention(r) for r in rows]

    def cluster_matches(self, cluster: str) -> list[Match]:
        rows = self.rows(
            "select m.* from matches m join items i on i.key = m.item_key where i.cluster = ? order by i.first_seen_at, m.rowid",
            [cluster],
        )
        seen: dict[tuple[str, str], Match] = {}
        for row in rows:
            match = row_to_match(row)
            seen.setdefault((match.pack, match.rule_id), match)
        return list(seen.values())

    def count(self, table: str) -> int:
        return self.db.execute(f"select count(*) from [{table}]").fetchone()[0]

    # -- outbox ------------------------------------------------------------
    def outbox_row(self, row: dict[str, Any]) -> OutboxRow:
        return OutboxRow(
            id=row["id"], key=row["key"], cluster=row["cluster"], destination=row["destination"], monitor=row["monitor"],
            status=row["status"], attempts=row["attempts"], next_attempt_at=parse_time(row["next_attempt_at"]),
            last_attempt_at=parse_time(row["last_attempt_at"]), last_error=row["last_error"], remote_id=row["remote_id"],
            created_at=parse_time(row["created_at"]), kind=row.get("kind") or "alert",
            payload=json.loads(row["payload"]) if row.get("payload") else None,
        )

    def due_outbox(self, now: datetime, destinations: Iterable[str] | None = None) -> list[OutboxRow]:
        rows = self.rows(
            "select * from outbox where status in ('pending', 'sending') and (next_attempt_at is null or next_attempt_at <= ?) "
            "order by id",
            [iso(now)],
        )
        wanted = None if destinations is None else set(destinations)
        return [self.outbox_row(r) for r in rows if wanted is None or r["destination"] in wanted]

    def outbox_rows(self, status: str | None = None) -> list[OutboxRow]:
        if status is None:
            return [self.outbox_row(r) for r in self.rows("select * from outbox order by id")]
        return [self.outbox_row(r) for r in self.rows("select * from outbox where status = ? order by id", [status])]

    def pending_count(self) -> int:
        return self.db.execute("select count(*) from outbox where status in ('pending', 'sending')").fetchone()[0]

    def next_outbox_attempt(self) -> datetime | None:
        row = self.row("select min(next_attempt_at) t from outbox where status in ('pending', 'sending')")
        return parse_time(row["t"]) if row else None

    def mark_sending(self, row_id: int, now: datetime) -> None:
        """Written BEFORE the send: a row found 'sending' later is in doubt."""
        with self.db.atomic():
            self.db.execute(
                "update outbox set status = 'sending', attempts = attempts + 1, last_attempt_at = ? where id = ?",
                [iso(now), row_id],
            )

    def mark_delivered(self, row_id: int, remote_id: str, now: datetime) -> None:
        with self.db.atomic():
            self.db.execute(
                "update outbox set status = 'delivered', remote_id = ?, delivered_at = ?, last_error = null where id = ?",
                [remote_id, iso(now), row_id],
            )

    def mark_failed(self, row_id: int, error: str, next_attempt_at: datetime, *, permanent: bool = False,
                    in_doubt: bool = False) -> None:
        """Back off; a row `in_doubt` stays 'sending' so the next attempt reconciles before resending."""
        with self.db.atomic():
            self.db.execute(
                "update outbox set status = ?, last_error = ?, next_attempt_at = ?, permanent_error = ? where id = ?",
                ["sending" if in_doubt else "pending", error, iso(next_attempt_at), int(permanent), row_id],
            )

    def outbox_stats(self) -> dict[str, dict[str, int]]:
        rows = self.rows("select destination, status, count(*) n from outbox group by destination, status")
        stats: dict[str, dict[str, int]] = {}
        for row in rows:
            stats.setdefault(row["destination"], {})[row["status"]] = row["n"]
        return stats

    def sent_per_monitor(self, since: datetime) -> dict[str, int]:
        rows = self.rows("select monitor, count(*) n from outbox where status = 'delivered' and delivered_at >= ? group by monitor",
                          [iso(since)])
        return {r["monitor"]: r["n"] for r in rows}
