"""The instagram connector against the fake Graph API (sandbox/meta.py)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.base import ConnectorContext, ConnectorError
from earful.connectors.instagram import InstagramConnector, InstagramOptions
from earful.core import Mention
from earful.sandbox.meta import (
    IG_USER_ID,
    IG_USERNAME,
    TOKEN,
    MetaGraphServer,
    graph_error,
    instagram_demo_source,
    rate_limited,
)
from earful.sandbox.server import Response

from .deploy import acme_rules, write_deployment

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
T = int(NOW.timestamp())


@pytest.fixture
def graph() -> Iterator[MetaGraphServer]:
    with MetaGraphServer() as fake:
        yield fake  # type: ignore[misc]


def connector(graph: MetaGraphServer, now: datetime = NOW, brands: tuple[str, ...] = (), **options: Any) -> InstagramConnector:
    options.setdefault("page_token", TOKEN)
    return InstagramConnector(
        InstagramOptions(ig_user_id=IG_USER_ID, base_url=graph.url, **options),
        ConnectorContext(monitor="test", brand_accounts={"instagram": brands} if brands else {}, now=now),
    )


def ids(mentions: list[Mention]) -> list[str]:
    return [m.external_id for m in mentions]


def test_registry_and_options() -> None:
    assert load("instagram") is InstagramConnector
    options = InstagramOptions(ig_user_id="1784", page_token="tok-en", comment_window="3d")
    assert options.comment_window == timedelta(days=3) and "tok-en" not in repr(options)
    with pytest.raises(ValidationError):
        InstagramOptions(ig_user_id="acmecrm", page_token="x")
    with pytest.raises(ValidationError):
        InstagramOptions(ig_user_id="1", page_token="x", mentions=True)


def test_first_run_maps_media_comments_and_replies(graph: MetaGraphServer) -> None:
    old = graph.add_media("Last month's launch", created=T - 20 * 86400)
    graph.add_ig_comment(old, "old comment", username="someone", created=T - 19 * 86400)
    media = graph.add_media("Meet Acme CRM 5.2 ✨\nOffline mode is here", created=T - 3600)
    question = graph.add_ig_comment(media, "@acmecrm how do I turn on dark mode in Acme?", username="nora.designs", created=T - 1800)
    answer = graph.add_ig_comment(media, "@nora.designs Settings → Appearance", username=IG_USERNAME, created=T - 1700, parent=question)

    ig = connector(graph)
    result = ig.fetch(None)

    assert ids(result.mentions) == [media, question, answer]
    post, comment, reply = result.mentions
    assert post.author == IG_USERNAME and post.author_is_brand and post.kind == "post" and post.brand_replied is None
    permalink = post.url
    assert permalink.startswith("https://www.instagram.com/p/") and post.text == "Meet Acme CRM 5.2 ✨\nOffline mode is here"
    assert comment == Mention(
        source="instagram", external_id=question, url=f"{permalink}c/{question}/", author="nora.designs",
        title="Meet Acme CRM 5.2 ✨", text="@acmecrm how do I turn on dark mode in Acme?", created_at=NOW - timedelta(minutes=30),
        thread_id=media, parent_id=media, kind="comment", brand_replied=True, site="instagram.com",
    )
    assert comment.raw["reply_at"] == "2024-05-01T11:31:40+00:00" and comment.raw["reply_by"] == IG_USERNAME
    assert reply.kind == "reply" and reply.parent_id == question and reply.author_is_brand
    assert reply.url == f"{permalink}c/{question}/r/{answer}/"
    assert result.cursor["username"] == IG_USERNAME
    sent = [r.path for r in graph.requests]
    assert sent[0] == f"/v21.0/{IG_USER_ID}" and f"/v21.0/{old}/comments" not in sent  # out of the window: not even read


def test_idle_poll_is_two_requests_and_the_username_is_looked_up_once(graph: MetaGraphServer) -> None:
    media = graph.add_media("Acme", created=T - 600)
    graph.add_ig_comment(media, "nice", username="fan", created=T - 300)
    first = connector(graph).fetch(None)
    before = len(graph.requests)
    idle = connector(graph).fetch(first.cursor)
    assert idle.mentions == [] and idle.requests == 2 == len(graph.requests) - before
    assert [r.path.rsplit("/", 1)[-1] for r in graph.requests[before:]] == ["media", "tags"]
    assert connector(graph, username="acmecrm", tags=False).fetch(first.cursor).requests == 1


def test_new_items_across_three_ticks_are_found_exactly_once(graph: MetaGraphServer) -> None:
    media = graph.add_media("Acme CRM 5.2", created=T - 900)
    expected = {media, graph.add_ig_comment(media, "first", username="a1", created=T - 800)}
    old_thread = next(iter(expected - {media}))
    cursor = None
    seen: list[str] = []
    for tick in range(3):
        now = NOW + timedelta(minutes=10 * tick)
        t = int(now.timestamp())
        if tick == 1:
            expected.add(graph.add_ig_comment(media, "does anyone know the Acme API limits?", username="b2", created=t - 60))
            expected.add(graph.add_ig_comment(media, "me too", username="c3", created=t - 50, parent=old_thread))  # new reply, old thread
            expected.add(graph.add_media("@acmecrm is our new CRM", owner="tagged", username="salesops", created=t - 40))
        if tick == 2:
            new_media = graph.add_media("Acme roadmap", created=t - 30)
            expected |= {new_media, graph.add_ig_comment(new_media, "Acme refund?", username="d4", created=t - 20)}
        result = connector(graph, now=now).fetch(cursor)
        seen += ids(result.mentions)
        cursor = json.loads(json.dumps(result.cursor))
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))


def test_paging_back_after_downtime_with_long_reply_threads(graph: MetaGraphServer) -> None:
    media = graph.add_media("Acme", created=T - 7200)
    cursor = connector(graph).fetch(None).cursor
    comments = [graph.add_ig_comment(media, f"Acme question {n}", username=f"user{n}", created=T - 3000 + n) for n in range(130)]
    replies = [graph.add_ig_comment(media, f"+1 #{n}", username=f"fan{n}", created=T - 1000 + n, parent=comments[0]) for n in range(30)]
    before = len(graph.requests)
    result = connector(graph, now=NOW + timedelta(hours=1), page_size=50).fetch(cursor)
    assert sorted(ids(result.mentions)) == sorted(comments + replies)
    sent = graph.requests[before:]
    assert len([r for r in sent if r.path.endswith(f"{media}/comments")]) == 3
    assert len([r for r in sent if r.path.endswith(f"{comments[0]}/replies")]) == 1  # 30 replies: more than the nested page


def test_answered_and_unanswered_threads(graph: MetaGraphServer) -> None:
    media = graph.add_media("Acme CRM 5.2", created=T - 5000)
    asked = graph.add_ig_comment(media, "How do I export from Acme?", username="ann", created=T - 4000)
    graph.add_ig_comment(media, "@ann Settings → Export", username="AcmeCRM", created=T - 3500, parent=asked)
    follow_up = graph.add_ig_comment(media, "@acmecrm not there for me", username="ann", created=T - 3000, parent=asked)
    ignored = graph.add_ig_comment(media, "Acme app is broken since the update", username="ben", created=T - 2000)
    ig = connector(graph, brands=("acme_help",))
    by_id = {m.external_id: m for m in ig.fetch(None).mentions}
    assert by_id[asked].brand_replied is True and by_id[follow_up].brand_replied is False and by_id[ignored].brand_replied is False
    status = ig.replies(by_id[asked])
    assert status.answered is True and status.answered_by == "AcmeCRM" and status.answered_at == NOW - timedelta(seconds=3500)
    assert ig.replies(by_id[ignored]).answered is False
    assert ig.replies(by_id[follow_up]).answered is False
    graph.add_ig_comment(media, "@ben fixed in 5.2.1", username="acme_help", created=T + 60, parent=ignored)  # another brand account
    later = ig.replies(by_id[ignored])
    assert later.answered is True and later.answered_by == "acme_help"
    graph.add_ig_comment(media, "@ann try the web app", username=IG_USERNAME, created=T + 90, parent=asked)
    assert ig.replies(by_id[follow_up]).answered is True


def test_tagged_media_replies_and_unknowns(graph: MetaGraphServer) -> None:
    tagged = graph.add_media("Switched to @acmecrm, does anyone know how to import deals?", owner="tagged", username="salesops", created=T - 100)
    ig = connector(graph)
    (mention,) = ig.fetch(None).mentions
    assert mention.external_id == tagged and mention.author == "salesops" and not mention.author_is_brand and mention.brand_replied is None
    assert ig.replies(mention).answered is False
    graph.add_ig_comment(tagged, "@salesops DM us, we'll help!", username=IG_USERNAME, created=T - 10)
    assert ig.replies(mention).answered is True
    graph.delete(tagged)
    assert ig.replies(mention).answered is None


def test_hidden_deleted_and_non_latin(graph: MetaGraphServer) -> None:
    media = graph.add_media("アクメCRM 5.2 🎉", created=T - 3000)
    hidden = graph.add_ig_comment(media, "spam spam", username="bot123", created=T - 2000)
    gone = graph.add_ig_comment(media, "oops", username="ann", created=T - 1900)
    kept = graph.add_ig_comment(media, "Почему Acme не синхронизирует контакты?", username="иван", created=T - 1800)
    graph.hide_comment(hidden)
    graph.delete(gone)
    ig = connector(graph)
    result = ig.fetch(None)
    assert ids(result.mentions) == [media, kept]
    assert result.mentions[1].text == "Почему Acme не синхронизирует контакты?" and result.mentions[1].title == "アクメCRM 5.2 🎉"
    assert result.mentions[1].author == "иван"
    # A deletion and a new comment leave comments_count as it was: found by the periodic re-read.
    graph.delete(kept)
    newer = graph.add_ig_comment(media, "返金できますか？", username="taro", created=T + 30)
    second = connector(graph, now=NOW + timedelta(minutes=5)).fetch(result.cursor)
    assert second.mentions == [] and second.requests == 2
    third = connector(graph, now=NOW + timedelta(hours=6)).fetch(second.cursor)
    assert ids(third.mentions) == [newer] and third.mentions[0].text == "返金できますか？"
    graph.delete(media)
    assert ig.replies(result.mentions[1]).answered is None


def test_rate_limit_and_cursor_untouched(graph: MetaGraphServer) -> None:
    media = graph.add_media("Acme", created=T - 60)
    ig = connector(graph, username=IG_USERNAME)
    graph.fail_next(rate_limited(minutes=3, code=4))
    with pytest.raises(ConnectorError) as caught:
        ig.fetch(None)
    assert caught.value.retry_after == 180 and "instagram monitor 'test'" in str(caught.value)
    graph.fail_next(graph_error("(#4) Application request limit reached", 4, transient=True))
    with pytest.raises(ConnectorError) as caught:
        ig.fetch(None)
    assert caught.value.retry_after == 600
    assert ids(ig.fetch(None).mentions) == [media]


def test_invalid_token_permission_and_malformed_bodies(graph: MetaGraphServer) -> None:
    graph.expire_token()
    with pytest.raises(ConnectorError) as caught:
        connector(graph).fetch(None)
    assert "the access token is invalid or expired (code 190): generate a new long-lived Page token" in str(caught.value)
    assert "linked to the Instagram account" in str(caught.value) and TOKEN not in str(caught.value)
    graph.token_state = "valid"
    graph.revoke_permission("instagram_manage_comments")
    with pytest.raises(ConnectorError, match="lacks the `instagram_manage_comments` permission"):
        connector(graph, username=IG_USERNAME).fetch(None)
    graph.permissions.add("instagram_manage_comments")
    graph.fail_next(Response(200, b"<html>login</html>", {"Content-Type": "text/html"}))
    with pytest.raises(ConnectorError, match="not a JSON object"):
        connector(graph, username=IG_USERNAME).fetch(None)
    graph.fail_next(Response.json({"id": IG_USER_ID}))
    with pytest.raises(ConnectorError, match="has no username"):
        connector(graph).fetch(None)


def test_demo_source() -> None:
    source = instagram_demo_source(time.time())
    assert source.monitor["connector"] == "instagram" and source.monitor["base_url"] == "{url}"
    assert list(source.env.values()) == [TOKEN]
    with source.server:
        ig = InstagramConnector(InstagramOptions(ig_user_id=IG_USER_ID, page_token=TOKEN, base_url=source.server.url),
                                ConnectorContext(monitor="demo", brand_accounts={"instagram": ("acmecrm",)}))
        mentions = ig.fetch(None).mentions
    comments = [m for m in mentions if m.kind == "comment"]
    assert {m.brand_replied for m in comments} == {True, False}


def test_pipeline_three_ticks_alert_each_match_once(graph: MetaGraphServer, tmp_path: Path) -> None:
    deployed = write_deployment(tmp_path, {
        "ig": {"connector": "instagram", "ig_user_id": IG_USER_ID, "page_token": "${EARFUL_TEST_IG_TOKEN}", "base_url": graph.url},
    }, acme_rules({"instagram": ["acmecrm"]}, complaint="broken OR refund OR crash*", severity=None),
        env={"EARFUL_TEST_IG_TOKEN": TOKEN})
    now = int(time.time())
    media = graph.add_media("Acme CRM 5.2 is here", created=now - 600)
    wanted = {graph.add_ig_comment(media, "How do I enable offline mode in Acme?", username="ann", created=now - 500)}
    deployed.tick()
    wanted.add(graph.add_ig_comment(media, "Acme keeps crashing on my iPad", username="ben", created=int(time.time())))
    graph.add_ig_comment(media, "😍😍", username="cat", created=int(time.time()))
    deployed.tick()
    wanted.add(graph.add_media("Does anyone use @acmecrm? Acme refund policy?", owner="tagged", username="dora", created=int(time.time())))
    report = deployed.tick()
    assert all(o.ok for o in report.monitors)
    assert sorted(deployed.alerted()) == sorted(f"instagram:{i}" for i in wanted)


def test_verify(graph: MetaGraphServer) -> None:
    connector(graph).verify()
    assert [r.path.rsplit("/", 1)[-1] for r in graph.requests] == [IG_USER_ID, "media", "tags"]
    graph.expire_token()
    with pytest.raises(ConnectorError) as caught:
        connector(graph).verify()
    assert caught.value.status == 401
