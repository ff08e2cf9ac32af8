"""What flood control reads and writes in the outbox: recent sends, and rows held back.

A held row keeps its item and matches; only its status changes, so it
still shows in `earful status` and in the next digest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

from earful.core import iso

HOLD = "update outbox set status = 'held', last_error = ? where id = ?"


def _delivered_since(kinds: int) -> str:
    return ("select count(*) as n from outbox where destination = ? and status = 'delivered' "
            f"and kind in ({', '.join('?' for _ in range(kinds))}) and delivered_at >= ?")


class FloodTable:
    """Mixed into `Store`: the statements flood control runs."""

    def delivered_since(self, destination: str, kinds: Sequence[str], since: datetime) -> int:
        """Rows of these kinds delivered to `destination` since `since`."""
        return self._row(_delivered_since(len(kinds)), [destination, *kinds, iso(since)])["n"]

    def hold_outbox_rows(self, row_ids: Iterable[int], reason: str) -> None:
        """Part of the caller's transaction, with the summary it enqueues."""
        self.db.conn.executemany(HOLD, [(reason, row_id) for row_id in row_ids])
