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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from earful.core import Mention
from earful.core import Match, format_duration

from .config import Config, MonitorConfig
from earful.core import parse_time
from .store import Store, match_to_row, mention_to_row

LEARN_WINDOW = timedelta(days=30)
MIN_GAPS = 3  # gaps needed before a monitor's own rhythm is trusted over the floor


@dataclass(frozen=True)
class HealthEvent:
    monitor: str
    kind: str  # unwatched | back
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
    return events


def _raise(config: Config, store: Store, monitor: MonitorConfig, now: datetime, kind: str, reason: str,
           incident: int) -> HealthEvent:
    title = f"Channel {'unwatched' if kind == 'unwatched' else 'back'}: {monitor.name} ({monitor.connector})"
    mention = Mention(source="earful", external_id=f"health:{monitor.name}:{incident}:{kind}", title=title, text=reason,
                      author="earful", kind="message", created_at=now, site=monitor.connector)
    match = Match(mention_key=mention.key, rule_id=f"channel-{kind}", pack="earful", labels=("health",),
                  severity="high" if kind == "unwatched" else "low")
    payload = {"mentions": [mention_to_row(mention)], "matches": [match_to_row(match)], "note": None}
    destinations = config.settings.health.notify or monitor.common.notify or config.settings.defaults.notify
    with store.transaction():
        for destination in destinations:
            store.enqueue(f"{mention.key}#{destination}", mention.key, destination, monitor.name, now, kind="health", payload=payload)
        store.report_health(monitor.name, "unwatched" if kind == "unwatched" else "ok", now, incident)
    return HealthEvent(monitor.name, kind, reason)
