"""Marketing digests: what a day or a week looked like, from state.db alone.

A digest is computed, never accumulated: everything in it is a query over
what earful already stores (items, matches, queries, runs, monitor_state,
the outbox), so a digest sent late, re-sent, or previewed with
`earful digest --dry-run` shows the same numbers, and every item of the
period counts whether or not its alert was delivered (flood control holds
alerts back; it never hides items from the digest).

What is counted, and why:

* volume = items first seen in the period (`items.first_seen_at`), by
  source and by label, against the period before; the brand's own posts
  are not mentions and are left out. Found, not posted: an item found
  late is still counted once, in the digest of the period that found it;
* the chart = mentions per calendar day in the configured timezone by
  the day they were posted (found, where the source gives no time), so a
  first run's backlog spreads over the days it was written instead of
  piling onto the day earful found it; the same days of the period before
  are drawn beside them, once earful was watching then;
* reviews = items of kind `review`, per review site, with their average
  rating (reviews without a rating count, but do not move the average);
* top items = clusters with activity in the period, ranked by the number of
  places the item appeared (crossposts), then severity, then recency;
* reply SLA = `report.kpis` for queries seen in the period, plus the
  queries still unanswered at the end of it;
* channels = monitors whose runs failed in the period, that did not run at
  all, or that are (or were) unwatched: a quiet week caused by a dead
  channel, or by a dead cron job, must say so;
* held = alerts that flood control held back in the period.

Scheduling: each digest has a cron `schedule`; the period ends at the slot
that fired (not at the moment the tick ran), so a digest sent an hour late
still covers exactly Monday 09:00 to Monday 09:00.

Delivery: the digest is rendered once per destination and queued as outbox
rows of kind `digest` keyed `digest:<name>:<period end>#<destination>`,
then sent through the outbox like any alert (marked sending first,
reconciled after a crash, backed off on failure). The key makes a period go
out once: a re-run of the same period finds its rows and sends nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from earful.core import SEVERITY_ORDER, Mention, Names, iso, parse_time

from .store import OutboxRow, Store

if TYPE_CHECKING:
    from earful.alerts.base import Destination

    from .config import Config
    from .outbox import DeliveryReport, DestinationPool
    from .report import ChannelKpis

log = logging.getLogger("earful.digest")

Period = Literal["day", "week"]
PERIOD_DAYS: dict[str, int] = {"day": 1, "week": 7}
DEFAULT_SCHEDULES: dict[str, str] = {"day": "0 9 * * *", "week": "0 9 * * 1"}
# A digest that has never been sent goes out only if its slot fired this
# recently: adding a Monday digest on a Wednesday must not send one on the spot.
FIRST_SEND_GRACE = timedelta(hours=1)
CHART_DAYS = 7  # a daily digest still charts a week, so the day can be compared with its neighbours
LIST_LIMIT = 10  # unanswered queries, held items, spikes shown (the totals are always complete)


# -- configuration -------------------------------------------------------------


class DigestFilters(BaseModel):
    """Narrow a digest; empty means everything. Within one key any value
    matches; across keys all must match (sources g2 AND label complaint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    monitors: Names = ()
    sources: Names = ()
    rules: Names = Field(default=(), description="Rule ids, or pack/rule.")
    labels: Names = ()

    @property
    def empty(self) -> bool:
        return not (self.monitors or self.sources or self.rules or self.labels)

    def describe(self) -> str:
        parts = [f"{key} {', '.join(values)}" for key, values in
                 (("monitors", self.monitors), ("sources", self.sources), ("rules", self.rules), ("labels", self.labels))
                 if values]
        return "; ".join(parts)


class DigestConfig(BaseModel):
    """One entry under `digests:` in cron.yaml.

    ```yaml
    digests:
      marketing-weekly:
        schedule: "0 9 * * 1"        # default: Mondays 09:00 (week), daily 09:00 (day)
        period: week                  # day | week
        destinations: [marketing, marketing-email]
        filters: {sources: [g2, trustpilot], labels: [complaint]}
    ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "digest"  # the key under `digests:`; see `configured`
    schedule: str
    period: Period = "week"
    destinations: Names = Field(min_length=1)
    filters: DigestFilters = Field(default_factory=DigestFilters)
    top_items: int = Field(default=10, ge=1, le=25, description="How many top items to list.")

    @model_validator(mode="before")
    @classmethod
    def _default_schedule(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("schedule") is None:
            period = data.get("period", "week")
            return {**data, "schedule": DEFAULT_SCHEDULES.get(period, DEFAULT_SCHEDULES["week"])}
        return data

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"'{value}' is not a valid cron expression (five fields, e.g. \"0 9 * * 1\")")
        return value


def configured(config: "Config") -> list[DigestConfig]:
    """The digests of cron.yaml, each named after its key."""
    digests = getattr(config.settings, "digests", None) or {}
    return [d if d.name == name else d.model_copy(update={"name": name}) for name, d in digests.items()]


def can_receive(destination_type: str) -> bool:
    """Whether destinations of this type take a digest (they declare a `digest_form`)."""
    from earful import alerts

    try:
        return getattr(alerts.load(destination_type), "digest_form", None) is not None
    except (KeyError, ImportError):
        return False


def config_problems(digests: Mapping[str, DigestConfig], destinations: Mapping[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """(location, message) for every digest destination that is undefined or cannot take a digest.

    `destinations` maps names to `DestinationConfig` (anything with `.type`).
    """
    problems = []
    for name, digest in digests.items():
        for index, dest in enumerate(digest.destinations):
            loc = ("digests", name, "destinations", index)
            spec = destinations.get(dest)
            if spec is None:
                defined = ", ".join(sorted(destinations)) or "none"
                problems.append((loc, f"digest '{name}': destination '{dest}' is not defined under 'destinations:' (defined: {defined})"))
            elif not can_receive(spec.type):
                problems.append((loc, f"digest '{name}': destination '{dest}' (type {spec.type}) cannot receive digests; "
                                      "use a slack, email or console destination"))
    return problems


# -- the digest as data ----------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A count in this period against the same count in the period before."""

    name: str
    current: int
    previous: int

    @property
    def delta(self) -> int:
        return self.current - self.previous

    @property
    def pct(self) -> float | None:
        return None if self.previous == 0 else 100.0 * self.delta / self.previous


@dataclass(frozen=True)
class ReviewSite:
    source: str
    site: str
    count: int
    rated: int
    average: float | None
    previous_average: float | None
    previous_count: int


@dataclass(frozen=True)
class TopItem:
    mention: Mention
    cluster: str
    places: int
    severity: str | None
    labels: tuple[str, ...]
    last_seen_at: datetime


@dataclass(frozen=True)
class OpenQuery:
    mention: Mention
    posted_at: datetime
    deadline: datetime
    status: str  # open | unanswered

    def breached(self, at: datetime) -> bool:
        return self.deadline <= at


@dataclass(frozen=True)
class ChannelProblem:
    monitor: str
    connector: str
    runs: int
    failures: int
    unwatched_since: datetime | None  # still unwatched at the end of the period
    incidents: tuple[str, ...]  # "channel unwatched" reasons raised in the period
    last_error: str | None


@dataclass(frozen=True)
class HeldItem:
    mention: Mention
    destinations: tuple[str, ...]
    held_at: datetime


@dataclass(frozen=True)
class SpikeNote:
    dimension: str
    value: str
    hour: datetime
    count: int
    mean: float
    threshold: float


@dataclass(frozen=True)
class Digest:
    """Everything one digest says, already counted; the renderers only format it."""

    name: str
    period: str
    start: datetime
    end: datetime
    tz: tzinfo
    filters: DigestFilters
    total: Change
    by_source: tuple[Change, ...]
    by_label: tuple[Change, ...]
    days: tuple[datetime, ...]  # local midnight starting each charted calendar day (a week, or the period if longer)
    daily: dict[str, tuple[int, ...]]  # source -> mentions posted on each charted day
    reviews: tuple[ReviewSite, ...]
    top_items: tuple[TopItem, ...]
    sla: tuple["ChannelKpis", ...]
    unanswered: tuple[OpenQuery, ...]
    unanswered_total: int
    unanswered_breached: int
    channels: tuple[ChannelProblem, ...]
    channels_watched: int
    held: tuple[HeldItem, ...]
    held_total: int
    spikes: tuple[SpikeNote, ...] = ()
    previous_daily: tuple[int, ...] | None = None  # mentions posted on each day of the period before; None: not watched
    posted_earlier: int = 0  # found in the period, posted before the first charted day (a first run's backlog)
    compared: bool = True  # earful found items before this period, so "vs the previous week" means something
    brand: str = ""  # the brand name(s) of the rule packs behind the covered monitors
    schedule: str | None = None  # the cron schedule it was sent on; None: run by hand

    @property
    def quiet(self) -> bool:
        """No new mentions: still a digest worth sending (and it says why it may be quiet)."""
        return self.total.current == 0

    @property
    def key(self) -> str:
        return digest_key(self.name, self.end)

    @property
    def reviews_total(self) -> int:
        return sum(r.count for r in self.reviews)

    @property
    def reviews_average(self) -> float | None:
        rated = sum(r.rated for r in self.reviews)
        if not rated:
            return None
        return sum((r.average or 0.0) * r.rated for r in self.reviews) / rated


def digest_key(name: str, end: datetime) -> str:
    """What names one period of one digest: the idempotency key of its deliveries, less the destination."""
    return f"digest:{name}:{iso(end)}"


# -- periods -----------------------------------------------------------------------


def _wall_shift(moment: datetime, tz: tzinfo, days: int) -> datetime:
    """`moment` moved by whole days of wall-clock time in `tz` (a week is 7 local days, DST or not)."""
    local = moment.astimezone(tz).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=tz).astimezone(timezone.utc)


