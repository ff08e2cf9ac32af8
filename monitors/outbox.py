"""Delivering the outbox: each row reaches its destination exactly once.

The order of writes is what makes this safe:

1. the row is marked `sending` (committed) before the destination is called;
2. the destination is called;
3. the row is marked `delivered` with the remote id.

A process killed between 2 and 3 leaves a `sending` row: the next run asks
the destination whether it already has that alert (Slack: the item key in
message metadata) before sending again. A destination that fails backs off
(its own Retry-After, else exponential) and the loop moves on to the next
destination, so one broken Slack token never holds up the ticket system.

Rows go out most severe first (then oldest first: the store orders them),
and a destination that works again gets its whole backlog at once: as soon
as one of its rows is delivered, its backed-off rows join this run's queue
in that order instead of waiting out their back-off.

Every kind of row takes this path: alerts, escalations, health, spike and
flood-summary notices, and digests (rendered when queued, see
`digest.send`). A row whose payload names another row `after` waits until
that one is delivered (a digest's chart follows its summary).
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from functools import partial
from typing import Callable

from earful import alerts
from earful.alerts.base import DeliveryError, Destination
from earful.core import Alert

from . import faults, flood
from .config import Config
from .replies import alert_note
from .store import OutboxRow, Store, row_to_match, row_to_mention

log = logging.getLogger("earful.outbox")

FIRST_BACKOFF = timedelta(seconds=30)
IN_DOUBT_MARGIN = timedelta(minutes=10)


@dataclass
class DeliveryReport:
    delivered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    reconciled: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed: dict[str, str] = field(default_factory=dict)  # destination -> last error
    permanent: set[str] = field(default_factory=set)
    pending: int = 0

    @property
    def total(self) -> int:
        return sum(self.delivered.values())


def build_alert(store: Store, row: OutboxRow, zone: tzinfo = timezone.utc) -> Alert:
    """Rebuild the alert from state.db, so it lists every mention clustered so far.

    Notices (health, flood-control summaries, spikes) carry their own
    synthetic mention in the row's payload, digests their rendered content
    (as `extra`); escalations reuse the item's cluster and add a note, threaded under the
    original message when the payload names it and it was delivered.
    """
    payload = row.payload or {}
    if "mentions" in payload:  # notices (health, flood summary, spike) carry their own synthetic mention
        mentions = tuple(row_to_mention(m) for m in payload["mentions"])
        matches = tuple(row_to_match(m) for m in payload["matches"])
    elif "content" in payload:  # a digest: rendered content, no mentions
        mentions, matches = (), ()
    else:
        mentions = tuple(store.cluster_mentions(row.cluster))
        matches = tuple(store.cluster_matches(row.cluster))
    thread_key = payload.get("thread_key")
    return Alert(
        key=row.key,
        cluster=row.cluster,
        destination=row.destination,
        monitor=row.monitor,
        mentions=mentions,
        matches=matches,
        created_at=row.created_at,
        kind=row.kind,
        note=payload.get("note") if row.kind != "alert" else alert_note(store, row.cluster),
        thread=store.delivered_remote_id(thread_key) if thread_key else None,
        extra=dict(payload.get("content") or {}),
        timezone=zone,
    )


def backoff(row: OutboxRow, error: DeliveryError, now: datetime, cap: timedelta) -> datetime:
    if error.retry_after is not None:
        return now + timedelta(seconds=max(1.0, error.retry_after))
    delay = FIRST_BACKOFF * (2 ** max(0, row.attempts - 1))
    return now + min(delay, cap)


class DestinationPool:
    """Destinations opened on first use during one run and closed together at its end."""

    def __init__(self, config: Config):
        self.config = config
        self._open: dict[str, Destination] = {}

    def get(self, name: str) -> Destination | None:
        if name not in self._open:
            spec = self.config.destinations.get(name)
            if spec is None:
                return None
            self._open[name] = alerts.load(spec.type)(name, spec.options)
        return self._open[name]

    def close_all(self) -> None:
        for destination in self._open.values():
            try:
                destination.close()
            except Exception:  # noqa: BLE001 - closing must not mask delivery results
                log.debug("closing %s failed", destination.name, exc_info=True)
        self._open.clear()


def deliver(config: Config, store: Store, pool: DestinationPool, clock: Callable[[], datetime]) -> DeliveryReport:
    """Send every due outbox row of every configured destination (and the backlog of one that works again)."""
    report = deliver_rows(config, store, pool, store.due_outbox(clock(), destinations=config.destinations), clock,
                          retry_backlog=True)
    report.pending = store.pending_count()
    return report


def deliver_rows(config: Config, store: Store, pool: DestinationPool, rows: list[OutboxRow],
                 clock: Callable[[], datetime], *, retry_backlog: bool = False) -> DeliveryReport:
    """Send `rows` (due rows, most severe first), destination by destination, under flood control.

    With `retry_backlog`, a destination's first delivery makes its backed-off rows due now (see the module doc).
    """
    report = DeliveryReport()
    rows_by_destination: dict[str, list[OutboxRow]] = defaultdict(list)
    for row in rows:
        rows_by_destination[row.destination].append(row)
    cap = config.settings.defaults.retry_max_backoff
    for name, rows in rows_by_destination.items():
        try:
            destination = pool.get(name)
        except Exception as exc:  # a broken optional dependency must not stop other destinations
            report.failed[name] = f"cannot start destination '{name}': {exc}"
            continue
        if destination is None:
            report.failed[name] = f"destination '{name}' is not defined under 'destinations:'"
            report.permanent.add(name)
            continue
        rows = flood.hold_excess(store, name, destination.options, rows, clock())
        backlog = partial(_backlog, store, destination, clock=clock) if retry_backlog else None
        _deliver_rows(store, destination, rows, report, cap, clock, backlog, config.timezone)
    return report


def _backlog(store: Store, destination: Destination, tried: set[int],
             clock: Callable[[], datetime]) -> list[OutboxRow] | None:
    """Every row still undelivered to `destination` and not tried in this run, most severe first, under flood
    control; None when none of them is backed off (the due queue already holds them all)."""
    now = clock()
    rows = [row for row in store.undelivered_outbox(destination.name) if row.id not in tried]
    if not any(row.next_attempt_at is not None and row.next_attempt_at > now for row in rows):
        return None
    return flood.hold_excess(store, destination.name, destination.options, rows, now)


def _waits(store: Store, row: OutboxRow) -> bool:
    """The row follows another (`after` in its payload) that is not delivered yet."""
    after = (row.payload or {}).get("after")
    return bool(after) and store.delivered_remote_id(after) is None


def _deliver_rows(store: Store, destination: Destination, rows: list[OutboxRow], report: DeliveryReport,
                  cap: timedelta, clock, backlog: Callable[[set[int]], list[OutboxRow] | None] | None = None,
                  zone: tzinfo = timezone.utc) -> None:
    """Send `rows` in order until the destination fails; after its first success, `backlog(tried row ids)`
    may replace what is left of the queue (once)."""
    name = destination.name
    queue, tried = deque(rows), set()
    while queue:
        row = queue.popleft()
        tried.add(row.id)
        if _waits(store, row):
            continue
        alert = build_alert(store, row, zone)
        if row.status == "sending":
            since = (row.last_attempt_at or row.created_at) - IN_DOUBT_MARGIN
            try:
                found = destination.find_delivered(alert, since)
            except DeliveryError as exc:
                report.failed[name] = str(exc)
                store.mark_failed(row.id, str(exc), backoff(row, exc, clock(), cap), permanent=exc.permanent)
                break
            if found:
                store.mark_delivered(row.id, found, clock())
                report.reconciled[name] += 1
                queue, backlog = _with_backlog(queue, backlog, tried)
                continue
        store.mark_sending(row.id, clock())
        try:
            remote_id = destination.deliver(alert)
        except DeliveryError as exc:
            _failed(store, row, exc, report, name, cap, clock())
            break  # this destination is unwell: leave its other rows for a later run
        except Exception as exc:  # noqa: BLE001 - a destination bug must not lose the row
            log.exception("destination %s crashed", name)
            _failed(store, row, DeliveryError(f"{name}: unexpected {type(exc).__name__}: {exc}"), report, name, cap, clock())
            break
        faults.point("during_delivery")
        store.mark_delivered(row.id, remote_id, clock())
        report.delivered[name] += 1
        queue, backlog = _with_backlog(queue, backlog, tried)


def _with_backlog(queue: deque[OutboxRow], backlog: Callable[[set[int]], list[OutboxRow] | None] | None,
                  tried: set[int]) -> tuple[deque[OutboxRow], None]:
    """The queue after a success: the destination's whole backlog when it has backed-off rows; `backlog` is spent."""
    if backlog is None:
        return queue, None
    rows = backlog(tried)
    return (queue if rows is None else deque(rows)), None


def _failed(store: Store, row: OutboxRow, exc: DeliveryError, report: DeliveryReport, name: str,
            cap: timedelta, now: datetime) -> None:
    row.attempts += 1
    store.mark_failed(row.id, str(exc), backoff(row, exc, now, cap), permanent=exc.permanent,
                      in_doubt=getattr(exc, "in_doubt", False))
    report.failed[name] = str(exc)
    if exc.permanent:
        report.permanent.add(name)
