"""Volume spikes: tell marketing when mentions jump, once per jump.

For each watched key (a monitor, a source, a rule) the mentions first seen
in an hour are compared with that key's own trailing baseline: the mean
and population standard deviation of its hourly counts over the previous
`window_days` days, empty hours included as zeros. An hour is a spike when

    count > mean + k * stdev   and   count >= min_count

The floor keeps a key that usually sees nothing from "spiking" on three
posts; the standard deviation keeps a busy, noisy key from spiking on its
ordinary swings; a perfectly steady series (stdev 0) never spikes at its
usual level.

Exactly once: each (key, hour) is recorded in `spike_alerts` in the same
transaction that queues its alert in the outbox (kind "spike", with a
synthetic mention in the payload like health notices, idempotency key per
key + hour + destination). After a spike, the same key stays quiet for
`cooldown`. Both the current hour and the one before are checked, because
items ingested in an hour's last tick are first checked after it ends.

Not a spike: a backlog. Items that were posted more than `max_lag` before
earful saw them (a first run's lookback, a source back after an outage)
are not counted, and a key is only judged once every monitor that fed it
in that hour has been running for the whole baseline window.

The brand's own posts are not mentions and are never counted.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from earful.core import (
    Match,
    Mention,
    Names,
    format_duration,
    iso,
    one_or_many,
    parse_duration,
)

from .store import Store, match_to_row, mention_to_row

if TYPE_CHECKING:
    from .config import Config

Dimension = Literal["monitor", "source", "rule"]
HOUR = timedelta(hours=1)


class SpikeConfig(BaseModel):
    """`spikes:` in cron.yaml.

    ```yaml
    spikes:
      k: 3                 # standard deviations above the mean
      min_count: 10        # and at least this many mentions in the hour
      window_days: 7       # the baseline: this many days of hourly counts
      cooldown: 6h         # then quiet for this long, per key
      notify: [marketing]  # default: defaults.notify
      keys: [monitor, source, rule]
    ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: float = Field(default=3.0, gt=0, le=100)
    min_count: int = Field(default=10, ge=1)
    window_days: int = Field(default=7, ge=1, le=90)
    cooldown: timedelta = Field(default=timedelta(hours=6))
    notify: Names = ()
    keys: Annotated[tuple[Dimension, ...], BeforeValidator(one_or_many)] = Field(default=("monitor", "source", "rule"), min_length=1)
    max_lag: timedelta = Field(default=timedelta(hours=24), description="Older posts seen late are a backlog, not volume.")
    top: int = Field(default=5, ge=0, le=20, description="Items listed in the alert.")

    @field_validator("cooldown", "max_lag", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)



@dataclass(frozen=True)
class SpikeEvent:
    dimension: str
    value: str
    hour: datetime  # start of the hour, UTC
    count: int
    mean: float
    stdev: float
    threshold: float
    top: tuple[tuple[str, str], ...]  # (title, url) of the most notable items of the hour
    destinations: tuple[str, ...]


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def _stamp(hour: datetime) -> str:
    """The `substr(first_seen_at, 1, 13)` form of an hour: '2026-11-23T10'."""
    return hour.strftime("%Y-%m-%dT%H")


# -- counting ---------------------------------------------------------------------------


@dataclass
class _Series:
    counts: dict[str, int]  # hour stamp -> mentions
    monitors: dict[str, dict[str, int]]  # hour stamp -> monitor -> mentions


def hourly_counts(store: Store, since: datetime, until: datetime, keys: tuple[str, ...],
                  max_lag: timedelta) -> dict[tuple[str, str], _Series]:
    """Mentions per (dimension, value) per UTC hour of `items.first_seen_at`, in [since, until)."""
    series: dict[tuple[str, str], _Series] = {}

    def add(dimension: str, value: str, hour: str, monitor: str, n: int) -> None:
        entry = series.setdefault((dimension, value), _Series({}, {}))
        entry.counts[hour] = entry.counts.get(hour, 0) + n
        by_monitor = entry.monitors.setdefault(hour, {})
        by_monitor[monitor] = by_monitor.get(monitor, 0) + n

    if "monitor" in keys or "source" in keys:
        for row in store.hourly_volume(since, until, max_lag):
            if "monitor" in keys:
                add("monitor", row["monitor"], row["hour"], row["monitor"], row["n"])
            if "source" in keys:
                add("source", row["source"], row["hour"], row["monitor"], row["n"])
    if "rule" in keys:
        for row in store.hourly_rule_volume(since, until, max_lag):
            rule = f"{row['pack']}/{row['rule_id']}" if row["pack"] else row["rule_id"]
            add("rule", rule, row["hour"], row["monitor"], row["n"])
    return series


def baseline(series: _Series, hour: datetime, window_days: int) -> tuple[float, float]:
    """(mean, population stdev) of the hourly counts in the `window_days` days before `hour`, zeros included."""
    hours = window_days * 24
    values = [series.counts.get(_stamp(hour - HOUR * i), 0) for i in range(1, hours + 1)]
    return statistics.fmean(values), statistics.pstdev(values)


# -- checking ------------------------------------------------------------------------------


def check(config: "Config", store: Store, now: datetime, spike_config: SpikeConfig) -> list[SpikeEvent]:
    """Judge the current and the previous hour of every watched key; queue one alert per new spike."""
    current = _hour(now)
    hours = (current - HOUR, current)
    window = timedelta(days=spike_config.window_days)
    series = hourly_counts(store, hours[0] - window, current + HOUR, spike_config.keys, spike_config.max_lag)
    first_runs = store.first_runs()
    destinations = tuple(spike_config.notify or config.settings.defaults.notify)
    events = []
    for (dimension, value), data in sorted(series.items()):
        for hour in hours:
            count = data.counts.get(_stamp(hour), 0)
            if count < spike_config.min_count:
                continue
            feeding = data.monitors.get(_stamp(hour), {})
            if any(first_runs.get(m) is None or first_runs[m] > hour - window for m in feeding):
                continue  # no full baseline yet for a monitor feeding this key: its backlog is not a spike
            mean, stdev = baseline(data, hour, spike_config.window_days)
            threshold = mean + spike_config.k * stdev
            if count <= threshold or _recorded_or_cooling(store, dimension, value, hour, spike_config.cooldown):
                continue
            event = SpikeEvent(dimension, value, hour, count, mean, stdev, threshold,
                               _top(store, dimension, value, hour, spike_config), destinations)
            _raise(config, store, event, spike_config, max(feeding, key=feeding.get), now)
            events.append(event)
    return events


def _recorded_or_cooling(store: Store, dimension: str, value: str, hour: datetime, cooldown: timedelta) -> bool:
    """True when this hour was already alerted, or another spike of the key is within `cooldown` of it."""
    others = store.spike_hours(dimension, value, hour - cooldown - HOUR, hour + cooldown + HOUR)
    return any(other == hour or abs(other - hour) < cooldown for other in others)


def _top(store: Store, dimension: str, value: str, hour: datetime, spike_config: SpikeConfig) -> tuple[tuple[str, str], ...]:
    """The hour's most notable items: most places (crossposts) first, then the most recent."""
    if spike_config.top == 0:
        return ()
    key: str | tuple[str, str] = value
    if dimension == "rule":
        pack, _, rule_id = value.rpartition("/")
        key = (pack, rule_id)
    rows = store.spike_top_items(dimension, key, hour, hour + HOUR, spike_config.top)
    from earful.alerts import format as fmt

    return tuple(((fmt.truncate(fmt.clean(r["title"] or r["text"] or ""), 120) or "(untitled)"), r["url"] or "") for r in rows)


def describe(event: SpikeEvent, spike_config: SpikeConfig, tz: Any) -> tuple[str, str]:
    """(title, text) of the alert; hours are shown in the configured timezone."""
    from earful.alerts import format as fmt

    start = event.hour.astimezone(tz)
    end = (event.hour + HOUR).astimezone(tz)
    label = fmt.source_name(event.value) if event.dimension == "source" else event.value
    title = (f"Volume spike: {event.dimension} {label}: {event.count} mentions "
             f"between {start:%H:%M} and {end:%H:%M} on {start:%a} {start.day} {start:%b}")
    text = (f"{event.count} mentions in one hour; usually {event.mean:.1f} ± {event.stdev:.1f} per hour over the last "
            f"{spike_config.window_days} days (alert above {event.threshold:.1f} and at least {spike_config.min_count}). "
            f"Next alert for this {event.dimension} no sooner than {format_duration(spike_config.cooldown)} from now.")
    if event.top:
        listed = " · ".join(f"{i}) {t}{' ' + u if u else ''}" for i, (t, u) in enumerate(event.top, 1))
        text += f" Top items: {listed}"
    return title, text


def _raise(config: "Config", store: Store, event: SpikeEvent, spike_config: SpikeConfig, monitor: str, now: datetime) -> None:
    """Record the spike and queue its alerts, in one transaction (the record is the idempotency key)."""
    title, text = describe(event, spike_config, config.timezone)
    stamp = _stamp(event.hour)
    mention = Mention(source="earful", external_id=f"spike:{event.dimension}:{event.value}:{stamp}", title=title,
                      text=text, author="earful", kind="message", created_at=event.hour, site=event.value)
    match = Match(mention_key=mention.key, rule_id="volume-spike", pack="earful", labels=("spike",), severity="medium")
    payload = {"mentions": [mention_to_row(mention)], "matches": [match_to_row(match)], "note": None,
               "spike": {"dimension": event.dimension, "value": event.value, "hour": iso(event.hour), "count": event.count,
                         "mean": event.mean, "stdev": event.stdev, "threshold": event.threshold,
                         "top": [list(t) for t in event.top]}}
    with store.transaction():
        store.record_spike(event.dimension, event.value, event.hour, event.count, event.mean, event.stdev, event.threshold, now)
        for destination in event.destinations:
            store.enqueue(f"{mention.key}#{destination}", mention.key, destination, monitor, now, kind="spike", payload=payload)