def period_bounds(end: datetime, period: str, tz: tzinfo) -> tuple[datetime, datetime, datetime]:
    """(previous start, start, end) in UTC for the period ending at `end`."""
    days = PERIOD_DAYS[period]
    start = _wall_shift(end, tz, -days)
    return _wall_shift(start, tz, -days), start, end.astimezone(timezone.utc)


def calendar_days(start: datetime, end: datetime, tz: tzinfo) -> tuple[datetime, ...]:
    """Local midnights starting each calendar day in `tz` that [start, end) touches.

    Bars are days people know by name, never rolling 24-hour windows named
    after their start: a week ending Monday 09:00 charts Monday to Monday,
    the last bar holding what was posted up to 09:00.
    """
    first, last = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
    return tuple(datetime.combine(first + timedelta(days=i), time(0), tzinfo=tz) for i in range((last - first).days + 1))


def posted_per_day(rows: Sequence[Mapping[str, Any]], first: date, count: int, tz: tzinfo) -> dict[str, tuple[int, ...]]:
    """source -> how many `rows` were posted on each of the `count` local calendar days from `first`.

    The local date decides (a post at 23:30 UTC is the next day in Berlin),
    so a day of 23 or 25 hours at a DST change is still one bar; rows
    posted outside those days are left out.
    """
    series: dict[str, list[int]] = {}
    for row in rows:
        index = (parse_time(row["posted_at"]).astimezone(tz).date() - first).days
        if 0 <= index < count:
            series.setdefault(row["source"], [0] * count)[index] += 1
    return {source: tuple(values) for source, values in sorted(series.items())}


