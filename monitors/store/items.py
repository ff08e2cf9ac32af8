"""`items` and `matches`: every mention seen, its duplicate cluster, and the rules it matched.

A mention is recognised by its exact key first, then as a copy of an
earlier one by canonical URL (30 days) or by near-duplicate text (7 days);
copies share the first one's `cluster`, which is what alerts are keyed on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Sequence

from earful.core import Match, Mention

from ..dedupe import canonical_url, text_fingerprint
from .records import (
    MENTION_FIELDS,
    Recorded,
    match_to_row,
    mention_to_row,
    row_to_match,
    row_to_mention,
)

URL_WINDOW = timedelta(days=30)
TEXT_WINDOW = timedelta(days=7)

ITEM_COLUMNS = [*MENTION_FIELDS, "raw", "key", "monitor", "canonical_url", "fingerprint", "cluster",
                "first_seen_at", "last_seen_at"]
MATCH_COLUMNS = ["item_key", "pack", "rule_id", "labels", "severity", "destinations", "reply_within_s", "escalate"]

INSERT_ITEM = f"insert into items ({', '.join(ITEM_COLUMNS)}) values ({', '.join('?' for _ in ITEM_COLUMNS)})"
SEEN_ITEM = "select cluster, text, title from items where key = ?"
UPDATE_ITEM = "update items set title = ?, text = ?, brand_replied = ?, raw = ?, last_seen_at = ? where key = ?"
CLUSTER_BY_URL = "select cluster from items where canonical_url = ? and first_seen_at >= ? order by first_seen_at limit 1"
CLUSTER_BY_TEXT = "select cluster from items where fingerprint = ? and first_seen_at >= ? order by first_seen_at limit 1"
UPSERT_MATCH = (
    f"insert into matches ({', '.join(MATCH_COLUMNS)}) values ({', '.join('?' for _ in MATCH_COLUMNS)}) "
    f"on conflict (item_key, pack, rule_id) do update set "
    + ", ".join(f"{c} = excluded.{c}" for c in MATCH_COLUMNS[3:])
)
ITEM = "select * from items where key = ?"
ALL_ITEMS = "select * from items order by key"
# rowid: SQLite's insertion order breaks ties (a second backend needs a sequence column for it)
CLUSTER_ITEMS = "select * from items where cluster = ? order by first_seen_at, rowid"
CLUSTER_MATCHES = ("select m.* from matches m join items i on i.key = m.item_key where i.cluster = ? "
                   "order by i.first_seen_at, m.rowid")


class ItemsTable:
    """Mixed into `Store`: the statements on `items` and `matches`."""

    def _record(self, monitor: str, mention: Mention, matches: Sequence[Match], stamps: tuple[str, str, str]) -> Recorded:
        """Insert or recognise one mention; `stamps` = (now, url window start, text window start) as ISO text.

        Runs inside `ingest`'s transaction, on the raw connection: this is the hot path of a run.
        """
        now, url_since, text_since = stamps
        key = mention.key
        execute = self.db.conn.execute
        existing = execute(SEEN_ITEM, (key,)).fetchone()
        if existing:
            cluster, old_text, old_title = existing
            outcome = "duplicate"
            if (old_text, old_title) != (mention.text, mention.title):
                row = mention_to_row(mention)
                execute(UPDATE_ITEM, (row["title"], row["text"], row["brand_replied"], row["raw"], now, key))
                outcome = "updated"
            self._save_matches(matches)
            return Recorded(key, outcome, cluster)

        canonical = canonical_url(mention.link_url or mention.url)
        fingerprint = text_fingerprint(mention.title, mention.text)
        cluster = None
        if canonical:
            hit = execute(CLUSTER_BY_URL, (canonical, url_since)).fetchone()
            cluster = hit[0] if hit else None
        if cluster is None and fingerprint:
            hit = execute(CLUSTER_BY_TEXT, (fingerprint, text_since)).fetchone()
            cluster = hit[0] if hit else None
        outcome = "clustered" if cluster else "new"
        row = mention_to_row(mention)
        row.update(key=key, monitor=monitor, canonical_url=canonical, fingerprint=fingerprint,
                   cluster=cluster or key, first_seen_at=now, last_seen_at=now)
        execute(INSERT_ITEM, [row[name] for name in ITEM_COLUMNS])
        self._save_matches(matches)
        return Recorded(key, outcome, cluster or key)

    def _save_matches(self, matches: Sequence[Match]) -> None:
        if matches:
            self.db.conn.executemany(UPSERT_MATCH, [[row[c] for c in MATCH_COLUMNS] for row in map(match_to_row, matches)])

    def item(self, key: str) -> Mention | None:
        row = self._row(ITEM, [key])
        return row_to_mention(row) if row else None

    def all_mentions(self) -> list[Mention]:
        """Every stored mention, in key order: for inspecting a small state (tests, the demo), not for runs."""
        return [row_to_mention(r) for r in self._rows(ALL_ITEMS)]

    def cluster_mentions(self, cluster: str) -> list[Mention]:
        return [row_to_mention(r) for r in self._rows(CLUSTER_ITEMS, [cluster])]

    def cluster_matches(self, cluster: str) -> list[Match]:
        """The cluster's matches, one per rule, the earliest sighting's first."""
        seen: dict[tuple[str, str], Match] = {}
        for row in self._rows(CLUSTER_MATCHES, [cluster]):
            match = row_to_match(row)
            seen.setdefault((match.pack, match.rule_id), match)
        return list(seen.values())
