"""Hacker News stories and comments, through the Algolia search API (hn.algolia.com/api/v1).

Query pushdown. Algolia has no OR in its query string: every word must
match. The monitor's query (`acme OR "acme crm"`) is therefore turned into
the fewest Algolia queries whose hits together cover everything it can
match; the rules engine filters the mentions precisely afterwards, so a
pushed-down query only has to be broad enough, never exact:

1. the query is expanded into OR-branches of required terms, with the
   rules language's precedence (AND looser than OR); negations, wildcard
   terms and `field:` filters other than `title:` are dropped (dropping a
   condition only widens the search);
2. a branch that contains another is implied by it and removed
   (`acme OR "acme crm"` -> `acme`);
3. one branch left: it is the query. Several: the terms (else the words)
   they all share form one query (`"acme crm" OR "acme api"` -> `acme`);
4. only branches with nothing in common cost one request each, and each
   keeps its own cursor.

So the usual brand query costs ONE request per idle poll. The `search`
option bypasses all this and sends its text to Algolia verbatim.

Cursor. `search_by_date` is newest first and filterable by
`created_at_i`. The cursor holds the newest timestamp returned
(`created_at_i`) and the ids seen at exactly that second (`seen_at_max`);
the next poll asks for `created_at_i>=` that second and drops those ids, so
items sharing the boundary second are neither lost nor repeated. Pages are
followed while `page+1 < nbPages`; because Algolia serves at most 1000 hits
per query, a longer catch-up narrows the window to `created_at_i<=` the
oldest hit received and starts again at page 0. When `max_pages` runs out
first, the part not yet read is kept in the cursor as a `pending` window
and read on later runs (after the new items, with at least one request
each so a busy present cannot starve them), so nothing falls in a gap.
`max_pages` is only exceeded for that, or to finish a second whose items
fill whole pages (stopping inside it would re-read the same page forever).
The first run, with no cursor, only reads `first_run_lookback` of history.

Not covered: an item that Algolia indexes later than newer items (index
lag) and that is older than the cursor by then is not seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping

from pydantic import Field, field_validator

from earful.core import Mention
from earful.core.durations import Duration
from earful.core.normalize import url_host

from .base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorOptions,
    FetchResult,
    ReplyStatus,
)
from .http import HttpClient, html_to_text, redact_url
from .pushdown import all_words_queries

DEFAULT_BASE = "https://hn.algolia.com"
ITEM_URL = "https://news.ycombinator.com/item?id={}"



class HackerNewsOptions(ConnectorOptions):
    search: str | None = Field(default=None, description="Algolia query sent verbatim instead of the monitor's query.")
    tags: str | list[str] = Field(
        default_factory=lambda: ["story", "comment"],
        description="A list means any of these tags; a string is Algolia tag syntax, e.g. '(story,comment),author_pg'.",
    )
    hits_per_page: int = Field(default=100, ge=1, le=1000)
    max_pages: int = Field(default=10, ge=1, le=1000, description="Search requests per run, split between searches.")
    first_run_lookback: Duration = Field(
        default=timedelta(days=1), gt=timedelta(0), description="History read on the very first run, e.g. 1d, 12h."
    )


    @field_validator("tags")
    @classmethod
    def _tags(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not (value and all(re.fullmatch(r"[A-Za-z0-9_]+", tag) for tag in value)):
            raise ValueError("tags must be words such as story, comment, ask_hn, show_hn, poll, author_NAME")
        return value

    @property
    def tag_filter(self) -> str:
        return self.tags if isinstance(self.tags, str) else "(" + ",".join(self.tags) + ")"


# -- catching up -----------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """Items with lo <= created_at_i <= hi (hi None: up to now), minus ids already read at either edge."""

    lo: int
    lo_seen: frozenset[str] = frozenset()
    hi: int | None = None
    hi_seen: frozenset[str] = frozenset()

    def numeric_filters(self) -> str:
        return f"created_at_i>={self.lo}" + (f",created_at_i<={self.hi}" if self.hi is not None else "")

    def already_read(self, object_id: str, t: int) -> bool:
        return (t == self.lo and object_id in self.lo_seen) or (t == self.hi and object_id in self.hi_seen)

    def dump(self) -> dict[str, Any]:
        return {"from": self.lo, "seen_from": sorted(self.lo_seen), "to": self.hi, "seen_to": sorted(self.hi_seen)}

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> "_Window":
        seen_from, seen_to = frozenset(data.get("seen_from") or ()), frozenset(data.get("seen_to") or ())
        return cls(int(data["from"]), seen_from, int(data["to"]), seen_to)


class HackerNewsConnector(Connector):
    name = "hackernews"
    sees_replies = True
    pushes_query = True
    Options = HackerNewsOptions
    options: HackerNewsOptions

    def __init__(self, options: HackerNewsOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.http = HttpClient(options, f"hackernews monitor {context.monitor!r}")
        base = (options.base_url or DEFAULT_BASE).rstrip("/")
        self.api = base if base.endswith("/api/v1") else base + "/api/v1"

    def searches(self) -> list[str]:
        if self.options.search is not None:
            return [self.options.search]
        if not (self.context.query or "").strip():
            raise ConnectorError(f"{self.http.label}: no query; set `query` on the monitor or `search` in its options")
        try:
            return all_words_queries(self.context.query or "")
        except ValueError as exc:
            raise ConnectorError(f"{self.http.label}: {exc}; set `search` to an explicit Algolia query") from None

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        searches = self.searches()
        cursor = cursor or {}
        if len(searches) == 1:
            states = {searches[0]: cursor if "created_at_i" in cursor else None}
        else:
            states = cursor.get("searches") or {}
        budget = max(1, self.options.max_pages // len(searches))
        start = self.http.count
        hits: dict[str, dict[str, Any]] = {}
        next_states: dict[str, Any] = {}
        notes: list[str] = []
        for query in searches:
            found, next_states[query] = self._catch_up(query, states.get(query), budget)
            for hit in found:
                hits.setdefault(str(hit["objectID"]), hit)
            if next_states[query].get("pending"):
                notes.append(f"Hacker News search {query!r}: older items remain, read on the next runs")
        brands = self.context.brand_names("hackernews")
        ordered = sorted(hits.values(), key=lambda h: (h["created_at_i"], str(h["objectID"])))
        mentions = [hit_mention(hit, brands) for hit in ordered]
        next_cursor = next_states[searches[0]] if len(searches) == 1 else {"searches": next_states}
        return FetchResult(mentions=mentions, cursor=next_cursor, requests=self.http.count - start, notes=notes)

    def _catch_up(self, query: str, state: Mapping[str, Any] | None, budget: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """New hits for one Algolia query, newest window first, and that query's next cursor."""
        if state:
            high, high_seen = int(state["created_at_i"]), frozenset(state.get("seen_at_max") or ())
            pending = [_Window.load(w) for w in state.get("pending") or ()]
        else:
            now = self.context.current_time()
            high, high_seen, pending = int((now - self.options.first_run_lookback).timestamp()), frozenset(), []
        found: list[dict[str, Any]] = []
        left: list[_Window] = []
        for n, window in enumerate([_Window(high, high_seen)] + pending):
            # Each older window gets at least one request, so a busy present cannot starve it.
            rest, hits, used = self._scan(query, window, budget if n == 0 else max(budget, 1))
            budget -= used
            found.extend(hits)
            if rest is not None:
                left.append(rest)
        newest = max((h["created_at_i"] for h in found), default=high)
        if newest > high:
            high, high_seen = newest, frozenset()
        high_seen |= {str(h["objectID"]) for h in found if h["created_at_i"] == high}
        next_state: dict[str, Any] = {"created_at_i": high, "seen_at_max": sorted(high_seen)}
        if left:
            next_state["pending"] = [w.dump() for w in left]
        return found, next_state

    def _scan(self, query: str, window: _Window, budget: int) -> tuple[_Window | None, list[dict[str, Any]], int]:
        """Read `window` newest first within `budget` requests: (unread rest or None, new hits, requests).

        The budget may be overrun only while every hit so far shares the
        newest second: stopping there would leave a rest that overlaps the
        next poll's window and, with that second filling whole pages, would
        re-read the same page forever.
        """
        found: list[dict[str, Any]] = []
        used = page = 0
        top: int | None = None
        oldest: int | None = None
        oldest_ids: set[str] = set()
        while True:
            if used >= budget and (oldest is None or oldest != top):
                return self._rest(window, oldest, oldest_ids), found, used
            reply = self._search(query, window, page)
            used += 1
            for hit in reply["hits"]:
                object_id, t = str(hit["objectID"]), hit["created_at_i"]
                if not window.already_read(object_id, t):
                    found.append(hit)
                if top is None:
                    top = t
                if oldest is None or t < oldest:
                    oldest, oldest_ids = t, {object_id}
                elif t == oldest:
                    oldest_ids.add(object_id)
            if not reply["hits"]:
                return None, found, used
            if page + 1 < reply["nbPages"]:
                page += 1
                continue
            if reply["nbHits"] <= (page + 1) * reply["hitsPerPage"]:
                return None, found, used
            # Algolia serves only the first 1000 hits: continue below the oldest one received.
            narrowed = self._rest(window, oldest, oldest_ids)
            if narrowed == window:  # >1000 items in one second: cannot page further, skip that second
                narrowed = _Window(window.lo, window.lo_seen, (oldest or window.lo) - 1)
            if narrowed.hi is not None and narrowed.hi < narrowed.lo:
                return None, found, used
            window, page, top, oldest, oldest_ids = narrowed, 0, None, None, set()

    @staticmethod
    def _rest(window: _Window, oldest: int | None, oldest_ids: set[str]) -> _Window:
        """What of `window` is still unread when everything newer than `oldest` was read."""
        if oldest is None:
            return window
        seen = oldest_ids | (window.hi_seen if oldest == window.hi else set())
        if oldest == window.lo:
            seen |= window.lo_seen
        return _Window(window.lo, window.lo_seen, oldest, frozenset(seen))

    def _search(self, query: str, window: _Window, page: int) -> dict[str, Any]:
        url = f"{self.api}/search_by_date"
        params = {
            "query": query,
            "tags": self.options.tag_filter,
            "numericFilters": window.numeric_filters(),
            "hitsPerPage": self.options.hits_per_page,
            "page": page,
        }
        reply = self.http.get_json(url, params=params)
        problem = _reply_problem(reply)
        if problem:
            raise ConnectorError(
                f"{self.http.label}: unexpected reply from {redact_url(url)} (query {query!r}): {problem}; "
                "the API may have changed"
            )
        return reply

    # -- replies ---------------------------------------------------------
    def replies(self, mention: Mention) -> ReplyStatus:
        """Did a brand account answer anywhere below this story or comment? Unknown on any failure."""
        brands = self.context.brand_names("hackernews")
        if mention.source != self.name or not brands:
            return ReplyStatus(answered=None)
        try:
            item = self.http.get_json(f"{self.api}/items/{mention.external_id}")
        except ConnectorError:
            return ReplyStatus(answered=None)
        if not isinstance(item, dict) or not isinstance(item.get("children", []), list):
            return ReplyStatus(answered=None)
        answers = [
            child
            for child in _descendants(item)
            if str(child.get("author") or "").lower() in brands and isinstance(child.get("created_at_i"), int)
        ]
        if not answers:
            return ReplyStatus(answered=False)
        first = min(answers, key=lambda c: c["created_at_i"])
        return ReplyStatus(
            answered=True,
            answered_at=datetime.fromtimestamp(first["created_at_i"], timezone.utc),
            answered_by=str(first["author"]),
            url=ITEM_URL.format(first.get("id")),
        )

    def close(self) -> None:
        self.http.close()