def brand_name(config: "Config", filters: DigestFilters) -> str:
    """The brand the digest is about: the `brand: name` of the rule packs behind the monitors it covers."""
    names: dict[str, None] = {}
    for monitor_name, monitor in config.monitors.items():
        if not filters.monitors or monitor_name in filters.monitors:
            names.update((pack.brand.name, None) for pack in config.monitor_packs(monitor) if pack.brand)
    return " & ".join(names)


def slot(digest: DigestConfig, now: datetime, tz: tzinfo) -> datetime:
    """The latest time at or before `now` the digest's schedule fired: the end of its period."""
    from .schedule import last_fire

    return last_fire(digest.schedule, now, tz).astimezone(timezone.utc)


# -- building -------------------------------------------------------------------------


def _changes(current: Mapping[str, int], previous: Mapping[str, int]) -> tuple[Change, ...]:
    names = set(current) | set(previous)
    found = [Change(n, current.get(n, 0), previous.get(n, 0)) for n in names]
    return tuple(sorted(found, key=lambda c: (-c.current, -c.previous, c.name)))


def build(config: "Config", store: Store, period_end: datetime, period: str, filters: DigestFilters | None = None, *,
          name: str = "digest", top: int = 10, schedule: str | None = None) -> Digest:
    """Count everything the digest for the period ending at `period_end` shows. Reads only.

    `schedule` is the cron schedule the digest is sent on (None: run by hand); the footer says which.
    """
    filters = filters or DigestFilters()
    tz = config.timezone
    prev_start, start, end = period_bounds(period_end, period, tz)
    rows = store.digest_items(prev_start, end, filters)
    current = [r for r in rows if r["first_seen_at"] >= iso(start)]
    previous = [r for r in rows if r["first_seen_at"] < iso(start)]
    verdicts = _verdicts(store, prev_start, end, filters)
    labels = {key: v[1] for key, v in verdicts.items()}
    first_found = store.digest_first_found(filters)
    compared = first_found is not None and first_found < start
    return Digest(
        name=name, period=period, start=start, end=end, tz=tz, filters=filters,
        total=Change("mentions", len(current), len(previous)),
        by_source=_changes(_count(r["source"] for r in current), _count(r["source"] for r in previous)),
        by_label=_changes(_count(l for r in current for l in labels.get(r["key"], ())),
                          _count(l for r in previous for l in labels.get(r["key"], ()))),
        **_chart(store, current, end, period, tz, filters, compared),
        reviews=_reviews(current, previous),
        top_items=_top_items(store, current, verdicts, start, end, filters, top),
        sla=_sla(config, store, start, end, filters),
        **_unanswered(store, start, end, filters),
        **_channels(config, store, start, end, filters),
        **_held(store, start, end, filters),
        spikes=_spikes(store, start, end, filters),
        compared=compared, brand=brand_name(config, filters), schedule=schedule,
    )


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _verdicts(store: Store, since: datetime, until: datetime, filters: DigestFilters
              ) -> dict[str, tuple[str, tuple[str, ...]]]:
    """(highest severity, labels) per item key, over every rule that matched it."""
    rows = store.digest_verdicts(since, until, filters)
    found: dict[str, tuple[str, dict[str, None]]] = {}
    for row in rows:
        severity, labels = found.get(row["item_key"], (row["severity"], {}))
        if SEVERITY_ORDER.get(row["severity"], 1) > SEVERITY_ORDER.get(severity, 1):
            severity = row["severity"]
        labels.update(dict.fromkeys(json.loads(row["labels"] or "[]")))
        found[row["item_key"]] = (severity, labels)
    return {key: (severity, tuple(labels)) for key, (severity, labels) in found.items()}


