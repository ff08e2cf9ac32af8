"""One `earful run`: due monitors -> fetch -> match -> store -> deliver.

Each monitor runs in isolation: whatever one connector raises is recorded
as that monitor's failure (with a message naming monitor and source) and
the loop goes on. The only commit point of a monitor is `Store.ingest`,
which writes its mentions, matches, outbox rows and new cursor together.

A run has a budget (`run_budget`, default 10m), checked between monitors:
once a run has taken that long, the monitors it has not started are left
due (not started, not recorded as run), so the next tick takes them up;
the run still delivers what it found. Monitors run longest-waiting first,
so an overrun never leaves the same monitors behind twice in a row. Each
HTTP exchange has its own deadline (connectors/limits.py), so one slow
source costs at most its `timeout` per request, never the whole run.
An overrun is reported (`RunReport.overrun`, on stderr even under
`--quiet`), makes the run exit 1 (cron mails it, a systemd unit shows as
failed: not every due channel was watched this tick), and raises one health
notice per incident (monitors/health.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Callable, Sequence

from earful import connectors
from earful.connectors.base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    RequestBudget,
    RunResources,
)
from earful.core import Match, Mention, format_duration, parse_time, utcnow
from earful.rules.models import RulePack

from . import digest as digests
from . import faults, health, idle, isolation, replies, spikes
from .config import Config, MonitorConfig
from .lock import run_lock
from .outbox import DeliveryReport, DestinationPool, build_alert, deliver
from .routing import Router, destinations_for
from .schedule import is_due, next_due
from .store import Store

log = logging.getLogger("earful.run")


@dataclass
class MonitorOutcome:
    name: str
    source: str
    ok: bool
    fetched: int = 0
    new_items: int = 0
    alerts: int = 0
    requests: int = 0
    not_modified: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    quarantined: int = 0  # items set aside: they could not be stored even after sanitising (monitors/isolation.py)
    seconds: float = 0.0  # wall-clock time the monitor took
    would_alert: list[tuple[Mention, list[Match], list[str]]] = field(default_factory=list)


@dataclass
class RunReport:
    locked_out: bool = False
    monitors: list[MonitorOutcome] = field(default_factory=list)
    delivery: DeliveryReport | None = None
    not_due: list[str] = field(default_factory=list)
    replies: replies.RecheckReport | None = None
    health: list[health.HealthEvent] = field(default_factory=list)
    update_errors: list[str] = field(default_factory=list)
    spikes: list = field(default_factory=list)
    digests: list = field(default_factory=list)
    digest_errors: list[str] = field(default_factory=list)
    overrun: str | None = None  # "run budget of 10m exceeded after 2 of 5 monitors; ..." when monitors were left due
    left_due: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return (any(not m.ok for m in self.monitors) or bool(self.delivery and self.delivery.permanent)
                or any(d.permanent for r in self.digests for d in r.failed) or self.overrun is not None
                or bool(self.replies and self.replies.failed))


def brand_accounts(packs: Sequence[RulePack]) -> dict[str, tuple[str, ...]]:
    """The brand's accounts per source, merged over the monitor's rule packs."""
    merged: dict[str, dict[str, None]] = {}
    for pack in packs:
        if pack.brand:
            for source, names in pack.brand.accounts.items():
                merged.setdefault(source, {}).update(dict.fromkeys(names))
    return {source: tuple(names) for source, names in merged.items()}


def classify(mention: Mention, monitor: MonitorConfig, config: Config) -> tuple[Mention, list[Match], list[str]]:
    """Mark brand-authored mentions, match the rest, decide destinations."""
    packs = config.monitor_packs(monitor)
    if not mention.author_is_brand and any(p.brand and p.brand.is_brand(mention.source, mention.author) for p in packs):
        mention = mention.replace(author_is_brand=True)
    if mention.author_is_brand:
        return mention, [], []
    matches = config.matcher.match(mention, packs=monitor.common.rules)
    return mention, matches, destinations_for(matches, monitor, config)


def budget_period(now: datetime) -> str:
    return now.strftime("%Y-%m")


def load_budget(store: Store | None, monitor: MonitorConfig, now: datetime) -> RequestBudget | None:
    limit = getattr(monitor.options, "monthly_budget", None)
    if limit is None:
        return None
    period = budget_period(now)
    return RequestBudget(monitor.name, period, limit, store.budget_used(monitor.name, period) if store else 0)


def make_connector(config: Config, monitor: MonitorConfig, now: datetime, resources: RunResources,
                   budget: RequestBudget | None = None) -> Connector:
    cls = connectors.load(monitor.connector)
    context = ConnectorContext(
        monitor=monitor.name,
        query=monitor.common.query,
        brand_accounts=brand_accounts(config.monitor_packs(monitor)),
        now=now,
        resources=resources,
        budget=budget,
    )
    return cls(monitor.options, context)


def run_monitor(config: Config, store: Store | None, monitor: MonitorConfig, now: datetime,
                dry_run: bool = False, resources: RunResources | None = None,
                clock: Callable[[], datetime] = utcnow) -> MonitorOutcome:
    outcome = MonitorOutcome(monitor.name, monitor.connector, ok=False)
    run_id = None if dry_run or store is None else store.start_run(monitor.name, now)
    connector = None
    defer_until = None
    budget = load_budget(store, monitor, now)
    try:
        connector = make_connector(config, monitor, now, resources or RunResources(), budget)
        result = connector.fetch(store.cursor(monitor.name) if store else None)
        faults.point("after_fetch")
        # Each item sanitised, oldest first, classified; what still cannot be taken in is set aside, not fatal.
        batch, aside = isolation.prepare(result.mentions, lambda m: classify(m, monitor, config), now)
        outcome.fetched, outcome.requests, outcome.not_modified = len(result.mentions), result.requests, result.not_modified
        outcome.notes = list(result.notes)
        route = Router(config)
        if dry_run:
            routed = [(mention, matches, route(mention, destinations)) for mention, matches, destinations in batch]
            outcome.would_alert = [entry for entry in routed if entry[2]]
            outcome.alerts = len(outcome.would_alert)
        else:
            matches_by_key = {mention.key: matches for mention, matches, _ in batch}
            isolation.keep_aside(store, monitor.name, aside, now)
            records, rejected = isolation.ingest(
                store, monitor.name, batch, result.cursor, now, route=route,
                on_record=replies.tracker(store, config, monitor.name, matches_by_key, now,
                                          sees_replies=connector.sees_replies))
            aside += rejected
            faults.point("after_store")
            outcome.new_items = sum(r.outcome == "new" for r in records)
            outcome.alerts = sum(len(r.alerts) for r in records)
        if aside:
            outcome.quarantined = len(aside)
            outcome.notes.append(isolation.summary(aside))
        outcome.ok = True
    except ConnectorError as exc:
        outcome.error = f"monitor '{monitor.name}' ({monitor.connector}): {exc}"
        if exc.retry_after:
            defer_until = now + timedelta(seconds=exc.retry_after)
    except Exception as exc:  # noqa: BLE001 - one broken monitor must not stop the others
        log.debug("monitor %s crashed", monitor.name, exc_info=True)
        outcome.error = f"monitor '{monitor.name}' ({monitor.connector}): unexpected {type(exc).__name__}: {exc}"
    finally:
        if connector is not None:
            try:
                connector.close()
            except Exception:  # noqa: BLE001
                log.debug("closing %s failed", monitor.name, exc_info=True)
    if budget is not None and budget.spent_this_run and not dry_run and store is not None:
        store.save_budget(monitor.name, budget.period, budget.used, budget.limit, now)
    if run_id is not None:
        store.finish_run(run_id, monitor.name, ok=outcome.ok, now=clock(), fetched=outcome.fetched,
                         new_items=outcome.new_items, alerts=outcome.alerts, requests=outcome.requests,
                         error=outcome.error, defer_until=defer_until, not_modified=outcome.not_modified)
    return outcome


def longest_waiting_first(monitors: Sequence[MonitorConfig], store: Store) -> list[MonitorConfig]:
    """Never-run monitors first, then by last start, oldest first; ties keep the file's order."""
    states = store.all_monitor_states()
    starts = {m.name: parse_time(states.get(m.name, {}).get("last_start")) for m in monitors}
    return sorted(monitors, key=lambda m: (starts[m.name] is not None, starts[m.name] or datetime.min))


