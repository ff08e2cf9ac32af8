"""One `earful run`: due monitors -> fetch -> match -> store -> deliver.

Each monitor runs in isolation: whatever one connector raises is recorded
as that monitor's failure (with a message naming monitor and source) and
the loop goes on. The only commit point of a monitor is `Store.ingest`,
which writes its mentions, matches, outbox rows and new cursor together.

Fetching is concurrent, storing is not: up to `concurrency` monitors (default
8) fetch at once on worker threads, at most `per_host` (default 2) of them
from one host, while the main thread alone classifies and stores each fetch
as it completes (SQLite and `Store` stay on one thread, so exactly-once is
the sequential run's). Cursors and request budgets are read by the main
thread before a monitor starts. Browser-driven connectors (review sites)
share one Playwright driver, whose sync API is bound to the thread that
started it, so they all run on one browser thread, one at a time, as do the
reply checks and the closing of that browser.

A run has a budget (`run_budget`, default 10m), checked before each monitor
starts: once a run has taken that long, the monitors it has not started are
left due (not started, not recorded as run), so the next tick takes them up;
the run still delivers what it found. Monitors start longest-waiting first,
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
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

from earful import connectors
from earful.connectors.base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    FetchResult,
    RequestBudget,
    RunResources,
)
from earful.connectors.browser import BrowserOptions
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


@dataclass
class Fetched:
    """What a worker thread hands the writer: the fetch's result or what it raised."""

    result: FetchResult | None = None
    error: Exception | None = None
    sees_replies: bool = False


def fetch_monitor(config: Config, monitor: MonitorConfig, now: datetime, resources: RunResources,
                  budget: RequestBudget | None, cursor: dict[str, Any] | None) -> Fetched:
    """Build the connector and fetch; safe on a worker thread, as it touches neither the store nor the matcher."""
    connector = None
    try:
        connector = make_connector(config, monitor, now, resources, budget)
        return Fetched(connector.fetch(cursor), sees_replies=connector.sees_replies)
    except Exception as exc:  # noqa: BLE001 - the writer reports it as this monitor's failure
        return Fetched(error=exc)
    finally:
        if connector is not None:
            try:
                connector.close()
            except Exception:  # noqa: BLE001
                log.debug("closing %s failed", monitor.name, exc_info=True)


def record_fetch(config: Config, store: Store | None, monitor: MonitorConfig, now: datetime, fetched: Fetched, *,
                 run_id: int | None, budget: RequestBudget | None, dry_run: bool = False,
                 clock: Callable[[], datetime] = utcnow) -> MonitorOutcome:
    """Classify and store one fetch (the writer's half of a monitor), then close its run record."""
    outcome = MonitorOutcome(monitor.name, monitor.connector, ok=False)
    defer_until = None
    try:
        if fetched.error is not None:
            raise fetched.error
        result = fetched.result
        assert result is not None
        faults.point("after_fetch")
        # Each item sanitised, oldest first, classified; what still cannot be taken in is set aside, not fatal.
        batch, aside = isolation.prepare(result.mentions, lambda m: classify(m, monitor, config), now)
        outcome.fetched, outcome.requests, outcome.not_modified = len(result.mentions), result.requests, result.not_modified
        outcome.notes = list(result.notes)
        route = Router(config)
        if dry_run or store is None:
            routed = [(mention, matches, route(mention, destinations)) for mention, matches, destinations in batch]
            outcome.would_alert = [entry for entry in routed if entry[2]]
            outcome.alerts = len(outcome.would_alert)
        else:
            matches_by_key = {mention.key: matches for mention, matches, _ in batch}
            isolation.keep_aside(store, monitor.name, aside, now)
            records, rejected = isolation.ingest(
                store, monitor.name, batch, result.cursor, now, route=route,
                on_record=replies.tracker(store, config, monitor.name, matches_by_key, now,
                                          sees_replies=fetched.sees_replies))
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
        log.debug("monitor %s crashed", monitor.name, exc_info=exc)
        outcome.error = f"monitor '{monitor.name}' ({monitor.connector}): unexpected {type(exc).__name__}: {exc}"
    if budget is not None and budget.spent_this_run and not dry_run and store is not None:
        store.save_budget(monitor.name, budget.period, budget.used, budget.limit, now)
    if run_id is not None and store is not None:
        store.finish_run(run_id, monitor.name, ok=outcome.ok, now=clock(), fetched=outcome.fetched,
                         new_items=outcome.new_items, alerts=outcome.alerts, requests=outcome.requests,
                         error=outcome.error, defer_until=defer_until, not_modified=outcome.not_modified)
    return outcome


def run_monitor(config: Config, store: Store | None, monitor: MonitorConfig, now: datetime,
                dry_run: bool = False, resources: RunResources | None = None,
                clock: Callable[[], datetime] = utcnow) -> MonitorOutcome:
    """One monitor start to finish on this thread (dry runs, benchmarks)."""
    run_id = None if dry_run or store is None else store.start_run(monitor.name, now)
    budget = load_budget(store, monitor, now)
    fetched = fetch_monitor(config, monitor, now, resources or RunResources(), budget,
                            store.cursor(monitor.name) if store else None)
    return record_fetch(config, store, monitor, now, fetched, run_id=run_id, budget=budget, dry_run=dry_run,
                        clock=clock)


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
        lanes = Lanes(config.settings.concurrency)
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
            left = _run_within_budget(config, store, selected, resources, lanes, clock, timer, report, progress)
            report.replies = _follow_up(config, store, clock(), resources, lanes)
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
            lanes.close(resources)
            pool.close_all()
            store.close()
    return report


