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
* the look failed (`replies()` raised, or a channel that does show
  replies could not tell this time): neither answered nor unanswered. The
  query is looked at again (on its usual steps; past its deadline, on a
  faster ladder from the first failure), is never escalated while its last
  look failed, and closes as `unknown`, never `unanswered`, if looks still
  fail when it would be given up. The failures are reported like failed
  fetches (run summary, exit 1, `earful status`, a health notice after
  `health.failures` runs in a row: monitors/health.py);
* no answer long after the deadline: the query closes as `unanswered`;
* found a week or more past its deadline already (a catch-up, a first run
  over old threads): the query opens as `late` ("found too late"), is
  never checked nor escalated, and is counted apart in `earful report`.
  One found late but within that week is tracked like any other; its alert
  says it was found past its deadline, and no escalation follows.

A brand reply that arrives as a mention itself (an HN comment by the
brand's account below a tracked one) answers the query at ingest, free.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from earful.alerts.base import DeliveryError
from earful.connectors.base import Connector, ReplyStatus
from earful.core import Match, Mention, format_duration, parse_time

from .config import Config
from .store import Query, Recorded, Store

log = logging.getLogger("earful.replies")

BACKOFF = [timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4), timedelta(hours=12), timedelta(days=1)]
RETRY_LADDER = BACKOFF[:3]  # after a failed look past the deadline: 5 min, 15 min, then every hour
TRACKED_LABELS = frozenset({"question", "complaint"})
GIVE_UP_AFTER = timedelta(days=7)  # beyond the deadline: then the query closes as unanswered


def sla_for(matches: list[Match], config: Config) -> timedelta | None:
    """The tightest SLA among the matches, or the default one for questions and complaints."""
    slas = [m.reply_within for m in matches if m.reply_within]
    if not slas and config.settings.defaults.reply_within and any(l in TRACKED_LABELS for m in matches for l in m.labels):
        slas = [config.settings.defaults.reply_within]
    return min(slas) if slas else None


def deadline_for(start: datetime, sla: timedelta, config: Config) -> datetime:
    hours = config.business_hours()
    return hours.add(start, sla) if hours else start + sla


def found_too_late(seen_at: datetime, deadline: datetime) -> bool:
    """Seen only when a tracked query would already have been given up: nothing left to track.

    Checking such an item once a day would only spend the reply-check
    budget, and counting it "open" would fill the report with queries
    nobody could have answered in time.
    """
    return seen_at >= deadline + GIVE_UP_AFTER


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
    moment = next_step(seen_at, now)
    if now < deadline < moment:
        moment = deadline
    return min(moment, give_up)


def next_step(start: datetime, now: datetime, ladder: list[timedelta] = BACKOFF) -> datetime:
    """The first moment after `now` on the back-off `ladder` that began at `start` (its last step repeats)."""
    moment = start
    for step in ladder:
        moment += step
        if moment > now:
            return moment
    while moment <= now:
        moment += ladder[-1]
    return moment


