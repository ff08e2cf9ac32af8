"""The linkedin connector against the fake Community Management API (sandbox/linkedin.py).

The fake follows LinkedIn's documented shapes; there is no real recording to compare with.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.base import ConnectorContext, ConnectorError
from earful.connectors.linkedin import LinkedInConnector, LinkedInOptions
from earful.core import Mention
from earful.sandbox.linkedin import (
    ORG,
    TOKEN,
    LinkedInServer,
    demo_source,
    li_error,
    throttled,
)
from earful.sandbox.server import Response

from .deploy import Deployment, acme_rules, write_deployment

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
T = NOW.timestamp()
ANN = "urn:li:person:QW5uVGVzdA"
BEN = "urn:li:person:QmVuVGVzdA"
SUPPORT_AGENT = "urn:li:person:U3VwcG9ydA"


@pytest.fixture
def li() -> Iterator[LinkedInServer]:
    with LinkedInServer() as fake:
        yield fake  # type: ignore[misc]


def connector(li: LinkedInServer, now: datetime = NOW, monitor: str = "test", **options: Any) -> LinkedInConnector:
    options.setdefault("access_token", TOKEN)
    return LinkedInConnector(
        LinkedInOptions(organization=ORG, base_url=li.url, **options),
        ConnectorContext(monitor=monitor, brand_accounts={"linkedin": (ORG,)}, now=now),
    )


def ids(mentions: list[Mention]) -> list[str]:
    return [m.external_id for m in mentions]


def test_registry_and_options() -> None:
    assert load("linkedin") is LinkedInConnector
    assert LinkedInOptions(organization="1000001", access_token="x").organization == ORG
    assert "sekrit" not in repr(LinkedInOptions(organization=ORG, access_token="sekrit"))
    for bad in ({"organization": "acme"}, {"organization": "urn:li:person:1"}, {"organization": ORG, "linkedin_version": "2024-10"},
                {"organization": ORG, "watch_posts": 0}, {"organization": ORG, "org": ORG}):
        with pytest.raises(ValidationError):
            LinkedInOptions(access_token="x", **bad)


def test_first_run_maps_posts_comments_replies_and_mentions(li: LinkedInServer) -> None:
    li.add_post("Old news from Acme", created=T - 3 * 86400)
    release = li.add_post("Acme CRM 5.2 is out", created=T - 7200, article={"source": "https://acme.example/blog/5-2", "title": "Acme 5.2"})
    question = li.add_comment(release, "How do I migrate from Salesforce to Acme?", actor=ANN, created=T - 3600)
    answer = li.add_comment(release, "Settings → Import", actor=ORG, agent=SUPPORT_AGENT, parent=question, created=T - 3000)
    mention = li.add_post("Evaluating @Acme CRM. Does anyone know their API limits?", author=BEN, created=T - 600, notify_mention=True)

    result = connector(li).fetch(None)

    assert ids(result.mentions) == [release, question, answer, mention]
    post, comment, reply, mentioning = result.mentions
    assert post.author == ORG and post.author_is_brand and post.link_url == "https://acme.example/blog/5-2" and post.title == "Acme 5.2"
    assert post.url == f"https://www.linkedin.com/feed/update/{release}/"
    assert comment == Mention(
        source="linkedin", external_id=question,
        url=f"https://www.linkedin.com/feed/update/{release}/?commentUrn={quote(question, safe='')}",
        author=ANN, text="How do I migrate from Salesforce to Acme?", created_at=NOW - timedelta(hours=1),
        thread_id=release, parent_id=release, kind="comment", brand_replied=True, site="linkedin.com",
    )
    assert comment.raw["reply_at"] == "2024-05-01T11:10:00+00:00" and comment.raw["reply_by"] == ORG
    assert reply.kind == "reply" and reply.parent_id == question and reply.author_is_brand and reply.raw["agent"] == SUPPORT_AGENT
    assert mentioning.author == BEN and mentioning.kind == "post" and not mentioning.author_is_brand and mentioning.raw["edge"] == "mention"
    first = li.requests[0]
    assert first.headers["linkedin-version"] == "202410" and first.headers["x-restli-protocol-version"] == "2.0.0"
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.arg("actions") == "List(COMMENT,SHARE_MENTION)" and first.arg("organizationalEntity") == ORG
    metadata = next(r for r in li.requests if r.path == "/rest/socialMetadata")
    assert metadata.arg("ids", "").startswith("List(urn:li:share:")
    assert any(r.path == f"/rest/socialActions/{quote(question, safe='')}/comments" for r in li.requests)


def test_idle_poll_is_three_requests(li: LinkedInServer) -> None:
    post = li.add_post("Acme news", created=T - 600)
    li.add_comment(post, "nice", actor=ANN, created=T - 300)
    first = connector(li).fetch(None)
    before = len(li.requests)
    idle = connector(li, now=NOW + timedelta(minutes=5)).fetch(first.cursor)
    assert idle.mentions == [] and idle.requests == 3 == len(li.requests) - before
    assert [r.path for r in li.requests[before:]] == ["/rest/organizationalEntityNotifications", "/rest/posts", "/rest/socialMetadata"]
    assert connector(li, mentions=False, now=NOW + timedelta(minutes=5)).fetch(idle.cursor).requests == 2


def test_new_items_across_three_ticks_are_found_exactly_once(li: LinkedInServer) -> None:
    old = li.add_post("Acme post from last year", created=T - 300 * 86400)
    recent = [li.add_post(f"Acme update {n}", created=T - 80000 + n * 600) for n in range(3)]
    expected = set(recent)
    cursor = None
    seen: list[str] = []
    question = ""
    for tick in range(3):
        now = NOW + timedelta(minutes=10 * tick)
        t = now.timestamp()
        if tick == 1:
            question = li.add_comment(recent[0], "Does anyone know how to export?", actor=ANN, created=t - 60)
            expected |= {question, li.add_comment(recent[0], "Settings → Export", actor=ORG, parent=question, created=t - 50)}
            expected.add(li.add_post("Acme CRM vs the rest", author=BEN, created=t - 40, notify_mention=True))
        if tick == 2:
            expected.add(li.add_comment(old, "Is this still true for Acme 5?", actor=BEN, created=t - 30))  # found via its notification
            expected.add(li.add_comment(recent[0], "thanks!", actor=ANN, parent=question, created=t - 20))
            expected.add(li.add_post("Acme 5.3 beta", created=t - 10))
        result = connector(li, now=now, watch_posts=3).fetch(cursor)  # the old post is not among them
        seen += ids(result.mentions)
        cursor = json.loads(json.dumps(result.cursor))
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))


def test_paging_back_after_downtime(li: LinkedInServer) -> None:
    post = li.add_post("Acme", created=T - 7200)
    cursor = connector(li).fetch(None).cursor
    comments = [li.add_comment(post, f"Acme question {n}", actor=f"urn:li:person:p{n}", created=T - 3000 + n) for n in range(230)]
    before = len(li.requests)
    result = connector(li, now=NOW + timedelta(hours=1), page_size=50).fetch(cursor)
    assert sorted(ids(result.mentions)) == sorted(comments)
    pages = [r for r in li.requests[before:] if r.path == f"/rest/socialActions/{quote(post, safe='')}/comments"]
    assert [r.arg("start") for r in pages] == ["0", "50", "100", "150", "200"] and all(r.arg("count") == "50" for r in pages)
    notification_pages = [r for r in li.requests[before:] if r.path == "/rest/organizationalEntityNotifications"]
    assert len(notification_pages) == 5  # 230 COMMENT notifications, 50 per page


def test_answered_and_unanswered_threads(li: LinkedInServer) -> None:
    post = li.add_post("Acme CRM 5.2", created=T - 5000)
    asked = li.add_comment(post, "How do I enable SSO in Acme?", actor=ANN, created=T - 4000)
    li.add_comment(post, "Settings → Security", actor=ORG, agent=SUPPORT_AGENT, parent=asked, created=T - 3500)
    follow_up = li.add_comment(post, "Not on our plan", actor=ANN, parent=asked, created=T - 3000)
    ignored = li.add_comment(post, "Acme never responds to tickets", actor=BEN, created=T - 2000)
    mention = li.add_post("Anyone know why Acme sync is broken?", author=BEN, created=T - 1000, notify_mention=True)
    lc = connector(li)
    by_id = {m.external_id: m for m in lc.fetch(None).mentions}
    assert (by_id[asked].brand_replied, by_id[follow_up].brand_replied, by_id[ignored].brand_replied) == (True, False, False)
    status = lc.replies(by_id[asked])
    assert status.answered is True and status.answered_by == ORG and status.answered_at == NOW - timedelta(seconds=3500)
    assert lc.replies(by_id[ignored]).answered is False
    assert lc.replies(by_id[follow_up]).answered is False
    assert lc.replies(by_id[mention]).answered is False
    li.add_comment(mention, "Hi Ben, we're on it: status.acme.example", actor=ORG, created=T + 10)
    li.add_comment(post, "Sorry! Escalated.", actor=ORG, parent=ignored, created=T + 20)
    li.add_comment(post, "Then ask your admin", actor=ORG, parent=asked, created=T + 30)
    assert lc.replies(by_id[mention]).answered is True
    assert lc.replies(by_id[ignored]).answered_at == NOW + timedelta(seconds=20)
    assert lc.replies(by_id[follow_up]).answered_at == NOW + timedelta(seconds=30)


def test_edited_deleted_and_non_latin(li: LinkedInServer) -> None:
    post = li.add_post("Acme CRM 5.2", created=T - 5000)
    kept = li.add_comment(post, "Acme 同步失败了，能退款吗？", actor=ANN, created=T - 4000)
    gone = li.add_comment(post, "typo", actor=BEN, created=T - 3000)
    li.delete(gone)
    lc = connector(li)
    first = lc.fetch(None)
    assert ids(first.mentions) == [post, kept] and first.mentions[1].text == "Acme 同步失败了，能退款吗？"
    li.edit_comment(kept, "Acme 同步失败了（已编辑）", at=T + 60)
    li.add_comment(post, "Ελληνικά: το Acme δεν συγχρονίζει", actor=BEN, created=T + 90)
    second = connector(li, now=NOW + timedelta(minutes=5)).fetch(first.cursor)
    assert [m.text for m in second.mentions] == ["Ελληνικά: το Acme δεν συγχρονίζει"]  # an edit is not a new comment
    li.delete(kept)
    assert lc.replies(first.mentions[1]).answered is None


def test_unreadable_mentioning_post_is_kept_with_a_note(li: LinkedInServer) -> None:
    urn = li.add_post("Private thoughts on Acme", author=BEN, created=T - 60, notify_mention=True)
    li.posts.pop(urn)
    result = connector(li).fetch(None)
    assert ids(result.mentions) == [urn] and result.mentions[0].text == ""
    assert any("cannot be read" in note for note in result.notes)


@pytest.mark.parametrize(
    "state, words",
    [("revoked", "the access token was revoked: have a Page admin authorize the app again"),
     ("expired", "the access token expired (LinkedIn tokens last 60 days)")],
)
def test_revoked_or_expired_token(li: LinkedInServer, state: str, words: str) -> None:
    li.revoke(state)
    with pytest.raises(ConnectorError) as caught:
        connector(li).fetch(None)
    message = str(caught.value)
    assert words in message and "linkedin monitor 'test'" in message and TOKEN not in message
    assert ("REVOKED_ACCESS_TOKEN, serviceErrorCode 65600" if state == "revoked" else "EXPIRED_ACCESS_TOKEN, serviceErrorCode 65601") in message
    assert caught.value.status == 401
    with pytest.raises(ConnectorError, match="the access token is invalid"):
        connector(li, access_token="AQXwrong").fetch(None)


def test_missing_scope_version_and_server_errors(li: LinkedInServer) -> None:
    li.scopes.discard("rw_organization_admin")
    with pytest.raises(ConnectorError, match=r"needs the `rw_organization_admin` scope.*or set `mentions: false`"):
        connector(li).fetch(None)
    assert connector(li, mentions=False).fetch(None).cursor["v"] == 1
    with pytest.raises(ConnectorError, match="LinkedIn-Version 202001 is not active"):
        connector(li, linkedin_version="202001").fetch(None)
    li.fail_next(li_error(500, "INTERNAL_SERVER_ERROR", "Internal Server Error"))
    with pytest.raises(ConnectorError, match="server error"):
        connector(li, mentions=False).fetch(None)
    li.fail_next(Response(200, b"{\"elements\": [", {"Content-Type": "application/json"}))
    with pytest.raises(ConnectorError, match="not a JSON object"):
        connector(li, mentions=False).fetch(None)
    li.fail_next(Response.json({"results": []}))
    with pytest.raises(ConnectorError, match="no `elements` list"):
        connector(li).fetch(None)


def test_rate_limit_sets_retry_after_and_leaves_the_cursor(li: LinkedInServer) -> None:
    post = li.add_post("Acme", created=T - 60)
    lc = connector(li)
    li.fail_next(throttled())
    with pytest.raises(ConnectorError) as caught:
        lc.fetch(None)
    assert caught.value.status == 429 and 60 <= (caught.value.retry_after or 0) <= 86400  # a daily limit: until the next UTC day
    li.fail_next(li_error(429, "TOO_MANY_REQUESTS", "Too many requests", headers={"Retry-After": "90"}))
    with pytest.raises(ConnectorError) as caught:
        lc.fetch(None)
    assert caught.value.retry_after == 90
    assert ids(lc.fetch(None).mentions) == [post]


def test_demo_source() -> None:
    source = demo_source(time.time())
    assert source.monitor["connector"] == "linkedin" and source.monitor["organization"] == ORG
    assert list(source.env.values()) == [TOKEN] and source.monitor["base_url"] == "{url}"
    with source.server:
        lc = LinkedInConnector(LinkedInOptions(organization=ORG, access_token=TOKEN, base_url=source.server.url),
                               ConnectorContext(monitor="demo", brand_accounts={"linkedin": (ORG,)}))
        mentions = lc.fetch(None).mentions
    assert {m.brand_replied for m in mentions if m.kind == "comment"} == {True, False}
    assert any(m.raw.get("edge") == "mention" for m in mentions)


def deployment(tmp_path: Path, monitors: dict[str, str]) -> Deployment:
    """One linkedin monitor per (name, API URL), all reading the same organization."""
    return write_deployment(tmp_path, {
        name: {"connector": "linkedin", "organization": ORG, "access_token": "${EARFUL_TEST_LI_TOKEN}", "base_url": url}
        for name, url in monitors.items()
    }, acme_rules({"linkedin": [ORG]}, complaint='broken OR refund OR "never respond*"', severity=None),
        env={"EARFUL_TEST_LI_TOKEN": TOKEN})


def test_pipeline_three_ticks_alert_each_match_once(li: LinkedInServer, tmp_path: Path) -> None:
    deployed = deployment(tmp_path, {"li": li.url})
    now = time.time()
    post = li.add_post("Acme CRM 5.2", created=now - 900)
    wanted = {li.add_comment(post, "How do I turn on offline mode in Acme?", actor=ANN, created=now - 800)}
    deployed.tick()
    wanted.add(li.add_comment(post, "Acme sync is broken for us", actor=BEN, created=time.time()))
    li.add_comment(post, "Congrats!", actor=ANN, created=time.time())
    deployed.tick()
    wanted.add(li.add_post("Does anyone have an Acme refund story?", author=BEN, created=time.time(), notify_mention=True))
    report = deployed.tick()
    assert all(o.ok for o in report.monitors)
    assert sorted(deployed.alerted()) == sorted(f"linkedin:{i}" for i in wanted)


def test_a_5xx_fails_only_that_monitor(li: LinkedInServer, tmp_path: Path) -> None:
    with LinkedInServer() as healthy:
        deployed = deployment(tmp_path, {"down": li.url, "up": healthy.url})
        healthy.add_post("Acme refund please, it is broken", author=BEN, created=time.time() - 60, notify_mention=True)  # type: ignore[attr-defined]
        li.fail_next(*[li_error(503, "SERVICE_UNAVAILABLE", "Service Unavailable")] * 3)
        report = deployed.tick()
    outcomes = {o.name: o for o in report.monitors}
    assert outcomes["up"].ok and outcomes["up"].alerts == 1
    assert not outcomes["down"].ok and outcomes["down"].error.startswith("monitor 'down' (linkedin): linkedin monitor 'down'")
    assert "server error (HTTP 503)" in outcomes["down"].error


def test_verify(li: LinkedInServer) -> None:
    connector(li).verify()
    assert [(r.path, r.arg("count")) for r in li.requests] == [("/rest/posts", "1"), ("/rest/organizationalEntityNotifications", "1")]
    li.scopes.discard("rw_organization_admin")
    with pytest.raises(ConnectorError) as caught:
        connector(li).verify()
    assert caught.value.status == 403
    connector(li, mentions=False).verify()
    li.revoke()
    with pytest.raises(ConnectorError) as caught:
        connector(li, mentions=False).verify()
    assert caught.value.status == 401 and TOKEN not in str(caught.value)
