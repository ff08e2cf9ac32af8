"""The rss connector against a local feed server speaking real HTTP caching."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timezone
from email.utils import formatdate
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.base import ConnectorContext, ConnectorError
from earful.connectors.rss import RssConnector, RssOptions
from earful.sandbox.feeds import ATOM, RSS, FeedServer
from earful.sandbox.server import Response

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
CTX = ConnectorContext(monitor="test", query="acme", brand_accounts={"rss": ("Acme CRM",)})


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as fake:
        yield fake  # type: ignore[misc]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def connector(**options: Any) -> RssConnector:
    return RssConnector(RssOptions(**options), CTX)


def serve(server: FeedServer, name: str, content_type: str = ATOM) -> str:
    server.set_feed("/" + name, fixture(name), content_type)
    return server.feed_url("/" + name)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# -- feed shapes ------------------------------------------------------------------


def test_registry_finds_the_connector() -> None:
    assert load("rss") is RssConnector


def test_google_alerts_unwraps_redirect_and_drops_highlighting(server: FeedServer) -> None:
    result = connector(url=serve(server, "google_alerts_acme.atom")).fetch(None)
    first, second = result.mentions
    assert first.url == "https://www.example-saas-blog.com/2024/04/leaving-acme-crm/"
    assert first.site == "example-saas-blog.com"
    assert first.title == "Why we moved our sales team off Acme CRM after five years"
    assert first.text == "After five years on Acme CRM the support queue never answered our export questions, so we're moving on ..."
    assert first.author == "" and first.kind == "post" and first.source == "rss"
    assert first.created_at == utc(2024, 4, 30, 9, 12, 44)
    assert first.raw["id"] == "tag:google.com,2013:googlealerts/feed:4417283390012278811"
    assert second.url == "https://news.example.org/tech/acme-spring-release"
    assert result.requests == 1 and not result.not_modified


def test_reddit_drops_footer_and_user_prefix(server: FeedServer) -> None:
    self_post, link_post = connector(url=serve(server, "reddit_r_crm.atom")).fetch(None).mentions
    assert self_post.author == "quota_crusher"
    assert self_post.site == "r/CRM"
    assert self_post.title == "Acme CRM Gmail sync broken?"
    assert self_post.text == (
        "Has anyone got the Acme CRM Gmail sync working again since Tuesday?\n\n"
        "Support hasn't replied to my ticket in 3 days. Things I tried:\n\n"
        "- re-authorising the add-on\n- clearing the cache"
    )
    assert self_post.url == "https://www.reddit.com/r/CRM/comments/1cgx7qa/acme_crm_gmail_sync_broken/"
    assert self_post.raw["id"] == "t3_1cgx7qa" and self_post.kind == "post"
    assert "submitted by" not in link_post.text and "[comments]" not in link_post.text
    assert link_post.author == "smb_ops_guy"


def test_reddit_comment_feed_entries_are_comments(server: FeedServer) -> None:
    (comment,) = connector(url=serve(server, "reddit_comments.atom")).fetch(None).mentions
    assert comment.kind == "comment"
    assert comment.author == "pipeline_pam"
    assert comment.text == "Same here. Acme status page says everything is green though."
    assert comment.created_at == utc(2024, 4, 30, 9, 58, 31)


def test_stack_exchange_question(server: FeedServer) -> None:
    (question,) = connector(url=serve(server, "stackexchange_acme.atom")).fetch(None).mentions
    assert question.title == "Acme CRM REST API returns 401 after token refresh"
    assert question.author == "Dana K."
    assert 'HTTP 401 {"error": "invalid_token"}' in question.text
    assert question.text.endswith("What am I missing?")
    assert question.raw["tags"] == ["acme-crm", "oauth-2.0", "python-requests"]
    assert question.site == "stackoverflow.com"


def test_mastodon_tag_feed_without_title(server: FeedServer) -> None:
    (toot,) = connector(url=serve(server, "mastodon_tag_acme.rss", RSS)).fetch(None).mentions
    assert toot.title == ""
    assert toot.text == "Third day without an answer from #AcmeCRM support. Is anyone there? Details: https://blog.rosa.example/acme-crm-export-bug"
    assert toot.author == "rosa"
    assert toot.site == "fosstodon.example"
    assert toot.created_at == utc(2024, 4, 30, 8, 20, 11)
    assert toot.raw["tags"] == ["acmecrm", "support"]


def test_youtube_feed_with_newline_before_xml_declaration(server: FeedServer) -> None:
    assert fixture("youtube_acme.atom").startswith(b"\n<?xml")
    (video,) = connector(url=serve(server, "youtube_acme.atom")).fetch(None).mentions
    assert video.title == "Acme CRM in 5 minutes: pipelines and lead scoring"
    assert video.text == "A quick tour of Acme CRM.\nChapters:\n0:00 Pipelines\n2:30 Lead scoring"
    assert video.url == "http://www.youtube.com/watch?v=AcmeVid0001"
    assert video.site == "youtube.com"
    assert video.author == "Acme CRM" and video.author_is_brand
    assert video.created_at == utc(2024, 4, 26, 15, 0)


def test_github_release_atom(server: FeedServer) -> None:
    (release,) = connector(url=serve(server, "github_releases_acme.atom")).fetch(None).mentions
    assert release.title == "v2.4.0"
    assert release.text == "What's Changed\n\n- Retry on HTTP 429 from the Acme API by @lena-dev"
    assert release.language == "en-US"
    assert release.created_at == utc(2024, 4, 25, 12, 41, 7)
    assert release.raw["id"] == "tag:github.com,2008:Repository/512345678/v2.4.0"


def test_rss_1_rdf(server: FeedServer) -> None:
    (topic,) = connector(url=serve(server, "rdf_acme.rdf", "application/rdf+xml")).fetch(None).mentions
    assert topic.title == "Invoice PDF shows £0.00 total (Acme CRM 3.2)"
    assert topic.author == "mike_h"
    assert topic.language == "en-gb"
    assert topic.created_at == utc(2024, 4, 28, 17, 22, 5)
    assert topic.url == "https://forum.example.net/acme/t/4411"


def test_plain_rss_2(server: FeedServer) -> None:
    article, other = connector(url=serve(server, "rss2_acme.rss", RSS)).fetch(None).mentions
    assert article.title == "Acme raises prices for its CRM starter plan"
    assert article.text == "Acme will charge $29 per seat from June.\n\nExisting customers keep their price for a year."
    assert article.author == "Priya Natarajan"
    assert article.language == "en-US"
    assert article.site == "example-techdaily.com"
    assert article.raw["id"] == "techdaily-88213"
    # no <guid>: the link is the identity
    assert other.raw["id"] == "https://www.example-techdaily.com/2024/04/29/globex-berlin/"


def test_entry_without_id_or_link_gets_a_stable_content_identity(server: FeedServer) -> None:
    body = "<rss version='2.0'><channel><title>t</title><item><title>Acme down?</title><description>login fails</description></item></channel></rss>"
    server.set_feed("/bare.rss", body, RSS)
    first = connector(url=server.feed_url("/bare.rss")).fetch(None).mentions[0]
    again = connector(url=server.feed_url("/bare.rss")).fetch(None).mentions[0]
    assert first.raw["id"].startswith("sha256:")
    assert first.external_id == again.external_id


def test_bozo_feed_with_entries_is_accepted(server: FeedServer) -> None:
    body = "<rss version='2.0'><channel><title>A & B</title><item><guid>x1</guid><title>Acme & friends</title></item></channel></rss>"
    server.set_feed("/sloppy.rss", body, RSS)
    (mention,) = connector(url=server.feed_url("/sloppy.rss")).fetch(None).mentions
    assert mention.title == "Acme & friends"


# -- identity, cursor, conditional GET -------------------------------------------------


def test_same_article_in_two_feeds_gets_two_ids_one_url(server: FeedServer) -> None:
    server.set_feed("/a.rss", fixture("rss2_acme.rss"), RSS)
    server.set_feed("/b.rss", fixture("rss2_acme.rss"), RSS)
    result = connector(urls=[server.feed_url("/a.rss"), server.feed_url("/b.rss")]).fetch(None)
    from_a, from_b = result.mentions[0], result.mentions[2]
    assert from_a.url == from_b.url
    assert from_a.external_id != from_b.external_id
    assert result.requests == 2


def test_external_id_is_stable_across_runs(server: FeedServer) -> None:
    url = serve(server, "reddit_r_crm.atom")
    first = [m.external_id for m in connector(url=url).fetch(None).mentions]
    second = [m.external_id for m in connector(url=url).fetch(None).mentions]
    assert first == second and len(set(first)) == 2


def test_304_costs_no_parsing_and_keeps_the_cursor(server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import feedparser

    from earful.connectors import feedfast

    calls: list[Any] = []
    for module in (feedparser, feedfast):  # whichever reads the feed: neither may run on a 304
        real_parse = module.parse
        monkeypatch.setattr(module, "parse", lambda *a, _real=real_parse, **k: calls.append(a) or _real(*a, **k))
    url = serve(server, "google_alerts_acme.atom")
    rss = connector(url=url)
    first = rss.fetch(None)
    assert len(first.mentions) == 2 and len(calls) == 1
    state = first.cursor["feeds"][url]
    assert state["etag"].startswith('"') and state["last_modified"]

    second = rss.fetch(first.cursor)
    assert second.not_modified and second.mentions == [] and second.requests == 1
    assert second.cursor == first.cursor
    assert len(calls) == 1, "no parser may run on a 304"
    sent = server.requests[-1].headers
    assert sent["if-none-match"] == state["etag"]
    assert sent["if-modified-since"] == state["last_modified"]


def test_if_modified_since_alone_also_gets_304(server: FeedServer) -> None:
    url = serve(server, "rss2_acme.rss", RSS)
    rss = connector(url=url)
    cursor = rss.fetch(None).cursor
    del cursor["feeds"][url]["etag"]
    assert rss.fetch(cursor).not_modified
    assert "if-none-match" not in server.requests[-1].headers


def test_new_entry_is_the_only_mention(server: FeedServer) -> None:
    url = serve(server, "rss2_acme.rss", RSS)
    rss = connector(url=url)
    cursor = rss.fetch(None).cursor
    new_item = (
        "<item><title>Acme outage in EU region</title><link>https://www.example-techdaily.com/2024/05/01/acme-outage/</link>"
        "<guid isPermaLink='false'>techdaily-88377</guid><pubDate>Wed, 01 May 2024 07:10:00 GMT</pubDate></item>"
    )
    server.set_feed("/rss2_acme.rss", fixture("rss2_acme.rss").replace(b"<item>", new_item.encode() + b"<item>", 1), RSS)
    result = rss.fetch(cursor)
    assert [m.title for m in result.mentions] == ["Acme outage in EU region"]
    assert not result.not_modified
    assert result.cursor["feeds"][url]["etag"] != cursor["feeds"][url]["etag"]
    # unchanged again: 304
    assert rss.fetch(result.cursor).not_modified


def test_seen_ids_are_bounded_but_keep_current_entries(server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("earful.connectors.rss.SEEN_PER_FEED", 3)
    url = serve(server, "rss2_acme.rss", RSS)
    rss = connector(url=url)
    cursor = rss.fetch(None).cursor
    for n in range(3):
        item = f"<item><guid>extra-{n}</guid><title>Acme news {n}</title></item>"
        server.set_feed("/rss2_acme.rss", fixture("rss2_acme.rss").replace(b"<item>", item.encode() + b"<item>", 1), RSS)
        result = rss.fetch(cursor)
        assert [m.title for m in result.mentions] == [f"Acme news {n}"]
        cursor = result.cursor
    assert len(cursor["feeds"][url]["seen"]) == 3


def test_base_url_redirects_the_request_but_not_the_identity(server: FeedServer) -> None:
    server.set_feed("/r/CRM/search.rss", fixture("reddit_r_crm.atom"))
    real = "https://www.reddit.com/r/CRM/search.rss?q=acme&restrict_sr=1"
    redirected = connector(url=real, base_url=server.url + "/").fetch(None)
    request = server.requests[-1]
    assert request.path == "/r/CRM/search.rss" and request.arg("q") == "acme"
    assert list(redirected.cursor["feeds"]) == [real]
    assert redirected.mentions[0].raw["feed"] == real


# -- failures ---------------------------------------------------------------------------


def test_html_page_instead_of_feed_names_the_url(server: FeedServer) -> None:
    server.set_page("/feed.xml", "<!doctype html><html><head><title>We moved!</title></head><body><p>Our blog is now at /news</p></body></html>")
    url = server.feed_url("/feed.xml")
    with pytest.raises(ConnectorError) as caught:
        connector(url=url).fetch(None)
    message = str(caught.value)
    assert url in message and "not an RSS/Atom feed" in message and "text/html" in message
    assert "'test'" in message  # the monitor


def test_server_error(server: FeedServer) -> None:
    url = serve(server, "rss2_acme.rss", RSS)
    server.fail_next(Response(500, "<h1>Internal Server Error</h1>", {"Content-Type": "text/html"}))
    with pytest.raises(ConnectorError) as caught:
        connector(url=url).fetch(None)
    assert caught.value.status == 500 and url in str(caught.value) and "500" in str(caught.value)
    assert caught.value.retry_after is None


def test_rate_limit_with_retry_after_seconds(server: FeedServer) -> None:
    url = serve(server, "rss2_acme.rss", RSS)
    server.fail_next(Response(429, "Too Many Requests", {"Retry-After": "120"}))
    with pytest.raises(ConnectorError) as caught:
        connector(url=url).fetch(None)
    assert caught.value.status == 429 and caught.value.retry_after == 120


def test_rate_limit_with_retry_after_date(server: FeedServer) -> None:
    url = serve(server, "rss2_acme.rss", RSS)
    server.fail_next(Response(503, "busy", {"Retry-After": formatdate(time.time() + 300, usegmt=True)}))
    with pytest.raises(ConnectorError) as caught:
        connector(url=url).fetch(None)
    assert caught.value.status == 503 and 290 <= (caught.value.retry_after or 0) <= 300


def test_not_found_hints_at_a_moved_feed(server: FeedServer) -> None:
    with pytest.raises(ConnectorError, match=r"HTTP 404.*moved"):
        connector(url=server.feed_url("/gone.rss")).fetch(None)


def test_timeout(server: FeedServer) -> None:
    url = serve(server, "rss2_acme.rss", RSS)
    slow = server.hold_next()
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="timed out after 0.2s") as caught:
        connector(url=url, timeout=0.2).fetch(None)
    assert time.monotonic() - started < 0.9
    assert url in str(caught.value)
    slow.release()


def test_connection_refused_names_the_url_without_secrets() -> None:
    with FeedServer() as gone:
        url = gone.feed_url("/private.atom?token=s3cr3t&tag=acme")
    with pytest.raises(ConnectorError) as caught:
        connector(url=url, timeout=2).fetch(None)
    message = str(caught.value)
    assert "s3cr3t" not in message
    assert "/private.atom?token=***&tag=acme" in message and "could not connect" in message


def test_one_broken_feed_does_not_hide_the_others(server: FeedServer) -> None:
    good = serve(server, "rss2_acme.rss", RSS)
    server.set_page("/broken.xml", "<html><body>login</body></html>")
    result = connector(urls=[server.feed_url("/broken.xml"), good]).fetch(None)
    assert len(result.mentions) == 2
    assert len(result.notes) == 1 and "broken.xml" in result.notes[0]
    assert list(result.cursor["feeds"]) == [good]


def test_all_feeds_broken_fails_the_run(server: FeedServer) -> None:
    with pytest.raises(ConnectorError):
        connector(urls=[server.feed_url("/a.xml"), server.feed_url("/b.xml")]).fetch(None)


# -- options and imports ---------------------------------------------------------------


def test_options_need_a_feed_and_reject_typos() -> None:
    with pytest.raises(ValidationError, match="give `url`"):
        RssOptions()
    with pytest.raises(ValidationError, match="not an http"):
        RssOptions(url="ftp://example.com/feed")
    with pytest.raises(ValidationError):
        RssOptions(url="https://example.com/feed", ulrs=["x"])
    assert RssOptions(url="https://a.example/f", urls=["https://b.example/f", "https://a.example/f"]).feeds == [
        "https://a.example/f",
        "https://b.example/f",
    ]


def test_replies_are_unknown() -> None:
    assert connector(url="https://example.com/f").replies(object()).answered is None  # type: ignore[arg-type]


def test_importing_the_module_does_not_import_requests_or_feedparser() -> None:
    code = "import sys, earful.connectors.rss; print(sorted({'requests', 'feedparser'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- shared HTTP/HTML helpers (connectors/http.py) -------------------------------------


def test_redact_url_masks_secrets_and_credentials() -> None:
    from earful.connectors.http import redact_url

    assert redact_url("https://bob:pw@feeds.example.com:8443/f.atom?token=abc&q=acme") == (
        "https://feeds.example.com:8443/f.atom?token=***&q=acme"
    )
    assert redact_url("http://[broken?api_key=1") == "http://[broken"


def test_parse_retry_after() -> None:
    from earful.core import parse_retry_after

    now = utc(2024, 5, 1, 12, 0)
    assert parse_retry_after("7", now) == 7
    assert parse_retry_after("Wed, 01 May 2024 12:01:30 GMT", now) == 90
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None) is None


def test_invalid_base_url_is_reported_as_configuration(server: FeedServer) -> None:
    with pytest.raises(ConnectorError, match="not a valid http"):
        connector(url="https://example.com/feed.xml", base_url="127.0.0.1:9").fetch(None)