def overrun_message(budget: timedelta, outcomes: Sequence[MonitorOutcome], left: Sequence[MonitorConfig]) -> str:
    """What an operator reads when a run stopped starting monitors: how far it got, what waits, what was slow."""
    slowest = max(outcomes, key=lambda o: o.seconds, default=None)
    total = len(outcomes) + len(left)
    message = (f"run budget of {format_duration(budget)} exceeded after {len(outcomes)} of {total} monitors; "
               f"{len(left)} left for the next tick ({', '.join(m.name for m in left)})")
    if slowest is not None:
        message += f"; slowest: {slowest.name} ({format_duration(timedelta(seconds=round(slowest.seconds)))})"
    return message


def due_monitors(config: Config, store: Store, now: datetime) -> tuple[list[MonitorConfig], list[str]]:
    states = store.all_monitor_states()
    due, not_due = [], []
    for monitor in config.monitors.values():
        if not monitor.common.enabled:
            continue
        state = states.get(monitor.name, {})
        if is_due(monitor.schedule, parse_time(state.get("last_start")), now, config.timezone,
                  parse_time(state.get("defer_until"))):
            due.append(monitor)
        else:
            not_due.append(monitor.name)
    return due, not_due


def next_wake(config: Config, store: Store, now: datetime) -> datetime | None:
    """When the next run has anything to do: a monitor due or an outbox retry."""
    states = store.all_monitor_states()
    times = []
    for monitor in config.monitors.values():
        if monitor.common.enabled:
            state = states.get(monitor.name, {})
            times.append(next_due(monitor.schedule, parse_time(state.get("last_start")), now, config.timezone,
                                  parse_time(state.get("defer_until"))))
    for moment in (store.next_outbox_attempt(), store.next_query_check(), store.next_query_deadline(),
                   digests.next_wake(config, store, now)):
        if moment is not None:
            times.append(moment)
    return min(times) if times else None


