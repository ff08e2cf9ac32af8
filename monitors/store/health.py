"""What channel health reads and writes: the rhythm of productive runs, the last reported state, and reply checks.

The health columns live on `monitor_state`; `health` is what was last
reported ("ok" or "unwatched"), so each incident alerts once and its
recovery once. Reply checks have the same pair of their own
(`reply_check_failures` runs in a row, `reply_health` "ok" or "failing").

A query whose last look failed carries `check_failed_at` (later than its
`last_checked_at`) and `check_failing_since`: it is retried, and not
escalated, until a look succeeds.
"""

from __future__ import annotations

from datetime import datetime

from earful.core import iso, parse_time
from earful.core.redaction import redact

PRODUCTIVE_RUNS = ("select started_at from runs where monitor = ? and status = 'ok' and new_items > 0 and started_at >= ? "
                   "order by started_at")
REPORT_HEALTH = ("insert into monitor_state (monitor, health, health_since, health_incidents) values (?, ?, ?, ?) "
                 "on conflict (monitor) do update set health = excluded.health, health_since = excluded.health_since, "
                 "health_incidents = excluded.health_incidents")  # an upsert: the run's own health has no run row

REPLY_CHECKS_FAILED = ("insert into monitor_state (monitor, reply_check_failures, last_reply_check_error, last_reply_check_error_at) "
                       "values (?, 1, ?, ?) on conflict (monitor) do update set "
                       "reply_check_failures = monitor_state.reply_check_failures + 1, "
                       "last_reply_check_error = excluded.last_reply_check_error, "
                       "last_reply_check_error_at = excluded.last_reply_check_error_at")
REPLY_CHECKS_OK = "update monitor_state set reply_check_failures = 0 where monitor = ?"
REPORT_REPLY_HEALTH = ("update monitor_state set reply_health = ?, reply_health_since = ?, reply_health_incidents = ? "
                       "where monitor = ?")
LOOK_FAILED = ("update queries set checks = checks + 1, next_check_at = ?, "
               "check_failing_since = case when check_failed_at > coalesce(last_checked_at, '') then check_failing_since else ? end, "
               "check_failed_at = ? where cluster = ?")
FAILING_SINCE = ("select check_failing_since from queries where cluster = ? "
                 "and check_failed_at > coalesce(last_checked_at, '')")
AWAITING_A_LOOK = ("select cluster from queries where status = 'open' and deadline <= ? "
                   "and check_failed_at > coalesce(last_checked_at, '')")
AWAITING_A_LOOK_PER_MONITOR = ("select monitor, count(*) as n from queries where status = 'open' and deadline <= ? "
                               "and check_failed_at > coalesce(last_checked_at, '') group by monitor")


class HealthTable:
    """Mixed into `Store`: the statements channel health runs."""

    def productive_run_starts(self, monitor: str, since: datetime) -> list[datetime]:
        """When the monitor's successful runs that found something new started, oldest first."""
        return [parse_time(r["started_at"]) for r in self._rows(PRODUCTIVE_RUNS, [monitor, iso(since)])]

    def report_health(self, monitor: str, health: str, now: datetime, incident: int) -> None:
        """Part of the caller's transaction, with the notice it enqueues."""
        self.db.execute(REPORT_HEALTH, [monitor, health, iso(now), incident])

    # -- reply checks ----------------------------------------------------------
    def record_reply_checks(self, monitor: str, error: str | None, now: datetime) -> None:
        """How one run's reply checks of `monitor` went: `error` is the last failure's, None when every check worked."""
        with self.transaction():
            if error is None:
                self.db.execute(REPLY_CHECKS_OK, [monitor])
            else:
                self.db.execute(REPLY_CHECKS_FAILED, [monitor, redact(error), iso(now)])

    def report_reply_health(self, monitor: str, health: str, now: datetime, incident: int) -> None:
        """Part of the caller's transaction, with the notice it enqueues."""
        self.db.execute(REPORT_REPLY_HEALTH, [health, iso(now), incident, monitor])

    def record_query_look_failed(self, cluster: str, now: datetime, retry_at: datetime) -> None:
        """A look at the query failed: neither answered nor unanswered; look again at `retry_at`."""
        with self.transaction():
            self.db.execute(LOOK_FAILED, [iso(retry_at), iso(now), iso(now), cluster])

    def query_looks_failing_since(self, cluster: str) -> datetime | None:
        """When the query's current streak of failed looks began; None when its last look succeeded."""
        row = self._row(FAILING_SINCE, [cluster])
        return parse_time(row["check_failing_since"]) if row else None

    def queries_awaiting_a_look(self, now: datetime) -> set[str]:
        """Open queries past their deadline whose last look failed: no escalation until one succeeds."""
        return {r["cluster"] for r in self._rows(AWAITING_A_LOOK, [iso(now)])}

    def queries_awaiting_a_look_per_monitor(self, now: datetime) -> dict[str, int]:
        return {r["monitor"]: r["n"] for r in self._rows(AWAITING_A_LOOK_PER_MONITOR, [iso(now)])}
