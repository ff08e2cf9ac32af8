"""A fake feed host: serves RSS/Atom bodies with real HTTP caching semantics.

Real feed servers answer conditional GETs: a strong ETag and a
Last-Modified on every 200, and 304 Not Modified when the client's
If-None-Match (checked first, as RFC 9110 says) or If-Modified-Since shows
it already has the current body. The rss connector's whole idle-poll cost
rests on that, so this fake implements it rather than always answering 200.

Tests and `earful demo` register bodies by path (`set_feed`), replace them
between ticks to simulate new entries, or put an HTML page where a feed used
to be (`set_page`) to simulate a moved feed or a changed layout.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime

from .server import DemoSource, FakeServer, Request, Response

ATOM = "application/atom+xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class _Document:
    body: bytes
    content_type: str
    etag: str
    modified: float  # seconds since the epoch, whole seconds like the header


class FeedServer(FakeServer):
    """Serve named feeds; `requests` records every hit (see `FakeServer`)."""

    def __init__(self) -> None:
        super().__init__()
        self._documents: dict[str, _Document] = {}
        self._docs_lock = threading.Lock()

    def set_feed(self, path: str, body: bytes | str, content_type: str = ATOM) -> None:
        """Serve `body` at `path` (query strings are ignored when matching).

        Replacing a body changes its ETag and moves Last-Modified forward by
        at least one second, so clients that only send If-Modified-Since see
        the change too.
        """
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self._docs_lock:
            old = self._documents.get(path)
            if old and old.body == data and old.content_type == content_type:
                return
            modified = float(int(time.time()))
            if old and modified <= old.modified:
                modified = old.modified + 1
            etag = '"' + hashlib.sha256(data).hexdigest()[:24] + '"'
            self._documents[path] = _Document(data, content_type, etag, modified)

    def set_page(self, path: str, html: str) -> None:
        """Serve an HTML page at `path`, as a site does after moving or dropping its feed."""
        self.set_feed(path, html, HTML)

    def remove(self, path: str) -> None:
        with self._docs_lock:
            self._documents.pop(path, None)

    def feed_url(self, path: str) -> str:
        """Absolute URL of `path` on this running server."""
        return self.url + path

    def handle(self, request: Request) -> Response:
        with self._docs_lock:
            doc = self._documents.get(request.path)
        if doc is None:
            return Response(404, "<html><body><h1>404 Not Found</h1></body></html>", {"Content-Type": HTML})
        headers = {
            "ETag": doc.etag,
            "Last-Modified": formatdate(doc.modified, usegmt=True),
            "Cache-Control": "max-age=0",
        }
        if _not_modified(request, doc):
            return Response(304, b"", headers)
        return Response(200, doc.body, {"Content-Type": doc.content_type, **headers})


def _not_modified(request: Request, doc: _Document) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or doc.etag in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            return parsedate_to_datetime(if_modified_since).timestamp() >= doc.modified
        except (TypeError, ValueError):
            return False
    return False


# -- earful demo ------------------------------------------------------------
DEMO_FEEDS = {
    "/alerts/feeds/00000000000000000001/7000000000000000001": ("https://www.google.com", "google_alerts_acme.atom"),
    "/r/CRM/.rss": ("https://www.reddit.com", "reddit_crm.atom"),
    "/feeds/tag/acme-crm": ("https://stackoverflow.com", "stackoverflow_acme.atom"),
}


def demo_source(now: float) -> DemoSource:
    """Google Alerts, a subreddit's .rss and a Stack Overflow tag feed, as served by their hosts."""
    from importlib import resources

    server = FeedServer()
    data = resources.files("earful.sandbox") / "demo_data"
    for path, (_, name) in DEMO_FEEDS.items():
        server.set_feed(path, (data / name).read_text(encoding="utf-8"), ATOM)
    urls = [host + path for path, (host, _) in DEMO_FEEDS.items()]
    return DemoSource("feeds-acme", server, {"connector": "rss", "schedule": "*/15 * * * *", "urls": urls, "base_url": "{url}"})
