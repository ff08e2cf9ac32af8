"""RSS and Atom feeds: Google Alerts, Reddit .rss, Stack Exchange, Mastodon tags, YouTube, GitHub, news sites.

Feeds are the cheapest way to watch many places, so an idle poll must cost
next to nothing: each feed is fetched with a conditional GET (the ETag and
Last-Modified of the previous answer live in the cursor), and a 304 is not
parsed at all. Fetching goes through `requests` with a timeout (feedparser's
own fetcher has none, and one hung feed must not stall a cron run); the
bytes are then read by feedfast.py's lxml fast path when they are plain
RSS 2.0 or Atom 1.0 (proven to give the same Mentions), else by
`feedparser.parse`.

A 200 answer repeats entries we already returned, so the cursor keeps a
bounded list of recently seen entry ids per feed and only unseen entries
become mentions. An entry's `external_id` is a hash of the feed URL (as
configured, not as redirected by `base_url`) and the entry's own identity:
stable across runs, distinct when the same article shows up in two feeds,
while `url` stays the article's canonical address so the store can cluster
the two.

Source quirks handled here: Google Alerts wraps links in a google.com/url
redirect and bolds the query; FeedBurner's links go through
feedproxy.google.com, with the article's address in `feedburner:origLink`;
Mastodon tag feeds have no title and no author; some servers send a newline
before `<?xml`.

Reddit serves its listings in three shapes over the years, all recognised
as Reddit: today's Atom (`<id>t3_x</id>`, `label="r/sub"`, author
`/u/name`), the 2016 Atom (the same with a leading slash: `/t3_x`,
`label="/r/sub"`), and the older RSS 2.0 (the author only inside the
"submitted by" link, `<guid>` the permalink). Each appends a "submitted by
... [link] [N comments]" footer, which is cut from the text; the subreddit
("r/sub", as the reddit connector's `site`) comes from the label or the
permalink, the author from `/u/name` or the footer's user link.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, model_validator

from earful.core import Mention

from . import feedfast
from .base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorOptions,
    FetchResult,
)
from .http import HttpClient, html_to_text, join_url, redact_url, split_url
from .reddit import rendered_text

if TYPE_CHECKING:
    import requests

SEEN_PER_FEED = 500
ACCEPT = "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"

_REDDIT_FOOTER = re.compile(
    r"(?:\s|&#32;)*submitted by(?:\s|&#32;)*<a href=\"[^\"]*/user/(?P<user>[^\"/?#]+)/?\".*\Z", re.S)
_REDDIT_FULLNAME = re.compile(r"^/?(t[13]_[0-9a-z]+)$")
_REDDIT_PERMALINK = re.compile(r"^/r/(?P<sub>\w+)/comments/(?P<post>[0-9a-z]+)(?:/[^/]*(?:/(?P<comment>[0-9a-z]+))?)?/?$")
_SUBREDDIT_LABEL = re.compile(r"^/?(r/\w+)$")
_MASTODON_STATUS = re.compile(r"^/@([\w.]+)/\d+$")


class RssOptions(ConnectorOptions):
    """`url` for one feed, `urls` for several; `base_url` replaces scheme and host of each."""

    url: str | None = Field(default=None, description="One feed URL.")
    urls: list[str] = Field(default_factory=list, description="Several feed URLs, polled in order.")

    @model_validator(mode="after")
    def _check_feeds(self) -> "RssOptions":
        if not self.feeds:
            raise ValueError("give `url` (one feed) or `urls` (a list of feeds)")
        for feed in self.feeds:
            parts = urlsplit(feed)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{feed!r} is not an http(s) URL")
        return self

    @property
    def feeds(self) -> list[str]:
        return list(dict.fromkeys(([self.url] if self.url else []) + list(self.urls)))


class RssConnector(Connector):
    name = "rss"
    sees_replies = False  # a feed shows posts, not who answered them
    pushes_query = False
    Options = RssOptions
    options: RssOptions

    def __init__(self, options: RssOptions, context: ConnectorContext):
        super().__init__(options, context)
        self.http = HttpClient(options, f"rss monitor {context.monitor!r}")

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        """Poll every feed; a feed that fails is noted, and only if all fail does the run fail.

        One broken feed among several must not blind the monitor to the
        others, but a monitor whose every feed fails is a failed run.
        """
        previous: Mapping[str, Any] = (cursor or {}).get("feeds") or {}
        states: dict[str, Any] = {}
        mentions: list[Mention] = []
        errors: list[ConnectorError] = []
        changed = 0
        start = self.http.count
        for feed in self.options.feeds:
            state = previous.get(feed) or {}
            try:
                outcome = self._poll(feed, state)
            except ConnectorError as exc:
                errors.append(exc)
                outcome = None
            if outcome is None:
                if state:
                    states[feed] = state
                continue
            changed += 1
            found, states[feed] = outcome
            mentions.extend(found)
        requests_made = self.http.count - start
        if len(errors) == len(self.options.feeds):
            raise max(errors, key=lambda e: e.retry_after or 0)
        if not changed and not errors:
            return FetchResult(mentions=[], cursor=dict(cursor or {}), not_modified=True, requests=requests_made)
        notes = [str(error) for error in errors]
        return FetchResult(mentions=mentions, cursor={"feeds": states}, requests=requests_made, notes=notes)

    def close(self) -> None:
        self.http.close()

    # -- one feed -------------------------------------------------------
    def _poll(self, feed: str, state: Mapping[str, Any]) -> tuple[list[Mention], dict[str, Any]] | None:
        """New mentions and the feed's next state, or None when the feed answered 304."""
        headers = {"Accept": ACCEPT}
        if state.get("etag"):
            headers["If-None-Match"] = state["etag"]
        if state.get("last_modified"):
            headers["If-Modified-Since"] = state["last_modified"]
        response = self.http.get(self._target(feed), headers=headers, accept=(304,))
        if response.status_code == 304:
            return None
        parsed = self._parse(feed, response)
        brands = self.context.brand_names("rss")
        seen = list(state.get("seen") or [])
        known = set(seen)
        current: list[str] = []
        mentions: list[Mention] = []
        for entry in parsed.entries:
            mention = entry_mention(feed, parsed.feed, entry, brands)
            current.append(mention.external_id)
            if mention.external_id not in known:
                known.add(mention.external_id)
                mentions.append(mention)
        # Entries still in the feed are always remembered, older ones only up to the limit.
        remembered = list(dict.fromkeys(current + seen))[: max(SEEN_PER_FEED, len(current))]
        next_state: dict[str, Any] = {"seen": remembered}
        if response.headers.get("ETag"):
            next_state["etag"] = response.headers["ETag"]
        if response.headers.get("Last-Modified"):
            next_state["last_modified"] = response.headers["Last-Modified"]
        return mentions, next_state

    def _target(self, feed: str) -> str:
        """The URL actually requested: `base_url` replaces scheme and host, path and query stay."""
        if not self.options.base_url:
            return feed
        parts = urlsplit(feed)
        return self.options.base_url.rstrip("/") + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def _parse(self, feed: str, response: "requests.Response") -> Any:
        """feedparser's result; a body that is no feed at all is a `ConnectorError`.

        feedparser flags any irregularity as `bozo`; a feed that still yields
        entries (or a well-formed feed that is merely empty) is fine. What
        fails is a body with no feed in it, such as an HTML error or login
        page: silently reading it as "no new entries" would hide a dead feed.
        """
        # Some servers put a newline before `<?xml`, which the strict XML parser rejects.
        body = response.content.lstrip(b" \t\r\n")
        fast = feedfast.parse(body)  # plain RSS 2.0 / Atom 1.0 at a fraction of the cost; None: feedparser decides
        if fast is not None:
            return fast
        import feedparser

        ctype = response.headers.get("Content-Type", "")
        # No content-location: feedparser would resolve bare ids such as Reddit's `t3_x` against it.
        parsed = feedparser.parse(body, response_headers={"content-type": ctype})
        harmless = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
        broken = parsed.bozo and not isinstance(parsed.get("bozo_exception"), harmless)
        if not parsed.entries and (not parsed.version or broken):
            reason = str(parsed.get("bozo_exception") or "no RSS or Atom elements found")[:200]
            raise ConnectorError(
                f"{self.http.label}: {redact_url(response.url)} answered {response.status_code} "
                f"({ctype or 'no content-type'}, {len(response.content)} bytes) but it is not an RSS/Atom feed: {reason}; "
                "the feed may have moved, changed layout or now need a login",
                status=response.status_code,
            )
        return parsed


