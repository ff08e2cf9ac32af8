"""A fake of the Hacker News Algolia API (hn.algolia.com/api/v1), standard library only.

It answers `search_by_date`, `search` and `items/ID` with the real shapes
(string `objectID`, int `story_id`/`parent_id`, `_tags`, `_highlightResult`,
ISO `created_at` beside `created_at_i`, HN-escaped HTML in `comment_text`)
and the real limits that a connector must get right: `tags` with the
parenthesised OR syntax, `numericFilters` on `created_at_i`, newest-first
paging with `hitsPerPage`/`page`, and at most 1000 reachable hits per query
(`nbPages` is capped, deeper pages come back empty), so catch-up logic is
tested against the same wall it meets in production.

Query matching follows Algolia's defaults closely enough: every word must
match (case-insensitive, whole words; the last word may be a prefix),
"quoted phrases" match consecutive words, `-word` excludes.
"""

from __future__ import annotations

import html as _html
import math
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlencode

from .server import DemoSource, FakeServer, Request, Response

REACHABLE = 1000  # Algolia's paginationLimitedTo
_NUMERIC = re.compile(r"^\s*(\w+)\s*(<=|>=|!=|<|>|=)\s*(-?\d+(?:\.\d+)?)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass
class Item:
    """One HN item as the fake stores it; hits and item trees are rendered from these."""

    id: int
    type: str  # story, comment, poll, job
    author: str
    created_at_i: int
    title: str | None = None
    url: str | None = None
    text: str | None = None  # HN HTML: story_text or comment_text
    points: int | None = None
    parent_id: int | None = None
    story_id: int | None = None
    num_comments: int | None = None  # shown instead of the counted comments when set
    children: list[int] = field(default_factory=list)


class HackerNewsServer(FakeServer):
    """Holds items; `add_story` / `add_comment` return the search hit, as the API would show it."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[int, Item] = {}
        self._next_id = 40_000_001
        self._items_lock = threading.Lock()

    # -- building data -------------------------------------------------
    # Keyword names are the hit's own field names. `story_text` / `comment_text`
    # are HN's stored HTML, used as given; `text` is plain text, rendered the
    # way HN stores it (see `hn_html`). `id` is assigned when omitted.

    def add_story(
        self,
        id: int | None = None,
        *,
        title: str,
        author: str = "pg",
        url: str | None = None,
        story_text: str | None = None,
        text: str | None = None,
        created_at_i: int | None = None,
        points: int = 1,
        num_comments: int | None = None,
    ) -> dict[str, Any]:
        """Add a story (Ask HN / Show HN get their tag from the title) and return its search hit.

        `num_comments` overrides the count of comments actually added, for
        sample data that shows a busy thread without spelling it out.
        """
        with self._items_lock:
            item = Item(
                id=self._new_id(id),
                type="story",
                author=author,
                created_at_i=int(time.time()) if created_at_i is None else created_at_i,
                title=title,
                url=url,
                text=story_text if story_text is not None else (hn_html(text) if text else None),
                points=points,
                num_comments=num_comments,
            )
            item.story_id = item.id
            self.items[item.id] = item
            return self.hit(item)

    def add_comment(
        self,
        id: int | None = None,
        *,
        parent_id: int | str,
        story_id: int | str | None = None,
        author: str = "pg",
        comment_text: str | None = None,
        text: str | None = None,
        created_at_i: int | None = None,
    ) -> dict[str, Any]:
        """Add a comment under story or comment `parent_id` and return its search hit.

        `story_id` defaults to the parent's story; it is needed only when the
        parent is not held by the fake.
        """
        with self._items_lock:
            parent = self.items.get(int(parent_id))
            if story_id is None and parent is None:
                raise ValueError(f"parent {parent_id} is unknown: give story_id")
            item = Item(
                id=self._new_id(id),
                type="comment",
                author=author,
                created_at_i=int(time.time()) if created_at_i is None else created_at_i,
                text=comment_text if comment_text is not None else hn_html(text or ""),
                parent_id=int(parent_id),
                story_id=int(story_id) if story_id is not None else parent.story_id if parent else None,
            )
            self.items[item.id] = item
            if parent is not None:
                parent.children.append(item.id)
            return self.hit(item)

    def _new_id(self, wanted: int | None) -> int:
        if wanted is None:
            while self._next_id in self.items:
                self._next_id += 1
            wanted = self._next_id
        if wanted in self.items:
            raise ValueError(f"item {wanted} exists")
        return wanted

    # -- rendering -----------------------------------------------------
    def hit(self, item: Item, words: list[list[str]] | None = None) -> dict[str, Any]:
        """The search hit for `item` (modern shape: absent keys instead of nulls), highlighted for `words`."""
        hit: dict[str, Any] = {
            "_tags": _tags(item),
            "author": item.author,
            "children": list(item.children),
            "created_at": _iso(item.created_at_i),
            "created_at_i": item.created_at_i,
            "objectID": str(item.id),
            "updated_at": _iso(item.created_at_i),
        }
        if item.type == "comment":
            story = self.items.get(item.story_id or 0)
            hit.update(comment_text=item.text, parent_id=item.parent_id, story_id=item.story_id)
            hit["story_title"] = story.title if story else None
            if story and story.url:
                hit["story_url"] = story.url
            shown = ("author", "comment_text", "story_title", "story_url")
        else:
            comments = self._count(item) if item.num_comments is None else item.num_comments
            hit.update(num_comments=comments, points=item.points, story_id=item.id, title=item.title)
            if item.url:
                hit["url"] = item.url
            if item.text:
                hit["story_text"] = item.text
            shown = ("author", "story_text", "title", "url")
        hit["_highlightResult"] = {k: _highlight(hit[k], words or []) for k in shown if isinstance(hit.get(k), str)}
        return dict(sorted(hit.items()))

    def tree(self, item: Item) -> dict[str, Any]:
        """`items/ID`: the item with its whole subtree under `children`."""
        return {
            "author": item.author,
            "children": [self.tree(self.items[c]) for c in item.children],
            "created_at": _iso(item.created_at_i),
            "created_at_i": item.created_at_i,
            "id": item.id,
            "options": [],
            "parent_id": item.parent_id,
            "points": item.points,
            "story_id": item.story_id,
            "text": item.text,
            "title": item.title,
            "type": item.type,
            "url": item.url,
        }

    def _number(self, item: Item, attr: str) -> float:
        value = self._count(item) if attr == "num_comments" and item.num_comments is None else getattr(item, attr, None)
        return float(value) if isinstance(value, (int, float)) else 0.0

    def _count(self, item: Item) -> int:
        return sum(1 + self._count(self.items[c]) for c in item.children)

    # -- HTTP ------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        with self._items_lock:
            if path in ("/api/v1/search_by_date", "/api/v1/search"):
                return self._search(request, by_date=path.endswith("_by_date"))
            if m := re.fullmatch(r"/api/v1/items/(\d+)", path):
                item = self.items.get(int(m.group(1)))
                if item is None:
                    return Response.json({"error": "Not Found", "status": 404}, 404)
                return Response.json(self.tree(item))
        return Response.json({"error": "Not Found", "status": 404}, 404)

    def _search(self, request: Request, by_date: bool) -> Response:
        started = time.perf_counter()
        query = request.arg("query", "") or ""
        try:
            hits_per_page = min(REACHABLE, max(0, int(request.arg("hitsPerPage", "20") or 20)))
            page = max(0, int(request.arg("page", "0") or 0))
            numeric = _numeric_filters(request.arg("numericFilters", "") or "")
        except ValueError as exc:
            return Response.json({"message": str(exc), "status": 400}, 400)
        tag_groups = _tag_groups(request.arg("tags", "") or "")
        words, phrases, excluded = _parse_query(query)
        matches = []
        for item in self.items.values():
            item_tags = set(_tags(item))
            if not all(item_tags & group for group in tag_groups):
                continue
            if not all(op(self._number(item, attr), value) for attr, op, value in numeric):
                continue
            if _matches(_searchable(item), words, phrases, excluded):
                matches.append(item)
        if by_date:
            matches.sort(key=lambda i: (i.created_at_i, i.id), reverse=True)
        else:
            matches.sort(key=lambda i: (i.points or 0, i.created_at_i, i.id), reverse=True)
        reachable = min(len(matches), REACHABLE)
        start = page * hits_per_page
        chosen = matches[start : min(start + hits_per_page, reachable)] if start < reachable else []
        params = sorted(
            [(k, v[-1]) for k, v in request.query.items()] + [("advancedSyntax", "true"), ("analytics", "false")]
        )
        took = max(1, int((time.perf_counter() - started) * 1000))
        return Response.json(
            {
                "exhaustive": {"nbHits": True, "typo": True},
                "exhaustiveNbHits": True,
                "exhaustiveTypo": True,
                "hits": [self.hit(item, words) for item in chosen],
                "hitsPerPage": hits_per_page,
                "nbHits": len(matches),
                "nbPages": math.ceil(reachable / hits_per_page) if hits_per_page else 0,
                "page": page,
                "params": urlencode(params),
                "processingTimeMS": took,
                "processingTimingsMS": {"_request": {"roundTrip": took}, "total": took},
                "query": query,
                "serverTimeMS": took + 1,
            }
        )


# -- helpers -------------------------------------------------------------------


def hn_html(text: str) -> str:
    """Plain text as HN stores it: escaped (`&#x27;`, `&#x2F;`), `<p>` between paragraphs, linked URLs."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "<p>".join(_linkify(p) for p in paragraphs)


def _hn_escape(text: str) -> str:
    return _html.escape(text, quote=True).replace("/", "&#x2F;")


def _linkify(paragraph: str) -> str:
    out, last = [], 0
    for m in _URL.finditer(paragraph):
        url = m.group(0).rstrip(".,)")
        shown = url if len(url) <= 60 else url[:57] + "..."
        out.append(_hn_escape(paragraph[last : m.start()]))
        out.append(f'<a href="{_hn_escape(url)}" rel="nofollow">{_hn_escape(shown)}</a>')
        last = m.start() + len(url)
    out.append(_hn_escape(paragraph[last:]))
    return "".join(out)


def _tags(item: Item) -> list[str]:
    tags = [item.type, f"author_{item.author}", f"story_{item.story_id}"]
    for prefix, tag in (("ask hn:", "ask_hn"), ("show hn:", "show_hn")):
        if item.type == "story" and (item.title or "").lower().startswith(prefix):
            tags.append(tag)
    return tags


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", _html.unescape(re.sub(r"<[^>]+>", " ", text)).lower())


def _searchable(item: Item) -> list[str]:
    return _tokens(" ".join(v for v in (item.title, item.url, item.author, item.text) if v))


def _parse_query(query: str) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """(required words, required phrases, excluded terms), each as token lists."""
    words: list[list[str]] = []
    phrases: list[list[str]] = []
    excluded: list[list[str]] = []
    for negated, phrase, word in re.findall(r'(-?)(?:"([^"]*)"|([^\s"]+))', query):
        tokens = _tokens(phrase or word)
        if not tokens:
            continue
        if negated:
            excluded.append(tokens)
        elif phrase or len(tokens) > 1:  # acme.com is matched as the sequence acme, com
            phrases.append(tokens)
        else:
            words.append(tokens)
    return words, phrases, excluded


def _contains(tokens: list[str], sequence: list[str], prefix_last: bool = False) -> bool:
    n = len(sequence)
    for i in range(len(tokens) - n + 1):
        window = tokens[i : i + n]
        last_matches = window[-1] == sequence[-1] or (prefix_last and window[-1].startswith(sequence[-1]))
        if window[:-1] == sequence[:-1] and last_matches:
            return True
    return False


def _matches(tokens: list[str], words: list[list[str]], phrases: list[list[str]], excluded: list[list[str]]) -> bool:
    last = len(words) - 1
    return (
        all(_contains(tokens, w, prefix_last=i == last and not phrases) for i, w in enumerate(words))
        and all(_contains(tokens, p) for p in phrases)
        and not any(_contains(tokens, e) for e in excluded)
    )


def _highlight(value: str, words: list[list[str]]) -> dict[str, Any]:
    wanted = [w[0] for w in words]
    matched = [w for w in wanted if re.search(rf"\b{re.escape(w)}", value, re.I)]
    shown = value
    for word in matched:
        shown = re.sub(rf"\b({re.escape(word)}\w*)", r"<em>\1</em>", shown, flags=re.I)
    level = "none" if not matched else "full" if len(matched) == len(wanted) else "partial"
    result: dict[str, Any] = {"matchLevel": level, "matchedWords": matched, "value": shown}
    if matched:
        result["fullyHighlighted"] = False
    return result


def _tag_groups(tags: str) -> list[set[str]]:
    """'(story,comment),author_pg' -> [{story, comment}, {author_pg}]: AND of OR-groups."""
    groups = []
    for m in re.finditer(r"\(([^)]*)\)|([^,()]+)", tags):
        names = (m.group(1) or m.group(2) or "").split(",")
        group = {n.strip() for n in names if n.strip()}
        if group:
            groups.append(group)
    return groups


def _numeric_filters(spec: str) -> list[tuple[str, Callable[[float, float], bool], float]]:
    filters = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = _NUMERIC.match(part)
        if not m:
            raise ValueError(f"invalid numericFilters: {part!r}")
        filters.append((m.group(1), _OPS[m.group(2)], float(m.group(3))))
    return filters


# -- earful demo ------------------------------------------------------------
def demo_source(now: float) -> DemoSource:
    """Stories and comments from `demo_data/hackernews.json`, dated relative to `now`."""
    import json
    from importlib import resources

    server = HackerNewsServer()
    sample = json.loads((resources.files("earful.sandbox") / "demo_data" / "hackernews.json").read_text(encoding="utf-8"))
    for kind, add in (("stories", server.add_story), ("comments", server.add_comment)):
        for item in sample[kind]:
            fields = {k: v for k, v in item.items() if k not in ("id", "minutes_ago")}
            add(item["id"], created_at_i=int(now - item["minutes_ago"] * 60), **fields)
    return DemoSource("hackernews-acme", server, {"connector": "hackernews", "schedule": "*/5 * * * *", "query": "acme", "base_url": "{url}"})
