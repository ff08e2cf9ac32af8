"""`earful test-alert DEST`: one alert, marked as a test, through the real delivery path.

`earful check --online` proves credentials without posting; only a post
proves the rest (the bot may post in the channel, the project takes
issues of that type, the receiver accepts the signature). The test alert
is an outbox row like any other, so it is delivered exactly once: a test
that fails stays queued (the next run, or the next `test-alert`, retries
that same row) instead of piling up copies that all arrive once the
destination is fixed.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from earful.core import Match, Mention, iso

from .config import Config
from .lock import run_lock
from .outbox import DeliveryReport, DestinationPool, deliver_rows
from .store import OutboxRow, Store, match_to_row, mention_to_row

KIND = "test"


@dataclass
class Outcome:
    locked_out: bool = False
    row: OutboxRow | None = None  # the test row after the attempt
    report: DeliveryReport | None = None

    @property
    def delivered(self) -> bool:
        return self.row is not None and self.row.status == "delivered"


def send_test_alert(config: Config, destination: str, clock: Callable[[], datetime]) -> Outcome:
    """Queue a test alert for `destination` (or reuse one still undelivered) and deliver it now."""
    with run_lock(config.state_path) as acquired:
        if not acquired:
            return Outcome(locked_out=True)
        store = Store(config.state_path)
        pool = DestinationPool(config)
        try:
            row = _queued(store, destination, clock())
            report = deliver_rows(config, store, pool, [row], clock)
            return Outcome(row=store.outbox_by_key(row.key), report=report)
        finally:
            pool.close_all()
            store.close()


def _queued(store: Store, destination: str, now: datetime) -> OutboxRow:
    waiting = [row for row in store.undelivered_outbox(destination) if row.kind == KIND]
    if waiting:
        return waiting[0]
    mention = test_item(destination, now)
    match = Match(mention_key=mention.key, rule_id="test-alert", pack="earful", labels=("test",), severity="low")
    payload = {"mentions": [mention_to_row(mention)], "matches": [match_to_row(match)], "note": None}
    key = f"{mention.key}#{destination}"
    store.enqueue(key, mention.key, destination, "earful", now, kind=KIND, payload=payload)
    found = store.outbox_by_key(key)
    assert found is not None
    return found


def test_item(destination: str, now: datetime) -> Mention:
    """The alert's item: says TEST where a reader looks first (title and text), and who sent it."""
    return Mention(
        source="earful", external_id=f"test:{destination}:{iso(now)}", author="earful", kind="message", created_at=now,
        title="TEST ALERT from earful: please ignore",
        text=(f"This is a test: `earful test-alert {destination}` ran on {socket.gethostname()} at "
              f"{iso(now.replace(microsecond=0))} to prove that alerts reach this place. No customer wrote it and "
              "nothing needs doing."),
    )
