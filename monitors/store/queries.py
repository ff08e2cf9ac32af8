"""`queries`: the questions and complaints waiting for the brand's reply (reply tracking).

A query is opened in `ingest`'s transaction, next to the alert it belongs
to; later checks move it to answered, unknown (the channel cannot show
replies) or unanswered (given up long after its deadline). One found when
it would already have been given up opens as `late` and is never due nor
breached: only `open` queries are checked and escalated. `update_pending`
stays 1 until every delivered message of an answered item has been edited.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from earful.core import iso, parse_time

from .records import Query

OPEN_QUERY = ("insert into queries (cluster, item_key, monitor, source, posted_at, seen_at, sla_s, business_hours, "
              "deadline, status, checks, next_check_at, answered_at, answered_by, update_pending, escalated_at) "
              "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, 0, ?) on conflict do nothing")
ANSWER_BY_ITEM = ("update queries set status = 'answered', answered_at = ?, answered_by = ?, answer_url = ?, update_pending = 1, "
                  "closed_at = ?, next_check_at = null where item_key = ? and status = 'open'")
ANSWERED = ("update queries set status = 'answered', answered_at = ?, answered_by = ?, answer_url = ?, update_pending = 1, "
            "closed_at = ?, checks = checks + 1, last_checked_at = ?, next_check_at = null where cluster = ?")
UNKNOWN = ("update queries set status = 'unknown', closed_at = ?, checks = checks + 1, last_checked_at = ?, "
           "next_check_at = null where cluster = ?")
GAVE_UP = ("update queries set status = 'unanswered', closed_at = ?, checks = checks + 1, last_checked_at = ?, "
           "next_check_at = null where cluster = ?")
CHECKED = "update queries set checks = checks + 1, last_checked_at = ?, next_check_at = ? where cluster = ?"
ESCALATED = "update queries set escalated_at = ? where cluster = ?"
UPDATES_DONE = "update queries set update_pending = 0 where cluster = ?"
BY_CLUSTER = "select * from queries where cluster = ?"
DUE = "select * from queries where status = 'open' and next_check_at <= ? order by next_check_at"
BREACHED = "select * from queries where status = 'open' and deadline <= ? and escalated_at is null"
UPDATE_PENDING = "select * from queries where update_pending = 1"
SEEN_SINCE = "select * from queries where seen_at >= ? order by source"
ALL = "select * from queries order by posted_at"
NEXT_CHECK = "select min(next_check_at) as t from queries where status = 'open'"
NEXT_DEADLINE = "select min(deadline) as t from queries where status = 'open' and escalated_at is null"
OPEN_PER_MONITOR = ("select monitor, count(*) as open, sum(case when deadline <= ? then 1 else 0 end) as breached "
                    "from queries where status = 'open' group by monitor")


class QueriesTable:
    """Mixed into `Store`: the statements on `queries`."""

    def open_query(self, *, cluster: str, item_key: str, monitor: str, source: str, posted_at: datetime,
                   seen_at: datetime, sla: timedelta, business_hours: bool, deadline: datetime, status: str,
                   next_check_at: datetime | None, answered_at: datetime | None, answered_by: str | None,
                   escalated_at: datetime | None) -> None:
        """Start tracking a cluster (once: a cluster already tracked keeps its query). Runs inside `ingest`."""
        self.db.execute(OPEN_QUERY, [cluster, item_key, monitor, source, iso(posted_at), iso(seen_at),
                                     int(sla.total_seconds()), int(business_hours), iso(deadline), status,
                                     iso(next_check_at), iso(answered_at), answered_by, iso(escalated_at)])

    def answer_queries_of_item(self, item_key: str, answered_at: datetime, answered_by: str | None, url: str | None,
                               now: datetime) -> None:
        """The brand's reply arrived as a mention of its own: close the open query on its parent. Runs inside `ingest`."""
        self.db.execute(ANSWER_BY_ITEM, [iso(answered_at), answered_by, url, iso(now), item_key])

    def record_query_answered(self, cluster: str, answered_at: datetime, answered_by: str | None, url: str | None,
                              now: datetime) -> None:
        with self.transaction():
            self.db.execute(ANSWERED, [iso(answered_at), answered_by, url, iso(now), iso(now), cluster])

    def record_query_unknown(self, cluster: str, now: datetime) -> None:
        """The channel cannot show replies: never answered, never breached."""
        with self.transaction():
            self.db.execute(UNKNOWN, [iso(now), iso(now), cluster])

    def record_query_given_up(self, cluster: str, now: datetime) -> None:
        with self.transaction():
            self.db.execute(GAVE_UP, [iso(now), iso(now), cluster])

    def record_query_checked(self, cluster: str, now: datetime, next_check_at: datetime) -> None:
        """Still no answer: look again at `next_check_at`."""
        with self.transaction():
            self.db.execute(CHECKED, [iso(now), iso(next_check_at), cluster])

    def mark_query_escalated(self, cluster: str, now: datetime) -> None:
        """Part of the caller's transaction, with the escalation rows it enqueues."""
        self.db.execute(ESCALATED, [iso(now), cluster])

    def mark_query_updates_done(self, cluster: str) -> None:
        with self.transaction():
            self.db.execute(UPDATES_DONE, [cluster])

    def query(self, cluster: str) -> Query | None:
        row = self._row(BY_CLUSTER, [cluster])
        return Query.from_row(row) if row else None

    def queries_due(self, now: datetime) -> list[Query]:
        """Open queries whose next check is due, the longest waiting first."""
        return [Query.from_row(r) for r in self._rows(DUE, [iso(now)])]

    def breached_queries(self, now: datetime) -> list[Query]:
        """Open queries past their deadline and not escalated yet."""
        return [Query.from_row(r) for r in self._rows(BREACHED, [iso(now)])]

    def answered_queries_to_update(self) -> list[Query]:
        """Answered queries whose delivered messages still need the "answered" edit."""
        return [Query.from_row(r) for r in self._rows(UPDATE_PENDING)]

    def queries_seen_since(self, since: datetime) -> list[Query]:
        return [Query.from_row(r) for r in self._rows(SEEN_SINCE, [iso(since)])]

    def all_queries(self) -> list[Query]:
        """Every tracked query, oldest post first: for showing a small state (the demo, tests)."""
        return [Query.from_row(r) for r in self._rows(ALL)]

    def next_query_check(self) -> datetime | None:
        row = self._row(NEXT_CHECK)
        return parse_time(row["t"]) if row and row["t"] else None

    def next_query_deadline(self) -> datetime | None:
        """The earliest deadline still waiting for its escalation."""
        row = self._row(NEXT_DEADLINE)
        return parse_time(row["t"]) if row and row["t"] else None

    def open_queries_per_monitor(self, now: datetime) -> dict[str, tuple[int, int]]:
        """monitor -> (queries waiting for the brand's reply, how many of them are past their deadline)."""
        return {r["monitor"]: (r["open"], r["breached"]) for r in self._rows(OPEN_PER_MONITOR, [iso(now)])}