def run(config: Config, *, names: Sequence[str] | None = None, force_all: bool = False, dry_run: bool = False,
        now: datetime | None = None, clock: Callable[[], datetime] | None = None,
        progress: Callable[[MonitorOutcome], None] | None = None,
        timer: Callable[[], float] = time.monotonic) -> RunReport:
    """Run what is due (or `names`, or everything with `force_all`) within
    the run budget, then re-check open queries, check channel health, and deliver.

    `clock` (or a fixed `now`) replaces the wall clock, for tests; `timer`
    (seconds, monotonic) measures the run budget, which the test clock must
    not: a simulated day between two calls is no overrun.
    """
    clock = clock or ((lambda: now) if now is not None else utcnow)
    start = clock()
    report = RunReport()
    if dry_run:
        return _dry_run(config, names, start, report, progress)

    config.state_path.parent.mkdir(parents=True, exist_ok=True)
    with run_lock(config.state_path) as acquired:
        if not acquired:
            report.locked_out = True
            return report
        store = Store(config.state_path)
        resources = RunResources()
        pool = DestinationPool(config)
        try:
            store.mark_abandoned_runs(start)
            if names:
                selected = [config.monitors[n] for n in names]
            elif force_all:
                selected = longest_waiting_first([m for m in config.monitors.values() if m.common.enabled], store)
            else:
                selected, report.not_due = due_monitors(config, store, start)
                selected = longest_waiting_first(selected, store)
            left = _run_within_budget(config, store, selected, resources, clock, timer, report, progress)
            report.replies = _follow_up(config, store, clock(), resources)
            report.health = health.check(config, store, clock())
            budget_event = health.check_run_budget(config, store, clock(), report.overrun, left)
            if budget_event is not None:
                report.health.append(budget_event)
            if config.settings.spikes is not None:  # before delivery, so a spike goes out this tick
                try:
                    report.spikes = spikes.check(config, store, clock(), config.settings.spikes)
                except Exception as exc:  # noqa: BLE001 - a broken spike check must not hold up delivery
                    log.debug("spike check failed", exc_info=True)
                    report.digest_errors.append(f"spike check: {type(exc).__name__}: {exc}")
            report.delivery = deliver(config, store, pool, clock)
            report.update_errors = replies.apply_answer_updates(config, store, pool.get,
                                                                    partial(build_alert, zone=config.timezone))
            for due_digest in digests.due(config, store, clock()):  # after delivery: lists what flood control held
                try:
                    report.digests.append(digests.send(config, store, due_digest, clock(), pool))
                except Exception as exc:  # noqa: BLE001 - a broken digest must not fail the monitors' run
                    log.debug("digest %s failed", due_digest.name, exc_info=True)
                    report.digest_errors.append(f"digest '{due_digest.name}': {type(exc).__name__}: {exc}")
            idle.remember(config, next_wake(config, store, clock()))
        finally:
            resources.close_all()
            pool.close_all()
            store.close()
    return report