def _reply_problem(reply: Any) -> str:
    """What is wrong with a search reply, or "" if it has the shape we rely on."""
    if not isinstance(reply, dict):
        return f"expected a JSON object, got {type(reply).__name__}"
    for key in ("hits", "nbHits", "nbPages", "hitsPerPage"):
        if key not in reply:
            return f"{key!r} is missing"
    if not isinstance(reply["hits"], list):
        return "'hits' is not a list"
    if not all(isinstance(reply[k], int) for k in ("nbHits", "nbPages", "hitsPerPage")) or reply["hitsPerPage"] < 1:
        return "nbHits/nbPages/hitsPerPage are not numbers"
    for hit in reply["hits"]:
        if not isinstance(hit, dict):
            return "a hit is not an object"
        if not isinstance(hit.get("objectID"), (str, int)) or not isinstance(hit.get("created_at_i"), int):
            return "a hit lacks objectID or created_at_i"
    return ""


def _descendants(item: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    stack = [c for c in item.get("children") or [] if isinstance(c, dict)]
    while stack:
        child = stack.pop()
        yield child
        stack.extend(c for c in child.get("children") or [] if isinstance(c, dict))


def hit_mention(hit: Mapping[str, Any], brands: set[str]) -> Mention:
    """Map one Algolia hit (story or comment) to a Mention."""
    object_id = str(hit["objectID"])
    tags = [t for t in hit.get("_tags") or [] if isinstance(t, str)]
    author = str(hit.get("author") or "")
    common: dict[str, Any] = {
        "source": "hackernews",
        "external_id": object_id,
        "url": ITEM_URL.format(object_id),
        "author": author,
        "author_is_brand": author.lower() in brands,
        "created_at": datetime.fromtimestamp(hit["created_at_i"], timezone.utc),
    }
    if "comment" in tags or hit.get("comment_text") is not None:
        return Mention(
            **common,
            kind="comment",
            title=str(hit.get("story_title") or ""),
            text=html_to_text(hit.get("comment_text")),
            thread_id=_id(hit.get("story_id")),
            parent_id=_id(hit.get("parent_id")),
            site="news.ycombinator.com",
            raw={"objectID": object_id, "story_url": hit.get("story_url") or "", "points": hit.get("points"), "tags": tags},
        )
    link = str(hit.get("url") or "")
    return Mention(
        **common,
        kind="post",
        title=str(hit.get("title") or ""),
        text=html_to_text(hit.get("story_text")),
        thread_id=object_id,
        site=url_host(link) or "news.ycombinator.com",  # "" for a link that does not parse: never raises
        link_url=link,
        raw={
            "objectID": object_id,
            "url": link,
            "points": hit.get("points"),
            "num_comments": hit.get("num_comments"),
            "tags": tags,
        },
    )


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


CONNECTOR = HackerNewsConnector