def _worst(severities) -> str | None:
    return max(severities, key=lambda s: SEVERITY_ORDER.get(s, 1), default=None)


def _chart(store: Store, current: list[dict[str, Any]], end: datetime, period: str, tz: tzinfo, filters: DigestFilters,
           compared: bool) -> dict[str, Any]:
    """The chart's numbers: mentions posted per calendar day (known by `end`), the same days of the
    period before (up to the same time of day) when earful was watching then, and how many found in
    the period were posted before its first day."""
    count = max(PERIOD_DAYS[period], CHART_DAYS)
    days = calendar_days(_wall_shift(end, tz, -count), end, tz)
    before_start, before_end = _wall_shift(days[0], tz, -count), iso(_wall_shift(end, tz, -count))
    rows = store.digest_posted(before_start, end, end, filters)
    previous = None
    if compared:
        per_source = posted_per_day([r for r in rows if r["posted_at"] < before_end],
                                    before_start.astimezone(tz).date(), len(days), tz).values()
        previous = tuple(sum(day) for day in zip(*per_source)) if per_source else (0,) * len(days)
    first = iso(days[0])
    return {"days": days, "daily": posted_per_day(rows, days[0].date(), len(days), tz), "previous_daily": previous,
            "posted_earlier": sum(r["posted_at"] < first for r in current)}