def _run_within_budget(config: Config, store: Store, selected: Sequence[MonitorConfig], resources: RunResources,
                       clock: Callable[[], datetime], timer: Callable[[], float], report: RunReport,
                       progress: Callable[[MonitorOutcome], None] | None) -> list[MonitorConfig]:
    """Run `selected` in order until the run budget is spent; returns the monitors left due."""
    budget = config.settings.run_budget
    deadline = timer() + budget.total_seconds()
    for index, monitor in enumerate(selected):
        if timer() >= deadline:
            left = list(selected[index:])
            report.overrun = overrun_message(budget, report.monitors, left)
            report.left_due = [m.name for m in left]
            log.info("%s", report.overrun)  # the CLI prints it (on stderr); a warning here would print it twice
            return left
        began = timer()
        outcome = run_monitor(config, store, monitor, clock(), resources=resources, clock=clock)
        outcome.seconds = timer() - began
        report.monitors.append(outcome)
        if progress:
            progress(outcome)
    return []


def _follow_up(config: Config, store: Store, now: datetime, resources: RunResources) -> replies.RecheckReport:
    """Re-check open queries (one connector per monitor, made on demand), then escalate breaches."""
    made: dict[str, Connector | None] = {}

    def connector_for(name: str) -> Connector | None:
        if name not in made:
            try:
                made[name] = make_connector(config, config.monitors[name], now, resources)
                made[name].use_cursor(store.cursor(name))
            except Exception:  # noqa: BLE001 - a monitor that cannot start just skips its checks
                log.debug("cannot build connector for %s", name, exc_info=True)
                made[name] = None
        return made[name]

    try:
        report = replies.recheck(config, store, now, connector_for)
        replies.escalate_breaches(config, store, now, report)
        return report
    finally:
        for connector in made.values():
            if connector is not None:
                connector.close()


def _dry_run(config: Config, names: Sequence[str] | None, now: datetime, report: RunReport,
             progress: Callable[[MonitorOutcome], None] | None) -> RunReport:
    store = Store(config.state_path) if config.state_path.exists() else None
    selected = [config.monitors[n] for n in names] if names else list(config.monitors.values())
    resources = RunResources()
    try:
        for monitor in selected:
            outcome = run_monitor(config, store, monitor, now, dry_run=True, resources=resources)
            report.monitors.append(outcome)
            if progress:
                progress(outcome)
    finally:
        resources.close_all()
        if store is not None:
            store.close()
    return report
