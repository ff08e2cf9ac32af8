"""`earful status`: is every channel watched right now, and is earful itself running?

Read by an operator in a terminal and by cron mail, where nothing is a
terminal and rich lays tables out for 80 columns. So the tables keep to
80 columns with short, never-broken headers, and a legend names what each
column counts; everything long (an error, a silence explanation) goes on its
own wrapped line below the table, in full. An error is shown only while its
monitor or destination is failing, without the labels that repeat the
monitor's name. The one problem no monitor can report, cron or the systemd
timer no longer starting earful, is told apart from a quiet state by the age
of the last tick.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from earful.core import iso, parse_time

from . import health, idle
from .config import Config, MonitorConfig
from .runner import budget_period
from .schedule import interval, next_due
from .store import Store

STOPPED_FLOOR = timedelta(minutes=10)
STOPPED_FACTOR = 3  # ticks missed, at the most frequent schedule, before earful counts as stopped


@dataclass
class MonitorStatus:
    name: str
    connector: str
    schedule: str
    state: str  # ok | failing | unwatched | never ran | disabled
    consecutive_failures: int = 0
    last_run: datetime | None = None
    last_success: datetime | None = None
    next_run: datetime | None = None  # None while disabled
    new_items: int = 0
    alerts_sent: int = 0
    failed_runs: int = 0
    open_queries: int = 0
    breached_queries: int = 0  # open and past their reply deadline
    budget_used: int | None = None
    budget_limit: int | None = None
    error: str | None = None  # only while failing
    unwatched_since: datetime | None = None
    unwatched_reason: str | None = None  # why a monitor that runs fine counts as unwatched (silence)
    reply_check_failures: int = 0  # runs in a row whose checks for the brand's replies failed
    reply_check_error: str | None = None  # only while they fail
    reply_check_error_at: datetime | None = None


@dataclass
class DestinationStatus:
    name: str
    delivered: int = 0
    pending: int = 0
    held: int = 0  # kept back by flood control
    failing: bool = False  # its most recent send failed
    error: str | None = None  # only while failing
    last_attempt: datetime | None = None


@dataclass
class SchedulerStatus:
    last_tick: datetime | None  # the most recent full run
    stopped_after: timedelta  # a tick older than this while monitors wait means nothing starts earful
    stopped: bool = False


@dataclass
class Status:
    now: datetime
    since: str
    scheduler: SchedulerStatus
    monitors: list[MonitorStatus] = field(default_factory=list)
    destinations: list[DestinationStatus] = field(default_factory=list)
    quarantined: int = 0  # items no run could store, even sanitised (monitors/isolation.py)
    latest_quarantined: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """For `earful status --json`: times in ISO 8601 UTC, durations in seconds."""
        data = _jsonable(asdict(self))
        scheduler = self.scheduler
        data["scheduler"] = {"last_tick": iso(scheduler.last_tick), "stopped": scheduler.stopped,
                             "last_tick_age_s": None if scheduler.last_tick is None else _seconds(self.now - scheduler.last_tick),
                             "stopped_after_s": _seconds(scheduler.stopped_after)}
        return data


def collect(config: Config, store: Store, now: datetime, window: timedelta, since: str) -> Status:
    states = store.all_monitor_states()
    totals = store.run_totals(now - window)
    sent = store.sent_per_monitor(now - window)
    queries = store.open_queries_per_monitor(now)
    budgets = store.budgets(budget_period(now))
    monitors = []
    for monitor in config.monitors.values():
        state = states.get(monitor.name, {})
        total = totals.get(monitor.name, {})
        row = _monitor(config, store, monitor, state, now)
        row.new_items, row.failed_runs = total.get("new_items") or 0, total.get("failures") or 0
        row.alerts_sent = sent.get(monitor.name, 0)
        row.open_queries, row.breached_queries = queries.get(monitor.name, (0, 0))
        row.budget_limit = getattr(monitor.options, "monthly_budget", None)
        if row.budget_limit is not None:
            row.budget_used = (budgets.get(monitor.name) or {}).get("used") or 0
        monitors.append(row)
    latest = store.quarantined(1)
    return Status(now=now, since=since, scheduler=_scheduler(config, states, monitors, now), monitors=monitors,
                  destinations=_destinations(config, store), quarantined=store.quarantined_count() if latest else 0,
                  latest_quarantined=latest[0] if latest else None)


def _monitor(config: Config, store: Store, monitor: MonitorConfig, state: dict[str, Any], now: datetime) -> MonitorStatus:
    failures = state.get("consecutive_failures") or 0
    last_run = parse_time(state.get("last_start"))
    row = MonitorStatus(monitor.name, monitor.connector, monitor.schedule, "", consecutive_failures=failures,
                        last_run=last_run, last_success=parse_time(state.get("last_success")))
    _reply_checks(row, monitor, state)
    if state.get("health") == "unwatched":
        row.unwatched_since = parse_time(state.get("health_since"))
    if not monitor.common.enabled:
        row.state = "disabled"
        return row
    row.next_run = next_due(monitor.schedule, last_run, now, config.timezone, parse_time(state.get("defer_until")))
    if failures:
        row.state = "failing"
        row.error = own_error(state.get("last_error") or "", monitor) or None
    elif row.unwatched_since is not None:
        row.state = "unwatched"
        row.unwatched_reason = health.problem(config, store, monitor, now)
    else:
        row.state = "ok" if row.last_success else "never ran"
    return row


def _reply_checks(row: MonitorStatus, monitor: MonitorConfig, state: dict[str, Any]) -> None:
    row.reply_check_failures = state.get("reply_check_failures") or 0
    if row.reply_check_failures:
        row.reply_check_error = own_error(state.get("last_reply_check_error") or "", monitor) or None
        row.reply_check_error_at = parse_time(state.get("last_reply_check_error_at"))


def own_error(error: str, monitor: MonitorConfig) -> str:
    """`error` without the labels naming the monitor ("monitor 'x' (rss):", "rss monitor 'x':"): shown under its row."""
    name = "|".join(re.escape(quoted) for quoted in {repr(monitor.name), f"'{monitor.name}'"})
    connector = re.escape(monitor.connector)
    label = re.compile(rf"(?:\b{connector} )?\bmonitor (?:{name})(?: \({connector}\))?: ")
    return label.sub("", error).strip()


def _destinations(config: Config, store: Store) -> list[DestinationStatus]:
    stats = store.outbox_stats()
    attempts = store.last_delivery_attempts()
    rows = []
    for name in sorted(set(config.destinations) | set(stats)):
        counts = stats.get(name, {})
        last = attempts.get(name) or {}
        failing = bool(last.get("last_error")) and last.get("status") != "delivered"
        rows.append(DestinationStatus(name, delivered=counts.get("delivered", 0),
                                      pending=counts.get("pending", 0) + counts.get("sending", 0),
                                      held=counts.get("held", 0), failing=failing,
                                      error=last["last_error"] if failing else None,
                                      last_attempt=parse_time(last.get("last_attempt_at"))))
    return rows


def _scheduler(config: Config, states: dict[str, dict[str, Any]], monitors: list[MonitorStatus],
               now: datetime) -> SchedulerStatus:
    """Stopped: the last tick is older than `stopped_after` although a monitor has been due since then."""
    last_tick = _last_tick(config, states)
    enabled = [m for m in config.monitors.values() if m.common.enabled]
    shortest = min((interval(m.schedule, now, config.timezone) for m in enabled), default=timedelta(0))
    stopped_after = max(STOPPED_FLOOR, STOPPED_FACTOR * shortest)
    waiting = any(m.next_run is not None and m.next_run < now for m in monitors)
    stopped = last_tick is not None and waiting and now - last_tick > stopped_after
    return SchedulerStatus(last_tick=last_tick, stopped_after=stopped_after, stopped=stopped)


def _last_tick(config: Config, states: dict[str, dict[str, Any]]) -> datetime | None:
    """The latest monitor start, or the latest full run: each rewrites the idle file, also one that only delivered."""
    ticks = [parse_time(state.get("last_start")) for state in states.values()]
    try:
        ticks.append(datetime.fromtimestamp(idle.cache_path(config.state_path).stat().st_mtime, timezone.utc))
    except OSError:
        pass
    return max((tick for tick in ticks if tick is not None), default=None)


# -- the terminal view -------------------------------------------------------

MONITOR_LEGEND = ("new (items found), sent (alerts delivered) and failed runs count the last {since}; open: queries "
                  "waiting for the brand's reply; breached: the open ones past their reply deadline.")
OUTBOX_LEGEND = "held: kept back by flood control (rolled into a summary and the next digest)."


def render(status: Status, state_path: Path) -> RenderableType:
    """Everything `earful status` prints, at most 80 columns wide wherever the console is."""
    parts: list[RenderableType] = []
    if status.scheduler.stopped and status.scheduler.last_tick is not None:
        parts.append(Text(f"earful has not run for {age(status.now - status.scheduler.last_tick)}: "
                          "is cron/systemd running it?", style="bold red"))
    parts += [monitor_table(status), Text(MONITOR_LEGEND.format(since=status.since), style="dim")]
    parts += _monitor_details(status)
    parts += [destination_table(status), Text(OUTBOX_LEGEND, style="dim")]
    for row in status.destinations:
        if row.failing:
            parts += _problem(row.name, f"failing, last send {_ago(row.last_attempt, status.now)}", row.error)
    if status.latest_quarantined:
        latest = status.latest_quarantined
        parts.append(Text(f"{status.quarantined} item(s) quarantined; see the quarantine table in {state_path} "
                          f"(latest: {latest['item_key']}: {latest['reason']})", style="yellow"))
    return Group(*parts)


def monitor_table(status: Status) -> Table:
    table = _table(f"monitors (counters: last {status.since})")
    table.add_column("monitor", overflow="fold")  # names are the only long cells: fold them, never a header
    for header in ("state", "last\nrun", "next\nrun"):
        table.add_column(header, no_wrap=True)
    for header in ("new", "sent", "failed\nruns", "open", "breached"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in status.monitors:
        table.add_row(row.name, Text(row.state, style=STATE_STYLES.get(row.state, "")), _ago(row.last_run, status.now),
                      _until(row.next_run, status.now), str(row.new_items), str(row.alerts_sent), str(row.failed_runs),
                      str(row.open_queries), Text(str(row.breached_queries), style="red" if row.breached_queries else ""))
    return table


STATE_STYLES = {"ok": "green", "failing": "red", "unwatched": "red", "disabled": "dim"}


def destination_table(status: Status) -> Table:
    table = _table("delivery outbox")
    table.add_column("destination", overflow="fold")
    for header in ("delivered", "pending", "held"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for row in status.destinations:
        state = Text("failing", style="red") if row.failing else Text("ok", style="green") if row.last_attempt else "—"
        table.add_row(row.name, str(row.delivered), str(row.pending), str(row.held), state)
    return table


def _monitor_details(status: Status) -> list[RenderableType]:
    """Below the table, for each monitor needing attention, a heading line and the full reason under it."""
    parts: list[RenderableType] = []
    for row in status.monitors:
        if row.state == "failing":
            parts += _problem(row.name, f"failing, {_runs(row.consecutive_failures)}", row.error)
        elif row.state == "unwatched":
            since = f" since {_ago(row.unwatched_since, status.now)}" if row.unwatched_since else ""
            parts += _problem(row.name, f"unwatched{since}", row.unwatched_reason)
        if row.reply_check_failures:
            parts += _problem(row.name, f"reply checks failing, {_runs(row.reply_check_failures)}, last "
                                        f"{_ago(row.reply_check_error_at, status.now)}", row.reply_check_error)
    budgets = [f"{row.name} {max(0, row.budget_limit - (row.budget_used or 0))} of {row.budget_limit}"
               for row in status.monitors if row.budget_limit is not None]
    if budgets:
        parts.append(Text("requests left this month: " + ", ".join(budgets)))
    return parts


def _problem(name: str, heading: str, reason: str | None) -> list[RenderableType]:
    lines: list[RenderableType] = [Text.assemble((name, "red"), f": {heading}")]
    if reason:
        lines.append(Padding(Text(reason), (0, 0, 0, 2), expand=False))
    return lines


def _runs(count: int) -> str:
    return f"{count} run{'s' if count != 1 else ''} in a row"


def _table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)


def age(delta: timedelta) -> str:
    """A duration in its largest whole unit: 40s, 15m, 2h, 3d."""
    seconds = max(int(delta.total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _ago(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else f"{age(now - moment)} ago"


def _until(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "—"
    return "now" if moment <= now else f"in {age(moment - now)}"


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    return value
