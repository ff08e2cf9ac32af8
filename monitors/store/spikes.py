"""`spike_alerts` and the hourly counts spike detection reads.

Counts are per UTC hour of `items.first_seen_at`, as the hour's ISO prefix
('2026-11-23T10'). Posts the brand wrote are not counted, nor posts seen
more than `max_lag` after they were written (a backlog is not volume).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from earful.core import iso, parse_time

# SQLite's julianday: the one date function here; a second backend needs its own interval arithmetic.
_FRESH = "(i.created_at is null or julianday(i.first_seen_at) - julianday(i.created_at) <= ?)"
_COUNTED = f"i.first_seen_at >= ? and i.first_seen_at < ? and i.author_is_brand = 0 and {_FRESH}"
HOURLY_BY_MONITOR_AND_SOURCE = (
    f"select substr(i.first_seen_at, 1, 13) as hour, i.monitor, i.source, count(*) as n from items i "
    f"where {_COUNTED} group by substr(i.first_seen_at, 1, 13), i.monitor, i.source")
HOURLY_BY_RULE = (
    f"select substr(i.first_seen_at, 1, 13) as hour, i.monitor, m.pack, m.rule_id, count(distinct i.key) as n "
    f"from matches m join items i on i.key = m.item_key "
    f"where {_COUNTED} group by substr(i.first_seen_at, 1, 13), i.monitor, m.pack, m.rule_id")
SPIKE_HOURS = "select hour from spike_alerts where dimension = ? and value = ? and hour > ? and hour < ?"
RECORD_SPIKE = ("insert into spike_alerts (dimension, value, hour, count, mean, stdev, threshold, raised_at) "
                "values (?, ?, ?, ?, ?, ?, ?, ?)")
_TOP_FILTERS = {
    "monitor": "i.monitor = ?",
    "source": "i.source = ?",
    "rule": "exists (select 1 from matches m where m.item_key = i.key and m.pack = ? and m.rule_id = ?)",
}


def _top_items(dimension: str) -> str:
    return (f"select i.title, i.text, i.url, (select count(*) from items c where c.cluster = i.cluster) as places "
            f"from items i where i.first_seen_at >= ? and i.first_seen_at < ? and i.author_is_brand = 0 "
            f"and {_TOP_FILTERS[dimension]} order by places desc, i.first_seen_at desc limit ?")


class SpikesTable:
    """Mixed into `Store`: the statements spike detection runs."""

    def hourly_volume(self, since: datetime, until: datetime, max_lag: timedelta) -> list[dict[str, Any]]:
        """(hour, monitor, source, n): mentions first seen per hour in [since, until)."""
        return self._rows(HOURLY_BY_MONITOR_AND_SOURCE, [iso(since), iso(until), max_lag.total_seconds() / 86400])

    def hourly_rule_volume(self, since: datetime, until: datetime, max_lag: timedelta) -> list[dict[str, Any]]:
        """(hour, monitor, pack, rule_id, n): mentions per matched rule per hour in [since, until)."""
        return self._rows(HOURLY_BY_RULE, [iso(since), iso(until), max_lag.total_seconds() / 86400])

    def spike_hours(self, dimension: str, value: str, after: datetime, before: datetime) -> list[datetime]:
        """The hours strictly between `after` and `before` in which this key already spiked."""
        return [parse_time(r["hour"]) for r in self._rows(SPIKE_HOURS, [dimension, value, iso(after), iso(before)])]

    def spike_top_items(self, dimension: str, value: str | tuple[str, str], start: datetime, end: datetime,
                        limit: int) -> list[dict[str, Any]]:
        """(title, text, url) of the key's items first seen in [start, end), most places (crossposts) first.

        `value` is the monitor or source name, or (pack, rule id) for a rule.
        """
        params = list(value) if dimension == "rule" else [value]
        return self._rows(_top_items(dimension), [iso(start), iso(end), *params, limit])

    def record_spike(self, dimension: str, value: str, hour: datetime, count: int, mean: float, stdev: float,
                     threshold: float, now: datetime) -> None:
        """Part of the caller's transaction, with the alerts it enqueues: the record is the idempotency key."""
        self.db.execute(RECORD_SPIKE, [dimension, value, iso(hour), count, mean, stdev, threshold, iso(now)])
