"""No channel goes unwatched, including the ones earful watches itself.

A monitor is *unwatched* when it has failed `health.failures` runs in a row
(bad token, source down, rate limited for days), or when it has gone silent
for longer than is usual for it: the gap since it last found something new
exceeds `silence_factor` times the longest of its recent gaps between finds,
and at least `silence_floor`. A layout change that makes a page parse to
nothing looks exactly like that, which is why silence counts. Each incident
raises one "channel unwatched" alert and, on recovery, one "channel back"
alert, both through the outbox like any other alert (so they are delivered
exactly once too).

earful itself can leave channels unwatched too: a run that overran its
`run_budget` left monitors for later (see runner.py). That is one incident
of the run, not of a monitor: `check_run_budget` raises "earful overran its
run budget" once and "earful back within its run budget" when a run next
finishes everything it had to do in time. Its state is kept like a
monitor's, under the reserved name `RUN_HEALTH`.

A monitor whose fetches work can still fail to look at replies (a changed
comments endpoint, a revoked scope). Failed looks hold escalations back, so
they get an incident of their own: `health.failures` runs in a row with a
failed reply check raise one "reply checks failing" notice (saying how many
breached queries wait for a successful look), and a run whose checks all
work raises one "reply checks back".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from earful.core import Match, Mention, format_duration, parse_time

from .config import Config, MonitorConfig
from .store import Store, match_to_row, mention_to_row

RUN_HEALTH = "earful:run"  # the run's own health row in monitor_state: no monitor can be named so by accident
LEARN_WINDOW = timedelta(days=30)
MIN_GAPS = 3  # gaps needed before a monitor's own rhythm is trusted over the floor


@dataclass(frozen=True)
class HealthEvent:
    monitor: str
    kind: str  # unwatched | back; replies-failing | replies-back; for the run itself: overran | back
    reason: str


def usual_gap(store: Store, monitor: str, now: datetime) -> timedelta | None:
    """The longest gap between runs that found something new, over the last 30 days."""
    times = store.productive_run_starts(monitor, now - LEARN_WINDOW)
    gaps = [b - a for a, b in zip(times, times[1:])]
    return max(gaps) if len(gaps) >= MIN_GAPS else None


def problem(config: Config, store: Store, monitor: MonitorConfig, now: datetime) -> str | None:
    state = store.monitor_state(monitor.name)
    failures = state.get("consecutive_failures") or 0
    if failures >= config.settings.health.failures:
        return f"the last {failures} runs failed; last error: {state.get('last_error') or 'unknown'}"
    last_new = parse_time(state.get("last_new_item_at"))
    if last_new is None or state.get("last_status") != "ok":
        return None  # never found anything yet: nothing to compare with
    usual = usual_gap(store, monitor.name, now)
    if usual is None:
        return None  # a quiet channel without a rhythm yet is not evidence of a broken one
    threshold = max(config.settings.health.silence_floor, usual * config.settings.health.silence_factor)
    quiet = now - last_new
    if quiet > threshold:
        return (f"runs succeed but have found nothing new for {format_duration(quiet)} (usually something new every "
                f"{format_duration(usual)} or less); a changed page layout, a broken query or a revoked permission looks like this")
    return None


def check(config: Config, store: Store, now: datetime) -> list[HealthEvent]:
    """Compare each monitor's health with what was last reported; queue alerts for changes."""
    events: list[HealthEvent] = []
    for monitor in config.monitors.values():
        if not monitor.common.enabled:
            continue
        state = store.monitor_state(monitor.name)
        if not state.get("last_start"):
            continue
        reason = problem(config, store, monitor, now)
        reported = state.get("health") or "ok"
        if reason and reported != "unwatched":
            events.append(_raise(config, store, monitor, now, "unwatched", reason, (state.get("health_incidents") or 0) + 1))
        elif not reason and reported == "unwatched":
            since = parse_time(state.get("health_since"))
            gone = f" after {format_duration(now - since)}" if since else ""
            events.append(_raise(config, store, monitor, now, "back", f"watched again{gone}", state.get("health_incidents") or 1))
    events.extend(check_reply_checks(config, store, now))
    return events


def check_run_budget(config: Config, store: Store, now: datetime, overrun: str | None,
                     left: Sequence[MonitorConfig]) -> HealthEvent | None:
    """One notice when a run overran its budget (`overrun` says how), one when a run next kept to it."""
    state = store.monitor_state(RUN_HEALTH)
    reported = state.get("health") or "ok"
    incident = state.get("health_incidents") or 0
    if overrun and reported != "overran":
        reason = f"{overrun}. Raise `run_budget` in cron.yaml or find out why the slowest monitor takes so long."
        return _notify(config, store, now, RUN_HEALTH, "earful", "overran", "earful overran its run budget", reason,
                       incident + 1, _run_destinations(config, left))
    if not overrun and reported == "overran":
        since = parse_time(state.get("health_since"))
        gone = f" after {format_duration(now - since)}" if since else ""
        return _notify(config, store, now, RUN_HEALTH, "earful", "back", "earful back within its run budget",
                       f"a run finished every due monitor within `run_budget` again{gone}", max(incident, 1),
                       _run_destinations(config, config.monitors.values()))
    return None


