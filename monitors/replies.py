"""Unanswered means unanswered: reply tracking, SLAs and escalation.

Every alerted item whose rule sets `reply_within` (or that is labelled
question/complaint while `defaults.reply_within` is set) becomes an open
query in state.db, opened in the same transaction as its alert. Later ticks
ask the source's connector `replies(mention)` on a back-off schedule
(5 min, 15 min, 1 h, 4 h, 12 h, then daily), never more than one check per
query per step and never past each monitor's per-run check budget, with a
check placed exactly at the deadline. Outcomes:

* answered: the query closes, and every delivered message of the item is
  edited in place ("answered by @acme after 37 min"), once, crash-safely
  (the `update_pending` flag is cleared only after the edits succeed);
* deadline passed unanswered: one escalation (outbox kind `escalation`) to
  the rule's `escalate` destinations, or, without those, into the original
  message's thread; a later answer still edits the messages;
* the connector cannot see replies (`answered=None`): the query becomes
  `unknown` and is never reported as answered;
* no answer long after the deadline: the query closes as `unanswered`.

A brand reply that arrives as a mention itself (an HN comment by the
brand's account below a tracked one) answers the query at ingest, free.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from earful.alerts.base import DeliveryError
from earful.connectors.base import Connector, ReplyStatus
from earful.core import Mention
from earful.core import Match, format_duration

from .config import Config
from earful.core import parse_time
from .store import Query, Recorded, Store

log = logging.getLogger("earful.replies")

BACKOFF = [timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4), timedelta(hours=12), timedelta(days=1)]
TRACKED_LABELS = frozenset({"question", "complaint"})
GIVE_UP_AFTER = timedelta(days=7)  # beyond the deadline: then the query closes as unanswered
OPEN_STATES = ("open",)


def sla_for(matches: list[Match], config: Config) -> timedelta | None:
    """The tightest SLA among the matches, or the default one for questions and complaints."""
    slas = [m.reply_within for m in matches if m.reply_within]
    if not slas and config.settings.defaults.reply_within and any(l in TRACKED_LABELS for m in matches for l in m.labels):
        slas = [config.settings.defaults.reply_within]
    return min(slas) if slas else None


def deadline_for(start: datetime, sla: timedelta, config: Config) -> datetime:
    hours = config.business_hours()
    return hours.add(start, sla) if hours else start + sla


def next_check(seen_at: datetime, now: datetime, deadline: datetime) -> datetime | None:
    """When to look again; None when it is time to give up.

    Checks sit on fixed steps after earful first saw the item (5 min,
    20 min, 1 h 20 min, 5 h 20 min, 17 h 20 min, then daily) plus one
    exactly at the deadline, so however often cron ticks, a query costs at
    most one request per step.
    """
    give_up = deadline + GIVE_UP_AFTER
    if now >= give_up:
        return None
    moment = seen_at
    for step in BACKOFF:
        moment += step
        if moment > now:
            break
    while moment <= now:
        moment += BACKOFF[-1]
    if now < deadline < moment:
        moment = deadline
    return min(moment, give_up)


def tracker(store: Store, config: Config, monitor: str, matches_by_key: dict[str, list[Match]], now: datetime,
            sees_replies: bool = True) -> Callable[[Mention, Recorded], None]:
    """The `on_record` hook for Store.ingest: opens queries, and lets brand replies answer them.

    On a channel that cannot show replies (`sees_replies` False: the
    connector keeps the base `replies`), a query opens as `unknown` unless
    the page itself said the brand replied: never breached, never answered.
    """

    def on_record(mention: Mention, record: Recorded) -> None:
        if mention.author_is_brand:
            _answer_by_brand_mention(store, mention, now)
            return
        matches = matches_by_key.get(mention.key) or []
        if not record.alerts or not matches:
            return
        sla = sla_for(matches, config)
        if sla is None:
            return
        posted = min(mention.created_at or now, now)
        deadline = deadline_for(posted, sla, config)
        status, answered_at = ("open" if sees_replies else "unknown"), None
        # Found already past its deadline (a catch-up, an old thread): the alert itself says so
        # (see `alert_note`), and no separate escalation follows: paging on-call for every
        # stale item of a three-day backlog helps nobody.
        escalated_at = now if deadline <= now and status == "open" else None
        if mention.brand_replied:
            status = "answered"
            answered_at = parse_time(str(mention.raw.get("reply_at"))) if mention.raw.get("reply_at") else None
        store.open_query(
            cluster=record.cluster, item_key=mention.key, monitor=monitor, source=mention.source, posted_at=posted,
            seen_at=now, sla=sla, business_hours=config.business_hours() is not None, deadline=deadline, status=status,
            next_check_at=next_check(now, now, deadline) if status == "open" else None, answered_at=answered_at,
            answered_by="the brand (shown on the page)" if status == "answered" else None, escalated_at=escalated_at,
        )

    return on_record


def _answer_by_brand_mention(store: Store, mention: Mention, now: datetime) -> None:
    if not mention.parent_id:
        return
    parent_key = f"{mention.source}:{mention.parent_id}"
    when = mention.created_at or now
    store.answer_queries_of_item(parent_key, when, mention.author, mention.url, now)


# -- re-checking -------------------------------------------------------------

@dataclass
class RecheckReport:
    checked: int = 0
    answered: int = 0
    unknown: int = 0
    escalated: int = 0
    gave_up: int = 0
    errors: list[str] | None = None


def recheck(config: Config, store: Store, now: datetime, connector_for: Callable[[str], Connector | None],
            report: RecheckReport | None = None) -> RecheckReport:
    """Ask sources about due open queries, within each monitor's per-run budget."""
    report = report or RecheckReport(errors=[])
    budget: dict[str, int] = {}
    for query in store.queries_due(now):
        monitor = config.monitors.get(query.monitor)
        if monitor is None:
            continue
        left = budget.setdefault(query.monitor, monitor.common.reply_checks_per_run)
        if left <= 0:
            continue
        connector = connector_for(query.monitor)
        mention = store.item(query.item_key)
        if connector is None or mention is None:
            continue
        budget[query.monitor] = left - 1
        try:
            status = connector.replies(mention)
        except Exception as exc:  # noqa: BLE001 - a failed check is retried on the next step, never "answered"
            report.errors.append(f"monitor '{query.monitor}': reply check of {query.item_key} failed: {exc}")
            status = ReplyStatus(answered=False)
            log.debug("reply check failed", exc_info=True)
        if status.answered is None and connector.sees_replies:
            # The channel does show replies, this look just failed (a 502, a truncated tree):
            # try again on the next step rather than giving up on the question.
            status = ReplyStatus(answered=False)
        report.checked += 1
        _apply(store, query, status, now, report)
    return report


