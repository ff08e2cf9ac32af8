"""The digest's reads: what a period looked like, counted from the tables other features write.

A digest owns no table. It counts items, matches, queries, runs, spike
alerts and the outbox (held alerts, health notices), and it is delivered as
outbox rows of kind `digest`, one per destination (and one more for a Slack
chart), keyed `digest:<name>:<period end>#<destination>`. The key is what
makes "a period is sent once" true: a re-run finds the rows and sends
nothing new.

`filters` is the digest's `DigestFilters` (anything with `monitors`,
`sources`, `rules` and `labels` sequences); `item_filter` turns it into the
WHERE clause every count shares, so each section covers the same items.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from earful.core import iso, parse_time

from .records import OutboxRow

DIGEST_KIND = "digest"


def _in(column: str, values: Sequence[str]) -> tuple[str, list[str]]:
    return f"{column} in ({', '.join('?' for _ in values)})", list(values)


def item_filter(filters: Any, alias: str = "i") -> tuple[str, list[Any]]:
    """SQL (and parameters) selecting the items a digest covers: not the brand's own, and within `filters`."""
    clauses, params = [f"{alias}.author_is_brand = 0"], []
    for column, values in ((f"{alias}.monitor", filters.monitors), (f"{alias}.source", filters.sources)):
        if values:
            sql, args = _in(column, values)
            clauses.append(sql)
            params += args
    if filters.rules:
        ids, qualified = _in("fm.rule_id", filters.rules), _in("(fm.pack || '/' || fm.rule_id)", filters.rules)
        clauses.append(f"exists (select 1 from matches fm where fm.item_key = {alias}.key and ({ids[0]} or {qualified[0]}))")
        params += ids[1] + qualified[1]
    if filters.labels:
        sql, args = _in("fl.value", filters.labels)
        clauses.append(f"exists (select 1 from matches fm, json_each(fm.labels) fl where fm.item_key = {alias}.key and {sql})")
        params += args
    return " and ".join(clauses), params