def _reviews(current: list[dict[str, Any]], previous: list[dict[str, Any]]) -> tuple[ReviewSite, ...]:
    def per_site(rows):
        sites: dict[tuple[str, str], list[float | None]] = {}
        for row in rows:
            if row["kind"] == "review":
                sites.setdefault((row["source"], row["site"] or ""), []).append(row["rating"])
        return sites

    now, before = per_site(current), per_site(previous)

    def average(ratings: list[float | None]) -> float | None:
        rated = [r for r in ratings if r is not None]
        return sum(rated) / len(rated) if rated else None

    found = []
    for (source, site), ratings in now.items():
        old = before.get((source, site), [])
        found.append(ReviewSite(source, site, len(ratings), sum(r is not None for r in ratings), average(ratings),
                                average(old), len(old)))
    return tuple(sorted(found, key=lambda r: (-r.count, r.source, r.site)))


def _top_items(store: Store, current: list[dict[str, Any]], verdicts: Mapping[str, tuple[str, tuple[str, ...]]],
               start: datetime, end: datetime, filters: DigestFilters, top: int) -> tuple[TopItem, ...]:
    """Clusters active in the period: most places first, then the most severe, then the most recent."""
    if not current:
        return ()
    clusters: dict[str, dict[str, Any]] = {}
    for row in current:
        entry = clusters.setdefault(row["cluster"], {"first": row, "last": row["first_seen_at"]})
        if row["first_seen_at"] < entry["first"]["first_seen_at"]:
            entry["first"] = row
        entry["last"] = max(entry["last"], row["first_seen_at"])
    places = store.digest_cluster_sizes(start, end, filters)
    severity: dict[str, str | None] = {}
    labels: dict[str, dict[str, None]] = {}
    for row in current:
        verdict = verdicts.get(row["key"])
        if verdict is not None:
            severity[row["cluster"]] = _worst([verdict[0], *filter(None, [severity.get(row["cluster"])])])
            labels.setdefault(row["cluster"], {}).update(dict.fromkeys(verdict[1]))

    def rank(cluster: str):
        worst = severity.get(cluster)
        weight = SEVERITY_ORDER.get(worst, 1) + 1 if worst else 0  # unmatched items rank below "low"
        return (-places.get(cluster, 1), -weight, -parse_time(clusters[cluster]["last"]).timestamp(), cluster)

    found = []
    for cluster in sorted(clusters, key=rank)[:top]:
        mention = store.item(clusters[cluster]["first"]["key"])
        if mention is None:
            continue
        found.append(TopItem(mention, cluster, places.get(cluster, 1), severity.get(cluster),
                             tuple(labels.get(cluster, ())), parse_time(clusters[cluster]["last"])))
    return tuple(found)