def _run_destinations(config: Config, monitors: Iterable[MonitorConfig]) -> tuple[str, ...]:
    """health.notify, else defaults.notify, else whoever watches the monitors concerned (here: those left waiting)."""
    chosen = config.settings.health.notify or config.settings.defaults.notify
    if chosen:
        return tuple(chosen)
    found: dict[str, None] = {}
    for monitor in monitors:
        found.update(dict.fromkeys(monitor.common.notify))
    return tuple(found)


def _raise(config: Config, store: Store, monitor: MonitorConfig, now: datetime, kind: str, reason: str,
           incident: int) -> HealthEvent:
    title = f"Channel {'unwatched' if kind == 'unwatched' else 'back'}: {monitor.name} ({monitor.connector})"
    destinations = config.settings.health.notify or monitor.common.notify or config.settings.defaults.notify
    return _notify(config, store, now, monitor.name, monitor.connector, kind, title, reason, incident, destinations)


def _notify(config: Config, store: Store, now: datetime, name: str, site: str, kind: str, title: str, reason: str,
            incident: int, destinations: Sequence[str]) -> HealthEvent:
    """Queue one health notice per destination and record what was reported, in one transaction."""
    rule_id = f"channel-{kind}" if name != RUN_HEALTH else f"run-budget-{kind}"
    with store.transaction():
        _enqueue_notice(store, now, name, site, kind, title, reason, incident, destinations, rule_id, kind == "back")
        store.report_health(name, "ok" if kind == "back" else kind, now, incident)
    return HealthEvent(name, kind, reason)


def _enqueue_notice(store: Store, now: datetime, name: str, site: str, kind: str, title: str, reason: str, incident: int,
                    destinations: Sequence[str], rule_id: str, recovery: bool) -> None:
    """The outbox rows of one notice (part of the caller's transaction): keyed by incident and kind, so sent once."""
    mention = Mention(source="earful", external_id=f"health:{name}:{incident}:{kind}", title=title, text=reason,
                      author="earful", kind="message", created_at=now, site=site)
    match = Match(mention_key=mention.key, rule_id=rule_id, pack="earful", labels=("health",),
                  severity="low" if recovery else "high")
    payload = {"mentions": [mention_to_row(mention)], "matches": [match_to_row(match)], "note": None}
    for destination in destinations:
        store.enqueue(f"{mention.key}#{destination}", mention.key, destination, name, now, kind="health", payload=payload)


# -- reply checks ---------------------------------------------------------------------------------

def check_reply_checks(config: Config, store: Store, now: datetime) -> list[HealthEvent]:
    """One "reply checks failing" notice per incident (`health.failures` runs in a row), one "reply checks back".

    Failed looks hold escalations back (monitors/replies.py), so on-call
    must hear that questions are waiting on a source nobody can read: the
    notice says how many are past their deadline.
    """
    events: list[HealthEvent] = []
    awaiting = store.queries_awaiting_a_look_per_monitor(now)
    for monitor in config.monitors.values():
        state = store.monitor_state(monitor.name)
        failures = state.get("reply_check_failures") or 0
        reported = state.get("reply_health") or "ok"
        incident = state.get("reply_health_incidents") or 0
        if failures >= config.settings.health.failures and reported != "failing":
            waiting = awaiting.get(monitor.name, 0)
            reason = (f"reply checks failed in the last {failures} runs; last error: "
                      f"{state.get('last_reply_check_error') or 'unknown'}. Failed checks never count as unanswered: "
                      f"{waiting} question(s) or complaint(s) past their deadline wait for a successful check before "
                      "they escalate; look at them by hand.")
            events.append(_raise_replies(config, store, monitor, now, "failing", reason, incident + 1))
        elif failures == 0 and reported == "failing":
            since = parse_time(state.get("reply_health_since"))
            gone = f" after {format_duration(now - since)}" if since else ""
            events.append(_raise_replies(config, store, monitor, now, "back", f"reply checks work again{gone}",
                                         max(incident, 1)))
    return events


def _raise_replies(config: Config, store: Store, monitor: MonitorConfig, now: datetime, state: str, reason: str,
                   incident: int) -> HealthEvent:
    kind = f"replies-{state}"  # apart from the channel's own kinds: their notice keys must never meet
    title = f"Reply checks {state}: {monitor.name} ({monitor.connector})"
    destinations = config.settings.health.notify or monitor.common.notify or config.settings.defaults.notify
    with store.transaction():
        _enqueue_notice(store, now, monitor.name, monitor.connector, kind, title, reason, incident, destinations,
                        f"reply-checks-{state}", state == "back")
        store.report_reply_health(monitor.name, "ok" if state == "back" else state, now, incident)
    return HealthEvent(monitor.name, kind, reason)