# -- entry -> Mention -------------------------------------------------------


def entry_mention(feed: str, channel: Mapping[str, Any], entry: Mapping[str, Any], brands: set[str]) -> Mention:
    """Map one feedparser entry of `feed` to a Mention."""
    title = _detail_text(entry.get("title_detail"), entry.get("title"))
    body = _body(entry)
    identity = _identity(entry, title, body)
    link = _item_url(feed, entry)
    reddit = _reddit_origin(entry, identity, link)
    footer_user = ""
    if reddit:
        body, footer_user = _cut_reddit_footer(body)
    author = _author(entry, link, reddit is not None) or footer_user
    subreddit, fullname = reddit or ("", "")
    return Mention(
        source="rss",
        external_id=_digest(f"{feed}\n{identity}", 20),
        url=link,
        author=author,
        author_is_brand=bool(author) and author.lower().lstrip("@") in brands,
        title=title,
        text=_detail_text(body, body.get("value"), reader=rendered_text if reddit else html_to_text),
        created_at=_utc(entry.get("published_parsed") or entry.get("updated_parsed")),
        kind="comment" if fullname.startswith("t1_") else "post",
        language=_language(channel, entry, body),
        site=subreddit or (split_url(link).hostname or "").removeprefix("www."),
        raw={"feed": feed, "id": identity, "tags": [t.get("term") for t in entry.get("tags") or [] if t.get("term")]},
    )