def _sla(config: "Config", store: Store, start: datetime, end: datetime, filters: DigestFilters) -> tuple["ChannelKpis", ...]:
    """`report.kpis` for queries seen in the period, judged at its end.

    kpis groups by channel (source), so only a `sources` filter narrows
    it; monitor, rule and label filters do not apply to SLA figures.
    """
    from .report import kpis

    rows = kpis(config, store, start, end)
    if filters.sources:
        rows = [r for r in rows if r.channel in filters.sources]
    return tuple(sorted(rows, key=lambda r: (-r.queries, r.channel)))


def _unanswered(store: Store, start: datetime, end: datetime, filters: DigestFilters) -> dict[str, Any]:
    """Queries nobody from the brand answered: still open, or given up on during the period."""
    rows = store.digest_unanswered(start, end, filters)
    listed = []
    for row in rows[:LIST_LIMIT]:
        mention = store.item(row["item_key"])
        if mention is not None:
            listed.append(OpenQuery(mention, parse_time(row["posted_at"]), parse_time(row["deadline"]), row["status"]))
    breached = sum(row["deadline"] <= iso(end) for row in rows)
    return {"unanswered": tuple(listed), "unanswered_total": len(rows), "unanswered_breached": breached}


def _channels(config: "Config", store: Store, start: datetime, end: datetime, filters: DigestFilters) -> dict[str, Any]:
    """Monitors that failed runs or went unwatched in the period (and how many were watched at all)."""
    runs = store.digest_run_counts(start, end)
    errors = store.digest_last_errors(start, end)
    incidents: dict[str, dict[str, None]] = {}
    for row in store.digest_health_notices(start, end):
        payload = json.loads(row["payload"] or "{}")
        for mention in payload.get("mentions") or ():
            if str(mention.get("external_id", "")).endswith(":unwatched"):
                incidents.setdefault(row["monitor"], {})[mention.get("text") or "unwatched"] = None
    states = store.all_monitor_states()
    names = [n for n, m in config.monitors.items() if m.common.enabled]
    names += [n for n in runs if n not in config.monitors]
    if filters.monitors:
        names = [n for n in names if n in filters.monitors]
    problems = []
    for name in names:
        state = states.get(name, {})
        since = parse_time(state.get("health_since")) if state.get("health") == "unwatched" else None
        unwatched = since if since is not None and since < end else None
        run = runs.get(name, {})
        failures = run.get("failures") or 0
        if failures or unwatched or name in incidents or not run.get("runs"):
            monitor = config.monitors.get(name)
            problems.append(ChannelProblem(name, monitor.connector if monitor else "removed", run.get("runs") or 0, failures,
                                           unwatched, tuple(incidents.get(name, ())), errors.get(name)))
    problems.sort(key=lambda p: (p.unwatched_since is None, -p.failures, p.monitor))
    return {"channels": tuple(problems), "channels_watched": len(names)}


def _held(store: Store, start: datetime, end: datetime, filters: DigestFilters) -> dict[str, Any]:
    """Alerts flood control held back in the period, one entry per item (whatever the destinations)."""
    rows = store.digest_held(start, end, filters)
    clusters: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = clusters.setdefault(row["cluster"], {"at": row["created_at"], "destinations": {}})
        entry["destinations"][row["destination"]] = None
    listed = []
    for cluster, entry in list(clusters.items())[:LIST_LIMIT]:
        mention = store.item(cluster)
        if mention is not None:
            listed.append(HeldItem(mention, tuple(entry["destinations"]), parse_time(entry["at"])))
    return {"held": tuple(listed), "held_total": len(clusters)}


def _spikes(store: Store, start: datetime, end: datetime, filters: DigestFilters) -> tuple[SpikeNote, ...]:
    """Volume spikes raised in the period (see spikes.py); with filters, only the selected keys."""
    rows = store.digest_spikes(start, end)
    wanted = {"monitor": filters.monitors, "source": filters.sources, "rule": filters.rules}
    notes = []
    for row in rows:
        selected = wanted.get(row["dimension"]) or ()
        if not filters.empty and row["value"] not in selected:
            continue
        notes.append(SpikeNote(row["dimension"], row["value"], parse_time(row["hour"]), row["count"], row["mean"], row["threshold"]))
    return tuple(notes)