def host_of(monitor: MonitorConfig) -> str:
    """The host a monitor fetches from, for `per_host`: its `base_url`'s, else its (first) feed URL's, else the connector's name."""
    options = monitor.options
    for url in (getattr(options, "base_url", None), getattr(options, "url", None), *(getattr(options, "urls", None) or ())):
        host = urlsplit(url).hostname if isinstance(url, str) else None
        if host:
            return host.lower()
    return monitor.connector


def drives_browser(monitor: MonitorConfig) -> bool:
    return isinstance(monitor.options, BrowserOptions)


class Lanes:
    """The run's fetch threads: a pool of `concurrency` for plain HTTP and one browser thread.

    The browser thread lives for the whole run, because the follow-up's reply
    checks and the closing of the browser must happen on it too.
    """

    def __init__(self, concurrency: int):
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="earful-fetch")
        self.browser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="earful-browser")

    def for_monitor(self, monitor: MonitorConfig) -> ThreadPoolExecutor:
        return self.browser if drives_browser(monitor) else self.pool

    def close(self, resources: RunResources) -> None:
        """Close the run's resources on the browser thread (Playwright's), then stop both lanes."""
        try:
            self.browser.submit(resources.close_all).result()
        finally:
            self.pool.shutdown(wait=True)
            self.browser.shutdown(wait=True)


class OnBrowserThread:
    """A connector whose every method runs on the browser thread; attributes read through."""

    def __init__(self, connector: Connector, lane: ThreadPoolExecutor):
        self._connector = connector
        self._lane = lane

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._connector, name)
        if not callable(value):
            return value
        return lambda *args, **kwargs: self._lane.submit(value, *args, **kwargs).result()


@dataclass
class Started:
    """A monitor on its way: what the writer needs once its fetch is back."""

    index: int
    monitor: MonitorConfig
    now: datetime
    run_id: int
    budget: RequestBudget | None
    began: float
    host: str
    browser: bool


def _run_within_budget(config: Config, store: Store, selected: Sequence[MonitorConfig], resources: RunResources,
                       lanes: Lanes, clock: Callable[[], datetime], timer: Callable[[], float], report: RunReport,
                       progress: Callable[[MonitorOutcome], None] | None) -> list[MonitorConfig]:
    """Start `selected` in order as slots free up until the run budget is spent; store each fetch as it
    completes, on this thread only; returns the monitors left due."""
    settings = config.settings
    deadline = timer() + settings.run_budget.total_seconds()
    waiting = list(enumerate(selected))
    running: dict[Future[Fetched], Started] = {}
    per_host: Counter[str] = Counter()
    outcomes: dict[int, MonitorOutcome] = {}
    left: list[MonitorConfig] = []

    def startable() -> int | None:
        """Position in `waiting` of the first monitor a slot is free for (window, host, browser thread)."""
        if len(running) >= settings.concurrency:
            return None
        browser_busy = any(started.browser for started in running.values())
        for position, (_, monitor) in enumerate(waiting):
            if per_host[host_of(monitor)] < settings.per_host and not (browser_busy and drives_browser(monitor)):
                return position
        return None

    while waiting or running:
        position = startable()
        if position is not None:
            if timer() >= deadline:
                left = [monitor for _, monitor in waiting]
                waiting.clear()
                continue
            index, monitor = waiting.pop(position)
            now = clock()
            started = Started(index, monitor, now, store.start_run(monitor.name, now), load_budget(store, monitor, now),
                              timer(), host_of(monitor), drives_browser(monitor))
            per_host[started.host] += 1
            future = lanes.for_monitor(monitor).submit(fetch_monitor, config, monitor, now, resources, started.budget,
                                                       store.cursor(monitor.name))
            running[future] = started
            continue
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in sorted(done, key=lambda f: running[f].index):
            started = running.pop(future)
            per_host[started.host] -= 1
            outcome = record_fetch(config, store, started.monitor, started.now, future.result(), run_id=started.run_id,
                                   budget=started.budget, clock=clock)
            outcome.seconds = timer() - started.began
            outcomes[started.index] = outcome
            if progress:
                progress(outcome)
    report.monitors.extend(outcomes[index] for index in sorted(outcomes))
    if left:
        report.overrun = overrun_message(settings.run_budget, report.monitors, left)
        report.left_due = [m.name for m in left]
        log.info("%s", report.overrun)  # the CLI prints it (on stderr); a warning here would print it twice
    return left


def _follow_up(config: Config, store: Store, now: datetime, resources: RunResources,
               lanes: Lanes) -> replies.RecheckReport:
    """Re-check open queries (one connector per monitor, made on demand, browser ones on the browser thread),
    then escalate breaches."""
    made: dict[str, Connector | None] = {}

    def build(monitor: MonitorConfig) -> Connector:
        if drives_browser(monitor):
            connector = lanes.browser.submit(make_connector, config, monitor, now, resources).result()
            return OnBrowserThread(connector, lanes.browser)  # type: ignore[return-value]
        return make_connector(config, monitor, now, resources)

    def connector_for(name: str) -> Connector | None:
        if name not in made:
            try:
                made[name] = build(config.monitors[name])
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
