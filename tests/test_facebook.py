"""The facebook connector against the fake Graph API (sandbox/meta.py)."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.base import ConnectorContext, ConnectorError
from earful.connectors.facebook import FacebookConnector, FacebookOptions
from earful.connectors.graph import (
    OVERLAP,
    SEEN_LIMIT,
    Watermark,
    first_line,
    permission_from,
    regain_access_seconds,
)
from earful.core import Mention, parse_time
from earful.sandbox.meta import (
    PAGE_ID,
    TOKEN,
    MetaGraphServer,
    demo_source,
    graph_error,
    rate_limited,
)
from earful.sandbox.server import Response

from .deploy import Deployment, acme_rules, write_deployment

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
T = int(NOW.timestamp())
PAGE = (PAGE_ID, "Acme CRM")
ANNA = ("5550001", "Anna Schmidt")
BEN = ("5550002", "Ben Ito")


@pytest.fixture
def graph() -> Iterator[MetaGraphServer]:
    with MetaGraphServer() as fake:
        yield fake  # type: ignore[misc]


def connector(graph: MetaGraphServer, now: datetime = NOW, monitor: str = "test", **options: Any) -> FacebookConnector:
    options.setdefault("page_token", TOKEN)
    return FacebookConnector(
        FacebookOptions(page_id=PAGE_ID, base_url=graph.url, **options),
        ConnectorContext(monitor=monitor, brand_accounts={"facebook": (PAGE_ID,)}, now=now),
    )


def ids(mentions: list[Mention]) -> list[str]:
    return [m.external_id for m in mentions]


def paths(graph: MetaGraphServer) -> list[str]:
    return [r.path.split("/", 2)[2] for r in graph.requests]


# -- options ---------------------------------------------------------------------------------------


def test_registry_and_options() -> None:
    assert load("facebook") is FacebookConnector
    options = FacebookOptions(page_id="123", page_token="secret-token-value", comment_window="7d", first_run_lookback="12h")
    assert options.comment_window == timedelta(days=7) and options.first_run_lookback == timedelta(hours=12)
    assert options.api_version == "v21.0" and "secret-token-value" not in repr(options)
    for bad in ({"page_id": "acme"}, {"page_id": "1", "api_version": "21"}, {"page_id": "1", "pageid": "2"}, {"page_id": "1", "page_size": 500}):
        with pytest.raises(ValidationError):
            FacebookOptions(page_token="x", **bad)


# -- graph helpers -------------------------------------------------------------------------------------


def test_watermark_forgets_old_ids_but_never_returns_anything_twice() -> None:
    mark = Watermark(1000)
    assert not mark.is_new("a", 999) and mark.is_new("a", 1000)
    for n in range(SEEN_LIMIT + 300):  # a flood inside the overlap
        mark.add(f"i{n}", 5000 + n // 10)
    mark.advance()
    assert len(mark.seen) == SEEN_LIMIT and mark.floor == min(mark.seen.values())
    assert not any(mark.is_new(f"i{n}", 5000 + n // 10) for n in range(SEEN_LIMIT + 300))
    quiet = Watermark(0, {"x": 10_000})
    quiet.advance()
    assert quiet.floor == 10_000 - OVERLAP and Watermark.load(quiet.dump(), 0) == quiet
    assert Watermark.load({"floor": "bad"}, 7) == Watermark(7)


def test_graph_helpers() -> None:
    assert parse_time("2021-08-10T18:45:03+0000") == datetime(2021, 8, 10, 18, 45, 3, tzinfo=timezone.utc)
    assert parse_time("2021-08-10T20:45:03+0200") == datetime(2021, 8, 10, 18, 45, 3, tzinfo=timezone.utc)
    assert parse_time(1625428258) == datetime(2021, 7, 4, 19, 50, 58, tzinfo=timezone.utc) and parse_time("soon") is None
    assert permission_from("(#10) This endpoint requires the 'pages_read_engagement' permission") == "pages_read_engagement"
    assert permission_from("(#200) Requires pages_messaging permission to manage the object") == "pages_messaging"
    assert permission_from("(#10) Permission denied") is None
    headers = {"x-business-use-case-usage": json.dumps({"1": [{"type": "pages", "estimated_time_to_regain_access": 5}],
                                                        "2": [{"type": "messenger", "estimated_time_to_regain_access": 30}]}),
               "x-app-usage": "not json"}
    assert regain_access_seconds(headers) == 1800 and regain_access_seconds({}) is None
    assert first_line("\n  Acme CRM 5.2 is out\nmore") == "Acme CRM 5.2 is out" and len(first_line("word " * 50)) <= 100


# -- first run, mapping -------------------------------------------------------------------------------


def test_first_run_reads_the_lookback_window_and_maps_posts_and_comments(graph: MetaGraphServer) -> None:
    old_visitor = graph.add_post("Acme was fine in April", author=ANNA, created=T - 3 * 86400)
    release = graph.add_post("Acme CRM 5.2 is out", created=T - 2 * 86400, link="https://acme.example/blog/5-2")
    graph.add_comment(release, "Old comment on the release", author=BEN, created=T - 2 * 86400 + 60)
    fresh = graph.add_comment(release, "How do I export to CSV in Acme?", author=ANNA, created=T - 3600)
    visitor = graph.add_post("Acme billing is broken, see https://status.acme.example", author=BEN, created=T - 600,
                             link="https://status.acme.example/incidents/42")

    result = connector(graph).fetch(None)

    assert ids(result.mentions) == [fresh, visitor]  # oldest first; nothing older than a day
    comment, post = result.mentions
    assert comment == Mention(
        source="facebook", external_id=fresh,
        url=f"https://www.facebook.com/{PAGE_ID}/posts/{release.split('_')[1]}/?comment_id={fresh.split('_')[1]}",
        author="Anna Schmidt", title="Acme CRM 5.2 is out", text="How do I export to CSV in Acme?",
        created_at=NOW - timedelta(hours=1), thread_id=release, parent_id=release, kind="comment",
        brand_replied=False, site="facebook.com",
    )
    assert post.kind == "post" and post.author == "Ben Ito" and not post.author_is_brand
    assert post.link_url == "https://status.acme.example/incidents/42"  # the l.facebook.com shim is unwrapped
    assert post.url == f"https://www.facebook.com/{PAGE_ID}/posts/{visitor.split('_')[1]}"
    assert post.raw["edge"] == "feed" and post.raw["from_id"] == BEN[0]
    assert old_visitor not in ids(result.mentions)
    feed = next(r for r in graph.requests if r.path.endswith("/feed"))
    assert feed.arg("since") == str(T - 14 * 86400)  # the comment window, to see every watched post's updated_time
    assert feed.arg("access_token") == TOKEN and "from{id,name}" in (feed.arg("fields") or "")
    comments = next(r for r in graph.requests if r.path.endswith("/comments"))
    assert (comments.arg("filter"), comments.arg("order")) == ("stream", "reverse_chronological")


def test_idle_poll_costs_one_request_per_edge(graph: MetaGraphServer) -> None:
    post = graph.add_post("Acme news", created=T - 300)
    graph.add_comment(post, "Nice", author=ANNA, created=T - 200)
    fb = connector(graph)
    first = fb.fetch(None)
    for messenger, expected in ((False, 4), (True, 5)):
        fb = connector(graph, messenger=messenger)
        before = len(graph.requests)
        idle = fb.fetch(first.cursor)
        assert idle.mentions == [] and idle.requests == expected == len(graph.requests) - before
        assert not any(p.endswith("/comments") for p in paths(graph)[before:])  # updated_time did not move
    assert sorted(idle.cursor) == ["messenger", "posts", "ratings", "tagged", "threads", "v"]


def test_new_items_across_three_ticks_are_found_exactly_once(graph: MetaGraphServer) -> None:
    post = graph.add_post("Acme CRM 5.2 is out", created=T - 500)
    expected = {graph.add_comment(post, "First!", author=ANNA, created=T - 400)}
    cursor = None
    seen: list[str] = []
    for tick in range(3):
        now = NOW + timedelta(minutes=10 * tick)
        t = int(now.timestamp())
        if tick == 1:
            comment = graph.add_comment(post, "Does anyone use Acme with Zapier?", author=BEN, created=t - 60)
            expected |= {comment, graph.add_comment(post, "Yes, via webhooks", parent=comment, created=t - 30)}
            expected.add(graph.add_post("Acme refund please", author=ANNA, created=t - 50))
            graph.add_rating("Acme support never responds", created=t - 40)
            expected.add(f"rating_{graph.ratings[-1].story_id}")
        if tick == 2:
            expected.add(graph.add_post("Love @Acme CRM", created=t - 20, edge="tagged", author=BEN))
            expected.add(graph.add_comment(post, "Second wave", author=ANNA, created=t - 10))
        result = connector(graph, now=now).fetch(cursor)
        seen += ids(result.mentions)
        cursor = json.loads(json.dumps(result.cursor))  # what the store keeps
    assert sorted(seen) == sorted(expected | {post}) and len(seen) == len(set(seen))


def test_a_comment_that_shows_up_late_with_an_older_timestamp_is_found_once(graph: MetaGraphServer) -> None:
    post = graph.add_post("Acme post", created=T - 900)
    graph.add_comment(post, "newest", author=ANNA, created=T - 60)
    fb = connector(graph)
    cursor = fb.fetch(None).cursor
    late = graph.add_comment(post, "delivered late, stamped earlier", author=BEN, created=T - 300)
    graph.posts[post].updated = T + 5  # Facebook moves updated_time when the comment becomes visible
    later = connector(graph, now=NOW + timedelta(minutes=1))
    second = later.fetch(cursor)
    assert ids(second.mentions) == [late]
    assert later.fetch(second.cursor).mentions == []


# -- paging ---------------------------------------------------------------------------------------------


def test_paging_back_after_downtime_reads_every_page_once(graph: MetaGraphServer) -> None:
    post = graph.add_post("Acme CRM 5.2", created=T - 7200)
    fb = connector(graph, page_size=50)
    cursor = fb.fetch(None).cursor
    comments = [graph.add_comment(post, f"Acme question {n}", author=ANNA, created=T - 3000 + n) for n in range(230)]
    visitors = [graph.add_post(f"Visitor post {n} about Acme", author=BEN, created=T - 2000 + n) for n in range(120)]
    before = len(graph.requests)
    result = connector(graph, now=NOW + timedelta(hours=1), page_size=50).fetch(cursor)
    assert sorted(ids(result.mentions)) == sorted(comments + visitors)
    sent = graph.requests[before:]
    comment_pages = [r for r in sent if r.path.endswith(f"{post}/comments")]
    assert len(comment_pages) == 5 and all(r.arg("after") for r in comment_pages[1:])
    assert len([r for r in sent if r.path.endswith("/feed")]) == 3
    assert all(r.arg("access_token") == TOKEN for r in sent)
    assert not result.notes


def test_reaching_max_pages_is_reported(graph: MetaGraphServer) -> None:
    post = graph.add_post("Acme", created=T - 7200)
    cursor = connector(graph).fetch(None).cursor
    for n in range(150):
        graph.add_comment(post, f"flood {n}", author=ANNA, created=T - 1000 + n)
    result = connector(graph, now=NOW + timedelta(minutes=5), page_size=50, max_pages=2).fetch(cursor)
    assert len(result.mentions) == 100
    assert any("stopped after 2 pages" in note for note in result.notes)


def test_paging_follows_the_query_of_next_not_its_host(graph: MetaGraphServer) -> None:
    """`paging.next` names graph.facebook.com and the token: only its parameters are reused, against base_url."""
    first_page = {"data": [{"id": f"{PAGE_ID}_1", "message": "Acme one", "created_time": "2024-05-01T11:50:00+0000",
                            "updated_time": "2024-05-01T11:50:00+0000", "from": {"id": BEN[0], "name": BEN[1]},
                            "comments": {"data": [], "summary": {"order": "ranked", "total_count": 0, "can_comment": True}}}],
                  "paging": {"cursors": {"before": "QVFIUmJ", "after": "QVFIUmZA"},
                             "next": f"https://graph.facebook.com/v21.0/{PAGE_ID}/feed?access_token=OTHER&limit=1&until=1714564200&__paging_token=enc_AdB"}}
    graph.fail_next(Response.json(first_page))
    result = connector(graph, visitor_posts=False, tagged=False, ratings=False).fetch(None)
    assert f"{PAGE_ID}_1" in ids(result.mentions)
    follow = graph.requests[1]
    assert follow.path == f"/v21.0/{PAGE_ID}/feed"
    assert follow.arg("access_token") == TOKEN and follow.arg("__paging_token") == "enc_AdB" and follow.arg("until") == "1714564200"


# -- answered or not ----------------------------------------------------------------------------------------


def test_answered_and_unanswered_threads(graph: MetaGraphServer) -> None:
    post = graph.add_post("Acme CRM 5.2 is out", created=T - 5000)
    answered = graph.add_comment(post, "How do I export contacts from Acme?", author=ANNA, created=T - 4000)
    page_reply = graph.add_comment(post, "Settings → Export", parent=answered, created=T - 3500)
    follow_up = graph.add_comment(post, "That menu is missing for me", author=ANNA, parent=answered, created=T - 3000)
    ignored = graph.add_comment(post, "Acme support never responds", author=BEN, created=T - 2000)
    visitor = graph.add_post("Is there a way to get an Acme refund?", author=BEN, created=T - 1500)
    page_answer = graph.add_comment(visitor, "We sent you a DM", created=T - 1000)

    fb = connector(graph)
    by_id = {m.external_id: m for m in fb.fetch(None).mentions}

    assert by_id[answered].brand_replied is True and by_id[answered].raw["reply_at"] == "2024-05-01T11:01:40+00:00"
    assert by_id[page_reply].author_is_brand and by_id[page_reply].kind == "reply" and by_id[page_reply].parent_id == answered
    assert by_id[page_reply].brand_replied is None
    assert by_id[follow_up].brand_replied is False  # the Page's reply came before it
    assert by_id[ignored].brand_replied is False
    assert by_id[visitor].brand_replied is True and by_id[page_answer].parent_id == visitor

    status = fb.replies(by_id[answered])
    assert status.answered is True and status.answered_by == "Acme CRM"
    assert status.answered_at == NOW - timedelta(seconds=3500) and status.url and "reply_comment_id" in status.url
    assert fb.replies(by_id[ignored]).answered is False
    assert fb.replies(by_id[follow_up]).answered is False
    assert fb.replies(by_id[visitor]).answered is True
    graph.add_comment(post, "Fixed in 5.2.1, sorry!", parent=ignored, created=T + 60)
    later = fb.replies(by_id[ignored])
    assert later.answered is True and later.answered_at == NOW + timedelta(seconds=60)
    graph.add_comment(post, "Try again now", parent=answered, created=T + 120)
    assert fb.replies(by_id[follow_up]).answered is True
    replies_request = graph.requests[-1]
    assert replies_request.path.endswith(f"{answered}/comments") and replies_request.arg("order") == "chronological"


def test_messenger_returns_waiting_conversations_only(graph: MetaGraphServer) -> None:
    graph.add_message(ANNA, "How do I add a user to Acme?", created=T - 900)
    graph.add_message(ANNA, "Settings → Team", created=T - 800, from_page=True)
    conversation, first = graph.add_message(BEN, "Acme invoice is wrong", created=T - 700)
    _, second = graph.add_message(BEN, "Hello? Does anyone read this?", created=T - 600)
    fb = connector(graph, messenger=True)
    result = fb.fetch(None)
    messages = [m for m in result.mentions if m.kind == "message"]
    assert ids(messages) == [first, second]
    assert messages[0].thread_id == conversation and messages[0].author == "Ben Ito"
    assert messages[0].url == f"https://www.facebook.com/{PAGE_ID}/inbox/{BEN[0]}/"
    assert fb.replies(messages[1]).answered is False
    graph.add_message(BEN, "Sorry! Fixed the invoice.", created=T - 100, from_page=True)
    status = fb.replies(messages[0])
    assert status.answered is True and status.answered_at == NOW - timedelta(seconds=100)
    assert connector(graph, messenger=True, now=NOW + timedelta(minutes=5)).fetch(result.cursor).mentions == []


def test_ratings_are_reviews(graph: MetaGraphServer) -> None:
    story = graph.add_rating("Acme lost our data", recommendation="negative", created=T - 100, rating=1)
    graph.add_rating("Great Acme support", recommendation="positive", created=T - 50)
    bad, good = connector(graph).fetch(None).mentions
    assert (bad.kind, bad.title, bad.text, bad.rating, bad.author) == ("review", "Does not recommend", "Acme lost our data", 1.0, "Dana Reviewer")
    assert bad.url == f"https://www.facebook.com/{story}" and good.title == "Recommends" and good.rating is None
    fb = connector(graph)
    assert fb.replies(bad).answered is False
    graph.add_comment(story, "We are sorry, Dana: our team will call you today.", created=T + 60)
    status = fb.replies(bad)
    assert status.answered is True and status.answered_at == NOW + timedelta(seconds=60) and status.answered_by == "Acme CRM"


# -- deleted, hidden, edited, non-Latin ----------------------------------------------------------------------


def test_deleted_hidden_and_edited_content(graph: MetaGraphServer) -> None:
    post = graph.add_post("Acme CRM 5.2", created=T - 3000)
    kept = graph.add_comment(post, "Acme sync broken", author=ANNA, created=T - 2000)
    spam = graph.add_comment(post, "BUY FOLLOWERS", author=BEN, created=T - 1900)
    gone = graph.add_comment(post, "oops wrong page", author=BEN, created=T - 1800)
    sticker = graph.add_comment(post, "", author=BEN, created=T - 1700, attachment={"type": "sticker", "url": "https://fb.example/s.png"})
    graph.hide_comment(spam)
    graph.delete(gone)
    fb = connector(graph)
    result = fb.fetch(None)
    assert ids(result.mentions) == [post, kept, sticker]
    assert result.mentions[2].text == "[sticker]"
    graph.edit_post(post, "Acme CRM 5.2 (edited: now with offline mode)", at=T + 30)
    second = connector(graph, now=NOW + timedelta(minutes=5)).fetch(result.cursor)
    assert second.mentions == []  # an edit moves updated_time: comments are re-read, nothing is returned twice
    graph.delete(post)
    assert fb.replies(result.mentions[1]).answered is None  # the comment is gone: unknown, never "answered"


def test_non_latin_text_survives(graph: MetaGraphServer) -> None:
    post = graph.add_post("アクメCRMの同期が壊れています 😞 返金できますか？", author=("5550003", "山田 太郎"), created=T - 60)
    graph.add_comment(post, "هل يمكن استرداد المبلغ من Acme؟", author=("5550004", "ليلى"), created=T - 30)
    first, second = connector(graph).fetch(None).mentions
    assert first.text == "アクメCRMの同期が壊れています 😞 返金できますか？" and first.author == "山田 太郎"
    assert second.text == "هل يمكن استرداد المبلغ من Acme؟" and second.author == "ليلى" and second.title.startswith("アクメCRM")


# -- failures -----------------------------------------------------------------------------------------------------


def test_rate_limit_waits_as_long_as_facebook_says_and_leaves_the_cursor(graph: MetaGraphServer) -> None:
    post = graph.add_post("Acme", created=T - 600, author=ANNA)
    fb = connector(graph)
    graph.fail_next(rate_limited(minutes=7))
    with pytest.raises(ConnectorError) as caught:
        fb.fetch(None)
    assert caught.value.retry_after == 420 and caught.value.status == 400
    assert "rate limited by Facebook (code 32)" in str(caught.value) and "facebook monitor 'test'" in str(caught.value)
    assert ids(fb.fetch(None).mentions) == [post]  # same (empty) cursor, nothing lost


@pytest.mark.parametrize(
    "error, retry_after, words",
    [
        (graph_error("(#4) Application request limit reached", 4, transient=True), 600, "rate limited by Facebook (code 4)"),
        (graph_error("(#17) User request limit reached", 17, 403), 600, "code 17"),
        (graph_error("(#613) Calls to this api have exceeded the rate limit.", 613), 600, "code 613"),
        (graph_error("(#80001) There have been too many calls to this Page account", 80001,
                     headers={"x-business-use-case-usage": json.dumps({PAGE_ID: [{"type": "pages", "call_count": 100,
                                                                                 "estimated_time_to_regain_access": 12}]})}), 720, "code 80001"),
        (graph_error("(#10) Permission denied", 10, 403), None, "lacks the `pages_read_engagement` permission (code 10)"),
        (graph_error("(#200) Requires pages_read_user_content permission to manage the object", 200, 403), None,
         "`pages_read_user_content`"),
        (graph_error("(#100) This endpoint requires the 'pages_read_engagement' permission or the 'Page Public Content Access' feature",
                     100), None, "`pages_read_engagement`"),
        (graph_error("Unsupported get request. Object with ID '1' does not exist", 100, subcode=33), None, "does not exist or this token"),
        (graph_error("An unexpected error has occurred. Please retry your request later.", 2, 500, transient=True), None, "temporary problem"),
        (graph_error("(#368) The action attempted has been deemed abusive", 368), None, "blocked"),
        (Response(502, "<html>Bad Gateway</html>", {"Content-Type": "text/html"}), None, "temporary problem (HTTP 502)"),
        (Response(200, b'{"data": [', {"Content-Type": "application/json"}), None, "not a JSON object"),
        (Response.json({"posts": []}), None, "without a `data` list"),
    ],
)
def test_graph_error_bodies(graph: MetaGraphServer, error: Response, retry_after: float | None, words: str) -> None:
    graph.fail_next(error)
    with pytest.raises(ConnectorError) as caught:
        connector(graph).fetch(None)
    assert words in str(caught.value) and "facebook monitor 'test'" in str(caught.value)
    assert caught.value.retry_after == retry_after
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("reason, subcode", [("expired", 463), ("password_changed", 460)])
def test_invalid_or_expired_token(graph: MetaGraphServer, reason: str, subcode: int) -> None:
    graph.expire_token(reason)
    with pytest.raises(ConnectorError) as caught:
        connector(graph).fetch(None)
    message = str(caught.value)
    assert "the Page token is invalid or expired (code 190): generate a new long-lived Page token" in message
    assert f"subcode {subcode}" in message and "fbtrace_id" in message and TOKEN not in message
    with pytest.raises(ConnectorError, match="code 190"):
        connector(graph, page_token="EAAwrong").fetch(None)


def test_missing_messenger_permission_is_named(graph: MetaGraphServer) -> None:
    graph.revoke_permission("pages_messaging")
    with pytest.raises(ConnectorError, match="lacks the `pages_messaging` permission"):
        connector(graph, messenger=True).fetch(None)
    assert connector(graph).fetch(None).cursor  # without messenger the monitor works


def test_timeout_names_the_endpoint_without_the_token() -> None:
    silent = socket.socket()  # accepts the connection, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        fb = FacebookConnector(FacebookOptions(page_id=PAGE_ID, page_token=TOKEN, base_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
                                               timeout=0.2), ConnectorContext(monitor="test"))
        with pytest.raises(ConnectorError) as caught:
            fb.fetch(None)
    finally:
        silent.close()
    assert "timed out after 0.2s" in str(caught.value) and f"/v21.0/{PAGE_ID}/feed" in str(caught.value)
    assert TOKEN not in str(caught.value) and "access_token=***" in str(caught.value)


def test_appsecret_proof(graph: MetaGraphServer) -> None:
    graph.app_secret = "s3cret"
    with pytest.raises(ConnectorError, match="appsecret_proof"):
        connector(graph).fetch(None)
    assert connector(graph, app_secret="s3cret").fetch(None).cursor["v"] == 1
    assert "s3cret" not in repr(FacebookOptions(page_id="1", page_token="t", app_secret="s3cret"))


def test_high_usage_is_noted(graph: MetaGraphServer) -> None:
    graph.fail_next(Response.json({"data": []}, headers={"x-app-usage": json.dumps({"call_count": 91, "total_cputime": 10, "total_time": 12})}))
    result = connector(graph).fetch(None)
    assert any("usage at 91%" in note for note in result.notes)


# -- demo and pipeline ------------------------------------------------------------------------------------------


def test_demo_source_has_answered_and_unanswered_threads() -> None:
    source = demo_source(time.time())
    assert source.monitor["connector"] == "facebook" and source.monitor["base_url"] == "{url}"
    var = source.monitor["page_token"].strip("${}")
    assert source.env == {var: TOKEN}
    with source.server:
        fb = FacebookConnector(FacebookOptions(**{**{k: v for k, v in source.monitor.items() if k not in ("connector", "schedule")},
                                                  "base_url": source.server.url, "page_token": TOKEN}),
                               ConnectorContext(monitor="demo", brand_accounts={"facebook": (PAGE_ID,)}))
        mentions = fb.fetch(None).mentions
    customer = [m for m in mentions if not m.author_is_brand and m.kind in ("comment", "post")]
    assert {m.brand_replied for m in customer} >= {True, False}
    assert {m.kind for m in mentions} >= {"post", "comment", "reply", "review", "message"}


def deployment(tmp_path: Path, monitors: dict[str, str]) -> Deployment:
    """One facebook monitor per (name, Graph URL), all reading the same Page."""
    return write_deployment(tmp_path, {
        name: {"connector": "facebook", "page_id": PAGE_ID, "page_token": "${EARFUL_TEST_FB_TOKEN}", "base_url": url}
        for name, url in monitors.items()
    }, acme_rules({"facebook": [PAGE_ID]}, complaint='broken OR refund OR "never respond*"', severity=None),
        env={"EARFUL_TEST_FB_TOKEN": TOKEN})


def test_pipeline_three_ticks_alert_each_match_once(graph: MetaGraphServer, tmp_path: Path) -> None:
    deployed = deployment(tmp_path, {"fb": graph.url})
    now = int(time.time())
    post = graph.add_post("Acme CRM 5.2 is out", created=now - 600)
    wanted = {graph.add_comment(post, "How do I export from Acme?", author=ANNA, created=now - 500)}
    graph.add_comment(post, "Nice release", author=BEN, created=now - 400)
    deployed.tick()
    wanted.add(graph.add_comment(post, "Acme export is broken again", author=BEN, created=int(time.time())))
    graph.add_comment(post, "Lunch?", author=ANNA, created=int(time.time()))
    deployed.tick()
    wanted.add(graph.add_post("Does anyone know if Acme has a refund policy?", author=ANNA, created=int(time.time())))
    report = deployed.tick()
    assert all(outcome.ok for outcome in report.monitors)
    assert sorted(deployed.alerted()) == sorted(f"facebook:{i}" for i in wanted)


def test_a_revoked_token_fails_only_that_monitor(graph: MetaGraphServer, tmp_path: Path) -> None:
    with MetaGraphServer() as healthy:
        deployed = deployment(tmp_path, {"broken": graph.url, "fine": healthy.url})
        healthy.add_post("Acme refund please", author=ANNA, created=int(time.time()) - 60)  # type: ignore[attr-defined]
        graph.expire_token()
        report = deployed.tick()
    outcomes = {o.name: o for o in report.monitors}
    assert outcomes["fine"].ok and outcomes["fine"].alerts == 1
    assert not outcomes["broken"].ok
    assert outcomes["broken"].error.startswith("monitor 'broken' (facebook): facebook monitor 'broken'")
    assert "the Page token is invalid or expired (code 190)" in outcomes["broken"].error and TOKEN not in outcomes["broken"].error
    assert deployed.cursor("broken") is None  # untouched


def test_verify_reads_one_item_per_edge_and_classifies_credentials(graph: MetaGraphServer) -> None:
    fb = connector(graph, messenger=True)
    fb.verify()
    assert [(r.path.rsplit("/", 1)[-1], r.arg("limit")) for r in graph.requests] == [
        ("feed", "1"), ("visitor_posts", "1"), ("tagged", "1"), ("ratings", "1"), ("conversations", "1")]
    graph.revoke_permission("pages_messaging")
    with pytest.raises(ConnectorError) as caught:
        fb.verify()
    assert caught.value.status == 403 and "`pages_messaging`" in str(caught.value)
    graph.expire_token()
    with pytest.raises(ConnectorError) as caught:
        fb.verify()
    assert caught.value.status == 401 and TOKEN not in str(caught.value)