# -- scheduling ------------------------------------------------------------------------


def _owed(rows: list[OutboxRow], *, followers: bool = False) -> list[OutboxRow]:
    """The rows still to send; without `followers`, less those that follow a row
    not delivered yet (a chart waits for its summary: it is not what is owed now)."""
    delivered = {r.key for r in rows if r.status == "delivered"}
    return [r for r in rows if r.status in ("pending", "sending")
            and (followers or not (r.payload or {}).get("after") or r.payload["after"] in delivered)]


def _due_rows(rows: list[OutboxRow], now: datetime, *, followers: bool = False) -> list[OutboxRow]:
    return [r for r in _owed(rows, followers=followers) if r.next_attempt_at is None or r.next_attempt_at <= now]


def due(config: "Config", store: Store, now: datetime, digests: Sequence[DigestConfig] | None = None) -> list[DigestConfig]:
    """Digests whose latest slot still owes a delivery to one of their destinations. Reads only.

    Only the latest slot counts: a machine that was off for three weeks
    sends one digest (the latest period), not three. `digests` defaults to
    those of cron.yaml.
    """
    found = []
    for digest in configured(config) if digests is None else digests:
        end = slot(digest, now, config.timezone)
        rows = store.digest_rows(digest_key(digest.name, end))
        if not rows and now - end > FIRST_SEND_GRACE and not store.digest_ever_enqueued(digest.name):
            continue
        queued = {row.destination for row in rows}
        if any(dest not in queued for dest in digest.destinations) or _due_rows(rows, now):
            found.append(digest)
    return found


def next_wake(config: "Config", store: Store, now: datetime,
              digests: Sequence[DigestConfig] | None = None) -> datetime | None:
    """When a digest can next be due (its next slot, or a retry), for the idle-tick cache."""
    from .schedule import next_due

    times = []
    for digest in configured(config) if digests is None else digests:
        times.append(next_due(digest.schedule, now, now, config.timezone))
        rows = store.digest_rows(digest_key(digest.name, slot(digest, now, config.timezone)))
        times += [r.next_attempt_at for r in _owed(rows) if r.next_attempt_at]
    return min(times) if times else None


# -- sending ----------------------------------------------------------------------------


@dataclass
class Delivery:
    destination: str
    status: str  # delivered | already | waiting | failed | dry-run
    remote_id: str | None = None
    error: str | None = None
    permanent: bool = False


@dataclass
class SendReport:
    digest: Digest
    chart: bytes | None
    chart_error: str | None
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status == "failed"]


def kind_of(destination: "Destination") -> str | None:
    """The digest rendering a destination takes (slack, email, console); None if it takes none."""
    return getattr(destination, "digest_form", None)


def render_chart(digest: Digest) -> tuple[bytes | None, str | None]:
    """(PNG, None), or (None, why) when matplotlib is missing: the digest goes out without it."""
    from earful.alerts.chart import ChartUnavailable, daily_volume_png

    from . import digest_render

    chart = digest_render.chart_data(digest)
    try:
        return daily_volume_png(chart.days, chart.series, chart.title, previous=chart.previous,
                                previous_label=chart.previous_label, note=chart.note), None
    except ChartUnavailable as exc:
        log.warning("digest %s: no chart: %s", digest.name, exc)
        return None, str(exc)