class DigestsTable:
    """Mixed into `Store`: every statement a digest runs (queuing goes through `OutboxTable.enqueue`)."""

    # -- volume ---------------------------------------------------------------------
    def digest_items(self, since: datetime, until: datetime, filters: Any) -> list[dict[str, Any]]:
        """Items first seen in [since, until) that the digest covers."""
        where, params = item_filter(filters)
        return self._rows(
            f"select i.key, i.cluster, i.source, i.site, i.kind, i.rating, i.first_seen_at, "
            f"coalesce(i.created_at, i.first_seen_at) as posted_at from items i "
            f"where i.first_seen_at >= ? and i.first_seen_at < ? and {where}", [iso(since), iso(until), *params])

    def digest_posted(self, since: datetime, until: datetime, found_before: datetime, filters: Any) -> list[dict[str, Any]]:
        """(source, posted_at) of the covered items posted in [since, until) (found, where the source gives
        no time) that earful had found before `found_before`: the chart's mentions per posted day.

        Nothing is found before it is posted, so `first_seen_at >= since` holds for every such item and
        keeps the read on the volume index's range."""
        where, params = item_filter(filters)
        return self._rows(
            f"select i.source, coalesce(i.created_at, i.first_seen_at) as posted_at from items i "
            f"where i.first_seen_at >= ? and i.first_seen_at < ? and coalesce(i.created_at, i.first_seen_at) >= ? "
            f"and coalesce(i.created_at, i.first_seen_at) < ? and {where}",
            [iso(since), iso(found_before), iso(since), iso(until), *params])

    def digest_first_found(self, filters: Any) -> datetime | None:
        """When earful first found an item the digest covers: before that, no period can be compared."""
        where, params = item_filter(filters)
        row = self._row(f"select min(i.first_seen_at) as first from items i where {where}", params)
        return parse_time(row["first"]) if row else None

    def digest_verdicts(self, since: datetime, until: datetime, filters: Any) -> list[dict[str, Any]]:
        """(item_key, severity, labels as JSON) of every match of those items."""
        where, params = item_filter(filters)
        return self._rows(
            f"select m.item_key, m.severity, m.labels from matches m join items i on i.key = m.item_key "
            f"where i.first_seen_at >= ? and i.first_seen_at < ? and {where}", [iso(since), iso(until), *params])

    def digest_cluster_sizes(self, since: datetime, until: datetime, filters: Any) -> dict[str, int]:
        """Places each cluster active in the period appeared in, counting every copy ever stored."""
        where, params = item_filter(filters)
        rows = self._rows(
            f"select c.cluster, count(*) as n from items c where c.cluster in (select i.cluster from items i "
            f"where i.first_seen_at >= ? and i.first_seen_at < ? and {where}) group by c.cluster",
            [iso(since), iso(until), *params])
        return {r["cluster"]: r["n"] for r in rows}

    # -- replies, channels, held alerts, spikes -------------------------------------------
    def digest_unanswered(self, start: datetime, end: datetime, filters: Any) -> list[dict[str, Any]]:
        """Queries seen before `end` still open, or given up on in the period; soonest deadline first."""
        where, params = item_filter(filters)
        return self._rows(
            f"select q.item_key, q.posted_at, q.deadline, q.status from queries q join items i on i.key = q.item_key "
            f"where q.seen_at < ? and (q.status = 'open' or (q.status = 'unanswered' and q.closed_at >= ?)) and {where} "
            f"order by q.deadline, q.item_key", [iso(end), iso(start), *params])

    def digest_run_counts(self, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
        """monitor -> {runs, failures} for runs started in the period."""
        rows = self._rows(
            "select monitor, count(*) as runs, sum(status in ('failed', 'crashed')) as failures from runs "
            "where started_at >= ? and started_at < ? group by monitor", [iso(start), iso(end)])
        return {r["monitor"]: r for r in rows}

    def digest_last_errors(self, start: datetime, end: datetime) -> dict[str, str | None]:
        """monitor -> the error of its last failed run in the period."""
        rows = self._rows(
            "select monitor, error from runs r where status in ('failed', 'crashed') and started_at >= ? and started_at < ? "
            "and id = (select max(id) from runs x where x.monitor = r.monitor and x.status in ('failed', 'crashed') "
            "and x.started_at >= ? and x.started_at < ?)", [iso(start), iso(end), iso(start), iso(end)])
        return {r["monitor"]: r["error"] for r in rows}

    def digest_health_notices(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """(monitor, payload JSON) of the health notices raised in the period."""
        return self._rows("select monitor, payload from outbox where kind = 'health' and created_at >= ? and created_at < ?",
                            [iso(start), iso(end)])

    def digest_held(self, start: datetime, end: datetime, filters: Any) -> list[dict[str, Any]]:
        """Alerts and escalations flood control held back in the period, oldest first."""
        where, params = item_filter(filters)
        return self._rows(
            f"select o.cluster, o.destination, o.created_at from outbox o join items i on i.key = o.cluster "
            f"where o.status = 'held' and o.kind in ('alert', 'escalation') and o.created_at >= ? and o.created_at < ? "
            f"and {where} order by o.created_at, o.id", [iso(start), iso(end), *params])

    def digest_spikes(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        return self._rows("select * from spike_alerts where hour >= ? and hour < ? order by hour, dimension, value",
                            [iso(start), iso(end)])

    # -- delivery: the digest's rows in the outbox ----------------------------------------
    def enqueue_digest(self, cluster: str, monitor: str, now: datetime,
                       rows: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Queue one digest period's deliveries, (destination, key, payload) each, in one transaction:
        a crash never leaves a summary queued without the chart that follows it."""
        with self.transaction():
            for destination, key, payload in rows:
                self.enqueue(key, cluster, destination, monitor, now, kind=DIGEST_KIND, payload=payload)

    def digest_rows(self, cluster: str) -> list[OutboxRow]:
        """The outbox rows of one digest period (`cluster` = `digest:<name>:<period end>`), in delivery order."""
        rows = self._rows("select * from outbox where cluster = ? and kind = ? order by id", [cluster, DIGEST_KIND])
        return [OutboxRow.from_row(r) for r in rows]

    def digest_ever_enqueued(self, name: str) -> bool:
        """Whether any period of the digest `name` was ever enqueued (it has been sent, or is on its way)."""
        prefix = f"digest:{name}:"
        return self._row("select 1 as found from outbox where kind = ? and substr(cluster, 1, ?) = ? limit 1",
                         [DIGEST_KIND, len(prefix), prefix]) is not None
