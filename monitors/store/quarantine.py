"""`quarantine`: mentions a run could not take in even after sanitising, and why.

A poison item must neither block its monitor's cursor nor vanish: it is
kept here (its key, the reason, as much of it as can be shown) while the
rest of its batch is stored and delivered. Seen again (an overlap window
re-reads it), the row is updated, not repeated. `earful status` shows the
count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from earful.core import iso

QUARANTINE = """insert into quarantine (item_key, monitor, reason, sample, first_seen_at, last_seen_at, times)
values (?, ?, ?, ?, ?, ?, 1)
on conflict (item_key) do update set
    monitor = excluded.monitor, reason = excluded.reason, sample = excluded.sample,
    last_seen_at = excluded.last_seen_at, times = quarantine.times + 1"""
QUARANTINED = ("select item_key, monitor, reason, sample, first_seen_at, last_seen_at, times from quarantine "
               "order by last_seen_at desc, item_key limit ?")
QUARANTINED_COUNT = "select count(*) as n from quarantine"


class QuarantineTable:
    """Mixed into `Store`: the statements of the quarantine."""

    def quarantine(self, monitor: str, item_key: str, reason: str, sample: str, now: datetime) -> None:
        """Keep `item_key` of `monitor` aside with `reason` (committed at once: it must survive the run)."""
        with self.transaction():
            self.db.execute(QUARANTINE, [item_key, monitor, reason, sample, iso(now), iso(now)])

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        """The most recently quarantined items, newest first."""
        return self._rows(QUARANTINED, [limit])

    def quarantined_count(self) -> int:
        return self._row(QUARANTINED_COUNT)["n"]