def send(config: "Config", store: Store, digest_config: DigestConfig, now: datetime, pool: "DestinationPool",
         dry_run: bool = False, *, period_end: datetime | None = None) -> SendReport:
    """Build the digest for its latest slot (or `period_end`), queue it once per destination, and deliver.

    Rows already queued for this period are not queued again, so a re-run
    sends nothing twice; rows waiting for a retry go when their back-off
    ends (here or in the outbox's next run). With `dry_run` nothing is sent
    or written: the report carries the digest (and chart) for the caller to show.
    """
    from .outbox import deliver_rows

    end = period_end or slot(digest_config, now, config.timezone)
    scheduled = any(d.name == digest_config.name for d in configured(config))
    digest = build(config, store, end, digest_config.period, digest_config.filters, name=digest_config.name,
                   top=digest_config.top_items, schedule=digest_config.schedule if scheduled else None)
    report = SendReport(digest, None, None)
    if dry_run or any(_spec_type(config, d) != "console" for d in digest_config.destinations):
        report.chart, report.chart_error = render_chart(digest)
    if dry_run:
        report.deliveries = [Delivery(d, "dry-run") for d in digest_config.destinations]
        return report
    problems = _queue(store, pool, digest, report.chart, digest_config.destinations, now)
    due_now = _due_rows(store.digest_rows(digest.key), now, followers=True)  # the outbox keeps a follower in order
    delivered = deliver_rows(config, store, pool, due_now, lambda: now)
    rows_now = store.digest_rows(digest.key)
    for name in digest_config.destinations:
        if problems[name] is not None:
            report.deliveries.append(Delivery(name, "failed", error=problems[name], permanent=True))
        else:
            report.deliveries.append(_outcome(name, [r for r in rows_now if r.destination == name], delivered))
    for failed in report.failed:
        log.warning("digest %s to %s failed: %s", digest.name, failed.destination, failed.error)
    return report


def _queue(store: Store, pool: "DestinationPool", digest: Digest, chart: bytes | None, destinations: Sequence[str],
           now: datetime) -> dict[str, str | None]:
    """Render and queue the digest for each destination that has no row for this period yet (one transaction).

    Returns destination -> why it cannot take a digest (None when it can).
    """
    from . import digest_render as render

    queued = {row.destination for row in store.digest_rows(digest.key)}
    problems, rows = {}, []
    for name in destinations:
        form, problems[name] = _form(pool, name)
        if form is not None and name not in queued:
            rows += [(name, key, payload) for key, payload in render.deliveries(digest, chart, f"{digest.key}#{name}", form)]
    store.enqueue_digest(digest.key, f"digest:{digest.name}", now, rows)
    return problems


def _spec_type(config: "Config", name: str) -> str | None:
    spec = config.destinations.get(name)
    return spec.type if spec is not None else None


def _form(pool: "DestinationPool", name: str) -> tuple[str | None, str | None]:
    """(the rendering the destination takes, None) or (None, why it cannot take a digest at all)."""
    try:
        destination = pool.get(name)
    except Exception as exc:  # noqa: BLE001 - a broken optional dependency must not stop other destinations
        return None, f"cannot start destination '{name}': {exc}"
    if destination is None:
        return None, f"destination '{name}' is not defined under 'destinations:'"
    form = kind_of(destination)
    if form is None:
        return None, (f"destination '{name}' (type {destination.type}) cannot receive digests; "
                      "use a slack, email or console destination")
    return form, None


def _outcome(name: str, rows: list[OutboxRow], report: "DeliveryReport") -> Delivery:
    """What became of one destination's rows in this send: the first row is the message, any other follows it."""
    main = rows[0] if rows else None
    remote_id = main.remote_id if main else None
    if name in report.failed:
        return Delivery(name, "failed", remote_id, report.failed[name], name in report.permanent)
    if rows and all(r.status == "delivered" for r in rows):
        sent_now = report.delivered.get(name, 0) + report.reconciled.get(name, 0)
        return Delivery(name, "delivered" if sent_now else "already", remote_id)
    return Delivery(name, "waiting", remote_id, next((r.last_error for r in rows if r.last_error), None))