def _item_url(feed: str, entry: Mapping[str, Any]) -> str:
    """The article's own address: FeedBurner's `origLink` over its feedproxy link, Google's redirects unwrapped."""
    original = str(entry.get("feedburner_origlink") or "").strip()
    if split_url(original).scheme in ("http", "https"):
        return original
    return _unwrap_redirect(join_url(feed, entry["link"])) if entry.get("link") else ""


def _identity(entry: Mapping[str, Any], title: str, body: Mapping[str, Any]) -> str:
    """The entry's own id, else its link, else a hash of its words (some feeds give neither)."""
    return entry.get("id") or entry.get("link") or "sha256:" + _digest(title + "\n" + (body.get("value") or ""), 32)


def _reddit_origin(entry: Mapping[str, Any], identity: str, link: str) -> tuple[str, str] | None:
    """(subreddit as "r/name", fullname) of a Reddit entry, either "" when its shape does not say; None elsewhere.

    The category label (`r/sub` or `/r/sub`) and the entry id (`t3_x` or
    `/t3_x`) mark the Atom shapes; a reddit.com permalink as the link marks
    the RSS 2.0 one and gives both values where the others are missing.
    """
    labels = (_SUBREDDIT_LABEL.match((tag.get("label") or "").strip()) for tag in entry.get("tags") or [])
    subreddit = next((label.group(1) for label in labels if label), "")
    own_id = _REDDIT_FULLNAME.match(identity.strip())
    fullname = own_id.group(1) if own_id else ""
    from_link = _reddit_permalink(link)
    if from_link:
        subreddit, fullname = subreddit or from_link[0], fullname or from_link[1]
    return (subreddit, fullname) if subreddit or fullname else None


def _reddit_permalink(link: str) -> tuple[str, str] | None:
    """(subreddit, fullname) named by a reddit.com post or comment permalink; None for any other link."""
    parts = split_url(link)
    found = _REDDIT_PERMALINK.match(parts.path) if (parts.hostname or "").endswith("reddit.com") else None
    if not found:
        return None
    comment = found.group("comment")
    return f"r/{found.group('sub')}", f"t1_{comment}" if comment else f"t3_{found.group('post')}"


def _cut_reddit_footer(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """The body without Reddit's "submitted by ... [link] [N comments]" footer, and the user its link names."""
    value = body.get("value") or ""
    footer = _REDDIT_FOOTER.search(value)
    if not footer:
        return body, ""
    return {**body, "value": value[: footer.start()]}, footer.group("user")


def _author(entry: Mapping[str, Any], link: str, reddit: bool) -> str:
    """The entry's author: Reddit's without its /u/ prefix; Mastodon tag feeds name none, the status URL does."""
    author = (entry.get("author") or "").strip()
    if reddit:
        author = re.sub(r"^/?u/", "", author)
    if author:
        return author
    status = _MASTODON_STATUS.match(split_url(link).path)
    return status.group(1) if status else ""


def _language(channel: Mapping[str, Any], entry: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
    """The most specific language given: the body's, the title's, else the feed's."""
    return (body.get("language") or (entry.get("title_detail") or {}).get("language") or channel.get("language")) or None


def _body(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """The fullest text of an entry: HTML content beats summary (Atom: Reddit, GitHub), else summary.

    Plain-text content loses to a summary because feedparser also files
    `media:description` (Mastodon's attachment alt text) under `content`.
    """
    summary = entry.get("summary_detail")
    if not summary and entry.get("summary"):
        summary = {"type": "text/html", "value": entry["summary"]}
    for content in entry.get("content") or []:
        if content.get("value") and ("html" in (content.get("type") or "") or not summary):
            return content
    return summary or {"type": "text/plain", "value": ""}


def _detail_text(detail: Mapping[str, Any] | None, fallback: str | None,
                 reader: Callable[[str], str] = html_to_text) -> str:
    """Plain text of a feedparser text construct; `reader` turns its HTML into text."""
    value = (detail or {}).get("value", fallback) or ""
    if "html" in ((detail or {}).get("type") or "text/html"):
        return reader(value)
    return re.sub(r"\s+", " ", value).strip()


def _unwrap_redirect(link: str) -> str:
    """Google Alerts links point at google.com/url?...&url=REAL; the article is the real URL."""
    parts = split_url(link)
    if (parts.hostname or "").endswith("google.com") and parts.path == "/url":
        params = dict(parse_qsl(parts.query))
        target = params.get("url") or params.get("q") or ""
        if target.startswith(("http://", "https://")):
            return target
    return link


def _utc(parsed: Any) -> datetime | None:
    """feedparser's *_parsed values are UTC struct_times."""
    try:
        return datetime(*parsed[:6], tzinfo=timezone.utc) if parsed else None
    except (TypeError, ValueError):
        return None


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


CONNECTOR = RssConnector