def retry_after_failed_look(query: Query, failing_since: datetime | None, now: datetime) -> datetime | None:
    """When to look again after a failed look; None when the query would be given up.

    Before the deadline nothing waits on the answer: the usual steps (and
    the check at the deadline) suffice. Past it, an escalation is held
    until a look succeeds, so the retry climbs its own ladder from the
    first failure (5 min, 15 min, then hourly): a source back after a blip
    is read within minutes, and one back after a day's outage within the
    hour, at one request an hour while it stays down.
    """
    regular = next_check(query.seen_at, now, query.deadline)
    if regular is None or now < query.deadline:
        return regular
    return min(regular, next_step(failing_since or now, now, RETRY_LADDER))


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
        status, answered_at, answered_by = ("open" if sees_replies else "unknown"), None, None
        if mention.brand_replied:
            status = "answered"
            answered_at = parse_time(str(mention.raw.get("reply_at"))) if mention.raw.get("reply_at") else None
            answered_by = mention.raw.get("reply_by") or None  # the name the page shows, or nobody's
        elif status == "open" and found_too_late(now, deadline):
            status = "late"
        # Found already past its deadline (a catch-up, an old thread): the alert itself says so
        # (see `alert_note`), and no separate escalation follows: paging on-call for every
        # stale item of a three-day backlog helps nobody.
        escalated_at = now if deadline <= now and status == "open" else None
        store.open_query(
            cluster=record.cluster, item_key=mention.key, monitor=monitor, source=mention.source, posted_at=posted,
            seen_at=now, sla=sla, business_hours=config.business_hours() is not None, deadline=deadline, status=status,
            next_check_at=next_check(now, now, deadline) if status == "open" else None, answered_at=answered_at,
            answered_by=answered_by, escalated_at=escalated_at,
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
    held: int = 0  # breached queries not escalated because their last look failed
    failures: dict[str, list[str]] = field(default_factory=dict)  # monitor -> what went wrong in its failed looks

    @property
    def failed(self) -> bool:
        return bool(self.failures)


def recheck(config: Config, store: Store, now: datetime, connector_for: Callable[[str], Connector | None],
            report: RecheckReport | None = None) -> RecheckReport:
    """Ask sources about due open queries, within each monitor's per-run budget."""
    report = report or RecheckReport()
    budget: dict[str, int] = {}
    looked: set[str] = set()  # monitors that looked at something this run
    for query in store.queries_due(now):
        monitor = config.monitors.get(query.monitor)
        if monitor is None:
            continue
        left = budget.setdefault(query.monitor, monitor.common.reply_checks_per_run)
        if left <= 0:
            continue
        mention = store.item(query.item_key)
        if mention is None:
            continue
        connector = connector_for(query.monitor)
        budget[query.monitor] = left - 1
        looked.add(query.monitor)
        status, failure = _look(connector, mention)
        report.checked += 1
        if failure is not None:
            report.failures.setdefault(query.monitor, []).append(f"reply check of {query.item_key} failed: {failure}")
            _look_failed(store, query, now, report)
        else:
            _apply(store, query, status, now, report)
    for name in sorted(looked):
        errors = report.failures.get(name)
        store.record_reply_checks(name, errors[-1] if errors else None, now)
    return report


def _look(connector: Connector | None, mention: Mention) -> tuple[ReplyStatus, str | None]:
    """The connector's answer, or why there is none (a failed look is never "not answered")."""
    if connector is None:
        return ReplyStatus(answered=None), "the connector could not be started (see the monitor's run error)"
    try:
        status = connector.replies(mention)
    except Exception as exc:  # noqa: BLE001 - whatever a connector raises is a failed look, reported, never a verdict
        log.debug("reply check failed", exc_info=True)
        return ReplyStatus(answered=None), f"{type(exc).__name__}: {exc}"
    if status.answered is None and connector.sees_replies:
        # The channel does show replies, this look just could not tell (a 502 the connector
        # swallowed, a truncated tree): a failed look, not the channel's nature.
        return status, f"{mention.source} could not tell whether the brand replied (the look failed or was cut short)"
    return status, None


def _look_failed(store: Store, query: Query, now: datetime, report: RecheckReport) -> None:
    retry_at = retry_after_failed_look(query, store.query_looks_failing_since(query.cluster), now)
    if retry_at is None:  # still failing when it would be given up: we do not know, so never "unanswered"
        store.record_query_unknown(query.cluster, now)
        report.unknown += 1
    else:
        store.record_query_look_failed(query.cluster, now, retry_at)


def _apply(store: Store, query: Query, status: ReplyStatus, now: datetime, report: RecheckReport) -> None:
    if status.answered is True:
        store.record_query_answered(query.cluster, status.answered_at or now, status.answered_by or None, status.url, now)
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
    """One escalation per breached open query, queued in the outbox; none while its last look failed.

    A failed look says nothing about the answer, so a query whose deadline
    passed while its looks fail waits for the next successful one: answered
    then, it is closed (and its messages say "answered after ..., SLA
    breached"); unanswered, it is escalated then. Meanwhile the monitor's
    "reply checks failing" notice tells on-call how many wait this way.
    """
    awaiting = store.queries_awaiting_a_look(now)
    for query in store.breached_queries(now):
        if query.cluster in awaiting:
            report.held += 1
            continue
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
    if query.status == "late":
        return (f"found {format_duration(query.seen_at - query.deadline)} after its {format_duration(query.sla)} reply "
                f"deadline (posted {format_duration(query.seen_at - query.posted_at)} earlier, no brand reply seen): "
                "too late to track, so no reply checks and no escalation")
    if query.deadline <= query.seen_at:
        return (f"already past its {format_duration(query.sla)} reply SLA when found "
                f"(posted {format_duration(query.seen_at - query.posted_at)} earlier, no brand reply seen)")
    return f"reply expected within {format_duration(query.sla)} (by {query.deadline:%Y-%m-%d %H:%M} UTC)"


def answer_note(query: Query, config: Config) -> str:
    """"answered by X after 37m"; a source that shows the answer but not who wrote it gets no invented name."""
    answered = f"answered by {query.answered_by}" if query.answered_by else "answered on the page"
    if query.answered_at is None:
        return answered
    hours = config.business_hours()
    took = hours.elapsed(query.posted_at, query.answered_at) if hours else query.answered_at - query.posted_at
    note = f"{answered} after {format_duration(max(took, timedelta(0)))}"
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