def _apply(store: Store, query: Query, status: ReplyStatus, now: datetime, report: RecheckReport) -> None:
    if status.answered is True:
        store.record_query_answered(query.cluster, status.answered_at or now, status.answered_by, status.url, now)
        report.answered += 1
    elif status.answered is None:
        store.record_query_unknown(query.cluster, now)
        report.unknown += 1
    else:
        moment = next_check(query.seen_at, now, query.deadline)
        if moment is None:
            store.record_query_given_up(query.cluster, now)
            report.gave_up += 1
        else:
            store.record_query_checked(query.cluster, now, moment)


# -- breaches and answers -------------------------------------------------------

def escalate_breaches(config: Config, store: Store, now: datetime, report: RecheckReport) -> None:
    """One escalation per breached open query, queued in the outbox."""
    for query in store.breached_queries(now):
        matches = store.cluster_matches(query.cluster)
        targets: dict[str, None] = {}
        for match in matches:
            targets.update(dict.fromkeys(match.escalate or ()))
        thread_keys: dict[str, str | None] = {}
        if not targets:  # no escalate: answer under the original messages
            for destination, key in store.alert_destinations(query.cluster).items():
                targets[destination] = None
                thread_keys[destination] = key
        waited = format_duration(query.sla)
        note = (f"SLA breached: no reply from the brand within {waited}"
                f"{' (business hours)' if config.business_hours() else ''}; deadline was {query.deadline:%Y-%m-%d %H:%M} UTC")
        with store.transaction():
            for destination in targets:
                if destination not in config.destinations:
                    continue
                payload = {"note": note, "thread_key": thread_keys.get(destination)}
                store.enqueue(f"{query.cluster}#escalation#{destination}", query.cluster, destination, query.monitor, now,
                              kind="escalation", payload=payload)
            store.mark_query_escalated(query.cluster, now)
        report.escalated += 1


def alert_note(store: Store, cluster: str) -> str | None:
    """What an item alert should say about its reply SLA when it goes out."""
    query = store.query(cluster)
    if query is None:
        return None
    if query.status == "answered":
        return None
    if query.deadline <= query.seen_at:
        return (f"already past its {format_duration(query.sla)} reply SLA when found "
                f"(posted {format_duration(query.seen_at - query.posted_at)} earlier, no brand reply seen)")
    return f"reply expected within {format_duration(query.sla)} (by {query.deadline:%Y-%m-%d %H:%M} UTC)"


def answer_note(query: Query, config: Config) -> str:
    by = query.answered_by or "the brand"
    if query.answered_at is None:
        return f"answered by {by}"
    hours = config.business_hours()
    took = hours.elapsed(query.posted_at, query.answered_at) if hours else query.answered_at - query.posted_at
    note = f"answered by {by} after {format_duration(max(took, timedelta(0)))}"
    if query.answered_at > query.deadline:
        note += f" (SLA {format_duration(query.sla)} breached)"
    return note


def apply_answer_updates(config: Config, store: Store, destination_for: Callable[[str], Any], build_alert: Callable) -> list[str]:
    """Edit every delivered message of each newly answered item; errors are returned, rows stay pending."""
    errors: list[str] = []
    for query in store.answered_queries_to_update():
        note = answer_note(query, config)
        done = True
        for outbox_row in store.delivered_rows(query.cluster):
            destination = destination_for(outbox_row.destination)
            if destination is None or not outbox_row.remote_id:
                continue
            try:
                destination.update(outbox_row.remote_id, build_alert(store, outbox_row), note)
            except DeliveryError as exc:
                errors.append(str(exc))
                done = False
        if done and not store.undelivered_alerts(query.cluster):
            store.mark_query_updates_done(query.cluster)
    return errors

