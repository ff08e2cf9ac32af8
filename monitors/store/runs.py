"""`runs`, `monitor_state` and `budgets`: when each monitor ran, how it went, what it may still spend.

`monitor_state.last_start` is written only when a run finishes, so a run
killed half-way leaves its monitor due; the lock holder marks such runs
`crashed` on the next start.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from earful.core import iso, parse_time
from earful.core.redaction import redact

MONITOR_STATE = "select * from monitor_state where monitor = ?"
ALL_MONITOR_STATES = "select * from monitor_state"
START_RUN = "insert into runs (monitor, started_at, status) values (?, ?, 'running')"
FINISH_RUN = ("update runs set finished_at = ?, status = ?, fetched = ?, new_items = ?, alerts = ?, requests = ?, "
              "error = ?, not_modified = ? where id = ?")
RECORD_START = ("insert into monitor_state (monitor, last_start) select monitor, started_at from runs where id = ? "
                "on conflict (monitor) do update set last_start = excluded.last_start")
RECORD_SUCCESS = ("update monitor_state set last_success = ?, last_status = 'ok', consecutive_failures = 0, "
                  "last_error = null, defer_until = null, "
                  "last_new_item_at = case when ? > 0 then ? else last_new_item_at end where monitor = ?")
RECORD_FAILURE = ("update monitor_state set last_status = 'failed', consecutive_failures = coalesce(consecutive_failures, 0) + 1, "
                  "last_error = ?, defer_until = ? where monitor = ?")
RECENT_RUNS = "select * from runs where monitor = ? order by id desc limit ?"
RUN_TOTALS = ("select monitor, count(*) as runs, sum(case when status = 'failed' then 1 else 0 end) as failures, "
              "sum(new_items) as new_items, sum(alerts) as alerts from runs where started_at >= ? group by monitor")
FIRST_RUNS = "select monitor, min(started_at) as first_started from runs group by monitor"
MARK_ABANDONED = ("update runs set status = 'crashed', finished_at = ?, error = 'the process died during this run' "
                  "where status = 'running'")
BUDGET_USED = "select used from budgets where monitor = ? and period = ?"
SAVE_BUDGET = ('insert into budgets (monitor, period, used, limit_, updated_at) values (?, ?, ?, ?, ?) '
               'on conflict (monitor, period) do update set used = excluded.used, limit_ = excluded.limit_, '
               'updated_at = excluded.updated_at')
BUDGETS = "select * from budgets where period = ?"


class RunsTable:
    """Mixed into `Store`: the statements on `runs`, `monitor_state` and `budgets`."""

    def monitor_state(self, name: str) -> dict[str, Any]:
        return self._row(MONITOR_STATE, [name]) or {"monitor": name}

    def all_monitor_states(self) -> dict[str, dict[str, Any]]:
        return {row["monitor"]: row for row in self._rows(ALL_MONITOR_STATES)}

    def start_run(self, monitor: str, now: datetime) -> int:
        """Record a run as started. `last_start` is written only when it
        finishes, so a run killed half-way leaves its monitor due."""
        with self.transaction():
            return self.db.execute(START_RUN, [monitor, iso(now)]).lastrowid

    def finish_run(self, run_id: int, monitor: str, *, ok: bool, now: datetime, fetched: int = 0, new_items: int = 0,
                   alerts: int = 0, requests: int = 0, error: str | None = None, defer_until: datetime | None = None,
                   not_modified: bool = False) -> None:
        error = redact(error) if error else error  # it may quote a library's exception, URL or headers
        with self.transaction():
            self.db.execute(FINISH_RUN, [iso(now), "ok" if ok else "failed", fetched, new_items, alerts, requests, error,
                                         int(not_modified), run_id])
            self.db.execute(RECORD_START, [run_id])
            if ok:
                self.db.execute(RECORD_SUCCESS, [iso(now), new_items, iso(now), monitor])
            else:
                self.db.execute(RECORD_FAILURE, [error, iso(defer_until), monitor])

    def recent_runs(self, monitor: str, limit: int = 20) -> list[dict[str, Any]]:
        return self._rows(RECENT_RUNS, [monitor, limit])

    def run_totals(self, since: datetime) -> dict[str, dict[str, Any]]:
        return {row["monitor"]: row for row in self._rows(RUN_TOTALS, [iso(since)])}

    def first_runs(self) -> dict[str, datetime]:
        """monitor -> when it first ran: how much history its counts can have."""
        return {r["monitor"]: parse_time(r["first_started"]) for r in self._rows(FIRST_RUNS)}

    def mark_abandoned_runs(self, now: datetime) -> int:
        """Runs still 'running' belong to a process that died (we hold the lock)."""
        with self.transaction():
            return self.db.execute(MARK_ABANDONED, [iso(now)]).rowcount

    # -- request budgets ----------------------------------------------
    def budget_used(self, monitor: str, period: str) -> int:
        row = self._row(BUDGET_USED, [monitor, period])
        return row["used"] if row else 0

    def save_budget(self, monitor: str, period: str, used: int, limit: int | None, now: datetime) -> None:
        with self.transaction():
            self.db.execute(SAVE_BUDGET, [monitor, period, used, limit, iso(now)])

    def budgets(self, period: str) -> dict[str, dict[str, Any]]:
        return {r["monitor"]: r for r in self._rows(BUDGETS, [period])}
