"""Flood control: a source back after three days must not bury a channel.

Each destination has a cap per run (`max_per_run`, default 30) and
optionally per hour (`max_per_hour`). Before a destination's rows are
delivered, alerts and escalations beyond what the caps allow are marked
`held` and rolled into ONE summary message (counts per source and rule,
the top items, where to look), in the same transaction, so a crash cannot
lose the summary nor send it twice. Held items are never dropped: they stay
in state.db with their matches, show in `earful status`, and are counted in
the next digest. Health notices and summaries themselves are never held.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from earful.alerts import format as fmt
from earful.core import SEVERITY_ORDER, Match, Mention

from .store import OutboxRow, Store, match_to_row, mention_to_row

CAPPED_KINDS = ("alert", "escalation")
TOP_ITEMS = 5


def allowance(store: Store, destination: str, options: object, now: datetime) -> int | None:
    """How many capped rows may go out now; None for unlimited."""
    limits = []
    per_run = getattr(options, "max_per_run", None)
    if per_run is not None:
        limits.append(per_run)
    per_hour = getattr(options, "max_per_hour", None)
    if per_hour is not None:
        sent = store.delivered_since(destination, CAPPED_KINDS, now - timedelta(hours=1))
        limits.append(max(0, per_hour - sent))
    return min(limits) if limits else None


def hold_excess(store: Store, destination: str, options: object, rows: list[OutboxRow], now: datetime) -> list[OutboxRow]:
    """The rows to deliver now; the excess is held and summarised in one new outbox row."""
    limit = allowance(store, destination, options, now)
    capped = [r for r in rows if r.kind in CAPPED_KINDS and r.status == "pending"]
    if limit is None or len(capped) <= limit:
        return rows
    excess = capped[limit:]
    held_ids = {r.id for r in excess}
    summary = _summary(store, destination, excess, now)
    with store.transaction():
        store.hold_outbox_rows(held_ids, f"held by flood control ({destination})")
        store.enqueue(summary["key"], summary["cluster"], destination, summary["monitor"], now, kind="summary",
                      payload=summary["payload"])
    kept = [r for r in rows if r.id not in held_ids]
    created = store.outbox_by_key(summary["key"])
    return kept + [created] if created else kept


def _summary(store: Store, destination: str, rows: list[OutboxRow], now: datetime) -> dict:
    sources: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    top: list[tuple[int, str, Mention]] = []
    for row in rows:
        mentions = store.cluster_mentions(row.cluster)
        matches = store.cluster_matches(row.cluster)
        if not mentions:
            continue
        sources[mentions[0].source] += 1
        rules.update(m.qualified_rule for m in matches)
        severity = max((SEVERITY_ORDER.get(m.severity, 1) for m in matches), default=1)
        top.append((-severity, mentions[0].created_at.isoformat() if mentions[0].created_at else "", mentions[0]))
    top.sort(key=lambda t: (t[0], t[1]))
    lines = [f"{len(rows)} alerts for '{destination}' were held back by flood control in this run."]
    lines.append("By source: " + ", ".join(f"{s} {n}" for s, n in sources.most_common()))
    lines.append("By rule: " + ", ".join(f"{r} {n}" for r, n in rules.most_common(10)))
    lines.append("Top items:")
    for _, _, mention in top[:TOP_ITEMS]:
        lines.append(f"- [{mention.source}] {fmt.subject(mention, 120)} {mention.url}")
    lines.append("Nothing is lost: every item is in state.db (see `earful status`) and in the next digest.")
    stamp = now.strftime("%Y%m%dT%H%M%S")
    mention = Mention(source="earful", external_id=f"flood:{destination}:{stamp}", kind="message", author="earful",
                      title=f"Flood control: {len(rows)} alerts held back for {destination}", text="\n".join(lines),
                      created_at=now, site="earful")
    match = Match(mention_key=mention.key, rule_id="flood-control", pack="earful", labels=("summary",), severity="medium")
    monitors = Counter(r.monitor for r in rows)
    return {
        "key": f"{mention.key}#{destination}",
        "cluster": mention.key,
        "monitor": monitors.most_common(1)[0][0],
        "payload": {"mentions": [mention_to_row(mention)], "matches": [match_to_row(match)], "note": None},
    }
