"""One odd link in a source's data (a bad IPv6 literal, a port past 65535) never fails a
whole fetch: the connector keeps the item and drops only what cannot be parsed."""

from __future__ import annotations

import pytest

from earful.connectors.base import ConnectorContext
from earful.connectors.http import join_url, split_url
from earful.connectors.rss import RssConnector, RssOptions
from earful.sandbox.feeds import RSS, FeedServer

BAD_LINKS = ["http://[::1/broken", "https://example.com:99999/x", "http://[not-ipv6]/", "https://exa mple.com/\x00"]


@pytest.mark.parametrize("link", BAD_LINKS)
def test_split_and_join_never_raise(link: str) -> None:
    assert split_url(link).scheme in ("", "http", "https")
    assert isinstance(join_url("https://forum.example/feed", link), str)


def test_a_feed_with_broken_links_still_yields_every_entry() -> None:
    items = "".join(
        f"<item><guid isPermaLink='false'>id-{n}</guid><title>Acme post {n}</title>"
        f"<link>{link.replace('&', '&amp;')}</link><description>acme is broken</description>"
        "<pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate></item>"
        for n, link in enumerate(BAD_LINKS + ["https://forum.example/t/ok"])
    )
    body = f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
    with FeedServer() as server:
        server.set_feed("/bad.rss", body.replace("\x00", ""), RSS)
        context = ConnectorContext(monitor="test", query="acme")
        result = RssConnector(RssOptions(url=server.feed_url("/bad.rss")), context).fetch(None)
    assert len(result.mentions) == len(BAD_LINKS) + 1
    assert result.mentions[-1].url == "https://forum.example/t/ok"
