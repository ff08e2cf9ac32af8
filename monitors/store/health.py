"""What channel health reads and writes: the rhythm of productive runs, and the last reported state.

The health columns live on `monitor_state`; `health` is what was last
reported ("ok" or "unwatched"), so each incident alerts once and its
recovery once.
"""

from __future__ import annotations

from datetime import datetime

from earful.core import iso, parse_time

PRODUCTIVE_RUNS = ("select started_at from runs where monitor = ? and status = 'ok' and new_items > 0 and started_at >= ? "
                   "order by started_at")
REPORT_HEALTH = "update monitor_state set health = ?, health_since = ?, health_incidents = ? where monitor = ?"


class HealthTable:
    """Mixed into `Store`: the statements channel health runs."""

    def productive_run_starts(self, monitor: str, since: datetime) -> list[datetime]:
        """When the monitor's successful runs that found something new started, oldest first."""
        return [parse_time(r["started_at"]) for r in self._rows(PRODUCTIVE_RUNS, [monitor, iso(since)])]

    def report_health(self, monitor: str, health: str, now: datetime, incident: int) -> None:
        """Part of the caller's transaction, with the notice it enqueues."""
        self.db.execute(REPORT_HEALTH, [health, iso(now), incident, monitor])
