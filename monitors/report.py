"""First-response KPIs per channel: what support plans are judged by.

For every tracked query seen in the window: how fast the brand first
answered (median and p90), the share answered within its SLA, breaches and
what is still open. Queries on channels that cannot show replies are
counted as `unknown`, never as answered or breached; those found a week or
more past their deadline (`late`: a catch-up, a first run over old threads)
are counted apart, in no other column: nobody could have answered them in
time, and earful never tracked them.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from rich import box
from rich.markup import escape
from rich.table import Table

from earful.core import format_duration

from .config import Config
from .store import Store


@dataclass
class ChannelKpis:
    channel: str
    queries: int = 0
    answered: int = 0
    within_sla: int = 0
    breaches: int = 0
    still_open: int = 0
    unknown: int = 0
    found_too_late: int = 0  # not in `queries`: found when tracking would already have given up
    median_first_response_s: float | None = None
    p90_first_response_s: float | None = None

    @property
    def within_sla_pct(self) -> float | None:
        """Of the queries whose SLA is decided (answered, or deadline passed), the share answered in time."""
        judged = self.within_sla + self.breaches
        return None if judged == 0 else round(100.0 * self.within_sla / judged, 1)

    def as_dict(self) -> dict:
        return {**asdict(self), "within_sla_pct": self.within_sla_pct}


def p90(values: list[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def kpis(config: Config, store: Store, since: datetime, now: datetime) -> list[ChannelKpis]:
    hours = config.business_hours()
    by_channel: dict[str, tuple[ChannelKpis, list[float]]] = {}
    for query in store.queries_seen_since(since):
        kpi, times = by_channel.setdefault(query.source, (ChannelKpis(query.source), []))
        if query.status == "late":
            kpi.found_too_late += 1
            continue
        kpi.queries += 1
        if query.status == "unknown":
            kpi.unknown += 1
        elif query.status == "answered":
            kpi.answered += 1
            if query.answered_at is not None:
                took = hours.elapsed(query.posted_at, query.answered_at) if hours else query.answered_at - query.posted_at
                times.append(max(took, timedelta(0)).total_seconds())
            if query.answered_at is None or query.answered_at <= query.deadline:
                kpi.within_sla += 1
            else:
                kpi.breaches += 1
        else:  # open or unanswered
            if query.status == "open":
                kpi.still_open += 1
            if query.deadline <= now:
                kpi.breaches += 1
    result = []
    for kpi, times in by_channel.values():
        if times:
            kpi.median_first_response_s = statistics.median(times)
            kpi.p90_first_response_s = p90(sorted(times))
        result.append(kpi)
    return result


COLUMNS = ("channel", "queries", "answered", "median\nFRT", "p90\nFRT", "in\nSLA", "SLA\nmissed", "open", "unknown", "late")


def kpi_table(rows: list[ChannelKpis], since: str, business_hours: bool) -> Table:
    """`earful report` as a terminal table, narrow enough for 80 columns."""
    table = Table(title=f"reply KPIs, queries first seen in the last {since}" + (" (business hours)" if business_hours else ""),
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.caption = ("FRT: time to the brand's first reply; in SLA: share of decided queries answered in time; "
                     "late: found a week or more past the deadline, not tracked")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "channel" else "right", no_wrap=True)
    for row in rows:
        pct = row.within_sla_pct
        table.add_row(escape(row.channel), str(row.queries), str(row.answered), _duration(row.median_first_response_s),
                      _duration(row.p90_first_response_s), "—" if pct is None else f"{pct:.0f}%", str(row.breaches),
                      str(row.still_open), str(row.unknown), str(row.found_too_late))
    if not rows:
        table.caption = "no tracked queries in this window (rules need reply_within, or defaults.reply_within)"
    return table


def _duration(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(timedelta(seconds=round(seconds)))
