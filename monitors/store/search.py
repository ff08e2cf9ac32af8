"""Reading history back: `earful search`, `earful backtest` and the queries `earful browse` offers.

Search narrows with the FTS5 index `items_search` (migration m007): the
caller passes an FTS5 expression that every match must satisfy, and gets
the stored mentions that satisfy it, plus every mention whose text is not
plain ASCII (marked `beyond_ascii`, where the index's words and the rules
engine's words may differ). Deciding which candidates really match is the
engine's job, never SQL's.

The canned queries are plain SQL over the schema; `earful browse` hands
them to Datasette, which runs them on its own read-only connection.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from earful.core import Match, Mention, iso, parse_time

from .records import row_to_match, row_to_mention

_POSTED = "coalesce(created_at, first_seen_at)"
CANDIDATES = (f"select * from items where {_POSTED} >= ? and rowid in "
              "(select rowid from items_search where items_search match ?) "
              f"order by {_POSTED} desc, rowid desc")
POSTED_SINCE = f"select * from items where {_POSTED} >= ? order by {_POSTED} desc, rowid desc"
FOUND_SINCE = "select * from items where first_seen_at >= ? order by first_seen_at, rowid"
VIEW_COLUMNS = "select name from pragma_table_info('mentions') order by cid"
MATCHES_FOUND_SINCE = ("select m.* from matches m join items i on i.key = m.item_key "
                       "where i.first_seen_at >= ? order by m.rowid")

# Everything not yet answered: open (waiting, maybe past its deadline) or given up on.
_UNANSWERED = """select q.status, q.source, q.posted_at, q.deadline, i.author,
    coalesce(nullif(i.title, ''), substr(i.text, 1, 200)) as mention, i.url
from queries q join items i on i.key = q.item_key
where q.status in ('open', 'unanswered')
order by q.deadline"""
# A breach as `earful report` counts one: answered after the deadline, or not answered by it.
_BREACHED = """select q.status, q.source, q.posted_at, q.deadline, q.answered_at, i.author,
    coalesce(nullif(i.title, ''), substr(i.text, 1, 200)) as mention, i.url
from queries q join items i on i.key = q.item_key
where (q.status = 'answered' and q.answered_at > q.deadline)
   or (q.status in ('open', 'unanswered') and q.deadline <= strftime('%Y-%m-%dT%H:%M:%f', 'now'))
order by q.deadline"""
_PER_CHANNEL = """select i.source as channel,
    count(*) as mentions,
    count(distinct m.item_key) as matched,
    count(distinct case when q.status = 'answered' then q.cluster end) as answered,
    count(distinct case when q.status in ('open', 'unanswered') then q.cluster end) as unanswered,
    max(coalesce(i.created_at, i.first_seen_at)) as latest
from items i
left join (select distinct item_key from matches) m on m.item_key = i.key
left join queries q on q.item_key = i.key
group by i.source
order by mentions desc"""

BROWSE_QUERIES = {
    "unanswered": {"title": "Unanswered questions and complaints",
                   "description": "Waiting for the brand's reply (open) or given up on (unanswered), oldest deadline first.",
                   "sql": _UNANSWERED},
    "breached": {"title": "Reply SLA breached",
                 "description": "Answered after the deadline, or still not answered by it.",
                 "sql": _BREACHED},
    "per_channel": {"title": "Per channel",
                    "description": "Mentions, rule matches and reply tracking per source.",
                    "sql": _PER_CHANNEL},
}


@dataclass(frozen=True)
class StoredMention:
    """A mention as stored: the mention itself, the monitor that found it, and when."""

    mention: Mention
    monitor: str
    found_at: datetime

    @property
    def posted_at(self) -> datetime:
        """When it was written; when earful found it where the source does not say."""
        return self.mention.created_at or self.found_at


def _stored(row: dict) -> StoredMention:
    return StoredMention(row_to_mention(row), row["monitor"], parse_time(row["first_seen_at"]))


class SearchTable:
    """Mixed into `Store`: history read back for search, backtest and browse."""

    def search_candidates(self, since: datetime, words: str | None) -> list[StoredMention]:
        """Mentions posted since `since`, newest first; only those satisfying the FTS5 expression `words`
        (or not plain ASCII) when it is given."""
        if words is None:
            return [_stored(row) for row in self._rows(POSTED_SINCE, [iso(since)])]
        return [_stored(row) for row in self._rows(CANDIDATES, [iso(since), f"({words}) OR beyond_ascii:yes"])]

    def mentions_found_since(self, since: datetime) -> list[StoredMention]:
        """Mentions earful found since `since`, in the order it found them."""
        return [_stored(row) for row in self._rows(FOUND_SINCE, [iso(since)])]

    def matches_found_since(self, since: datetime) -> dict[str, list[Match]]:
        """The stored matches of the mentions found since `since`, per item key."""
        found: dict[str, list[Match]] = defaultdict(list)
        for row in self._rows(MATCHES_FOUND_SINCE, [iso(since)]):
            found[row["item_key"]].append(row_to_match(row))
        return dict(found)

    def mentions_view_columns(self) -> list[str]:
        """The columns of the `mentions` view that `earful browse` opens on."""
        return [row["name"] for row in self._rows(VIEW_COLUMNS)]
