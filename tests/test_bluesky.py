"""The bluesky connector (plain XRPC) against the fake PDS/AppView."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.base import ConnectorContext, ConnectorError
from earful.connectors.bluesky import (
    BlueskyConnector,
    BlueskyOptions,
    expand_links,
    post_mention,
)
from earful.core import Mention
from earful.sandbox.bluesky import BlueskyServer, demo_source
from earful.sandbox.server import Response

from .deploy import Deployment, acme_rules, write_deployment
from .support import demo_deployment

PASSWORD = "abcd-efgh-ijkl-mnop"
BRAND = "acme.bsky.social"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
T = NOW.timestamp()


@pytest.fixture
def sky() -> Iterator[BlueskyServer]:
    with BlueskyServer() as fake:
        fake.add_account(BRAND, display_name="Acme CRM", app_password=PASSWORD)
        for handle in ("marta.bsky.social", "pieter.bsky.social", "liang.bsky.social"):
            fake.add_account(handle)
        yield fake  # type: ignore[misc]


def connector(fake: BlueskyServer, *, now: datetime = NOW, query: str | None = 'acme OR "acme crm"', login: bool = False,
              brands: tuple[str, ...] = (BRAND,), **options: Any) -> BlueskyConnector:
    opts: dict[str, Any] = {"base_url": fake.url, **options}
    if login:
        opts.update(identifier=BRAND, app_password=PASSWORD)
    context = ConnectorContext(monitor="bluesky-test", query=query, brand_accounts={"bluesky": brands}, now=now)
    return BlueskyConnector(BlueskyOptions(**opts), context)


def searches(fake: BlueskyServer) -> list[dict[str, str]]:
    return [{k: v[-1] for k, v in r.query.items()} for r in fake.requests_to("searchPosts")]


def uris(mentions: list[Mention]) -> list[str]:
    return [m.external_id for m in mentions]


def test_registry_and_lazy_imports() -> None:
    assert load("bluesky") is BlueskyConnector
    code = "import sys, earful.connectors.bluesky; print('requests' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_options_validate() -> None:
    opts = BlueskyOptions(identifier="@acme.bsky.social", app_password="s3cr3t-pw", index_lag="2m")
    assert opts.identifier == "acme.bsky.social" and opts.read_notifications and opts.index_lag == timedelta(minutes=2)
    assert "s3cr3t" not in repr(opts) and "s3cr3t" not in str(opts.model_dump())
    assert not BlueskyOptions().read_notifications
    for bad, words in [
        ({"identifier": "acme.bsky.social"}, "give both"),
        ({"app_password": "pw"}, "give both"),
        ({"notifications": True}, "needs `identifier`"),
        ({"search": False}, "nothing to read"),
        ({"search": " "}, "empty string"),
        ({"identifier": "a", "app_password": ""}, "empty"),
    ]:
        with pytest.raises(ValidationError, match=words):
            BlueskyOptions(**bad)


# -- searching -------------------------------------------------------------------------------------------


def test_anonymous_first_run_searches_the_lookback_window(sky: BlueskyServer) -> None:
    sky.post("marta.bsky.social", "acme was fine last week", at=T - 3 * 86400)
    recent = sky.post("marta.bsky.social", "Acme is broken today", at=T - 600)
    result = connector(sky).fetch(None)
    assert uris(result.mentions) == [recent["uri"]]
    assert searches(sky) == [{"q": "acme", "sort": "latest", "limit": "100", "since": "2026-11-19T12:00:00.000Z"}]
    assert "authorization" not in sky.requests[0].headers and sky.logins == 0
    assert result.cursor == {"searches": {"acme": {"since": "2026-11-20T11:50:00.000Z",
                                                   "seen": [[recent["uri"], int((T - 600) * 1000)]]}}}


def test_idle_poll_is_one_request_per_search_plus_notifications(sky: BlueskyServer) -> None:
    sky.post("marta.bsky.social", "Acme question", at=T - 60)
    reader = connector(sky, login=True)
    cursor = reader.fetch(None).cursor
    idle_reader = connector(sky, login=True)  # a new run: a new connector, the session comes from the cursor
    idle = idle_reader.fetch(cursor)
    assert idle.mentions == [] and idle.requests == 2 and sky.logins == 1
    assert idle.cursor == cursor
    assert searches(sky)[-1]["since"] == "2026-11-20T11:49:00.000Z"  # newest sortAt minus index_lag


def test_three_ticks_over_search_and_notifications_return_each_post_once(sky: BlueskyServer) -> None:
    expected, seen, cursor = [], [], None
    for tick in range(3):
        base = T - 3000 + tick * 600
        expected.append(sky.post("marta.bsky.social", f"tick {tick}: acme search hit", at=base)["uri"])
        expected.append(sky.post("pieter.bsky.social", f"@{BRAND} tick {tick}: a mention that is also a search hit (acme)",
                                 at=base + 10)["uri"])
        expected.append(sky.post("liang.bsky.social", f"@{BRAND} tick {tick}: a mention only", at=base + 20)["uri"])
        sky.post("liang.bsky.social", f"tick {tick}: nothing", at=base + 30)
        result = connector(sky, login=True, now=datetime.fromtimestamp(base + 60, timezone.utc)).fetch(cursor)
        seen += uris(result.mentions)
        cursor = result.cursor
    assert seen == expected and sky.logins == 1


def test_pages_follow_the_api_cursor(sky: BlueskyServer) -> None:
    made = [sky.post("marta.bsky.social", f"acme {n}", at=T - 5000 + n)["uri"] for n in range(250)]
    result = connector(sky).fetch(None)
    assert uris(result.mentions) == made and result.requests == 3
    assert [s.get("cursor") is not None for s in searches(sky)] == [False, True, True]


def test_a_long_outage_is_read_through_pending_windows(sky: BlueskyServer) -> None:
    sky.post("marta.bsky.social", "acme before the outage", at=T - 9000)
    reader = connector(sky, max_pages=2)
    cursor = reader.fetch(None).cursor
    backlog = [sky.post("marta.bsky.social", f"acme during the outage {n}", at=T - 8000 + 2 * n)["uri"] for n in range(450)]
    seen, runs = [], []
    for _ in range(5):
        result = reader.fetch(cursor)
        seen += uris(result.mentions)
        runs.append((len(result.mentions), result.requests, "pending" in result.cursor["searches"]["acme"]))
        cursor = result.cursor
    assert sorted(seen) == sorted(backlog) and len(seen) == len(set(seen))
    assert runs[0] == (200, 2, True) and runs[-1][0] == 0 and not runs[-1][2]
    assert all(requests <= 3 for _, requests, _ in runs)  # the budget, plus one for a pending window
    # 300 posts within the last index_lag: the re-read of that overlap stops at the budget instead of piling up
    assert runs[-1][1] == 2


def test_posts_sharing_a_millisecond_and_late_indexing(sky: BlueskyServer) -> None:
    a = sky.post("marta.bsky.social", "acme one", at=T - 100)
    b = sky.post("pieter.bsky.social", "acme two", at=T - 100)
    reader = connector(sky)
    first = reader.fetch(None)
    assert sorted(uris(first.mentions)) == sorted([a["uri"], b["uri"]])
    c = sky.post("liang.bsky.social", "acme three, same millisecond, indexed later", at=T - 100)
    late = sky.post("liang.bsky.social", "acme written 5 min ago, indexed now", at=T - 400, indexed_at=T)
    too_late = sky.post("liang.bsky.social", "acme written an hour ago, indexed now", at=T - 3600, indexed_at=T)
    second = reader.fetch(first.cursor)
    assert sorted(uris(second.mentions)) == sorted([c["uri"], late["uri"]])
    assert too_late["uri"] not in uris(second.mentions)
    assert reader.fetch(second.cursor).mentions == []


# -- sessions ------------------------------------------------------------------------------------------------


def test_login_refresh_and_relogin(sky: BlueskyServer) -> None:
    sky.post("marta.bsky.social", "acme", at=T - 60)
    first = connector(sky, login=True).fetch(None)
    session = first.cursor["session"]
    assert sky.logins == 1 and session["did"].startswith("did:plc:") and session["for"] == BRAND
    assert PASSWORD not in json.dumps(first.cursor)
    sky.expire_sessions()
    second = connector(sky, login=True).fetch(first.cursor)  # the access token has expired: refreshed, no login
    assert sky.logins == 1 and second.cursor["session"]["access"] != session["access"]
    assert [r.path for r in sky.requests].count("/xrpc/com.atproto.server.refreshSession") == 1
    third = connector(sky, login=True).fetch(first.cursor)  # an old cursor's refresh token was rotated away: log in
    # The stored access token still looks valid (its exp), so: a rejected search, a failed refresh (the token was
    # rotated away), a login, the search again, notifications.
    assert sky.logins == 2 and third.requests == 5


def test_a_token_rejected_mid_run_is_renewed_once(sky: BlueskyServer) -> None:
    reader = connector(sky, login=True)
    cursor = reader.fetch(None).cursor
    sky.fail_next(Response.json({"error": "ExpiredToken", "message": "Token has expired"}, 400))
    result = connector(sky, login=True).fetch(cursor)
    assert result.mentions == [] and sky.logins == 1
    assert [r.path.rsplit("/", 1)[-1] for r in sky.requests[-4:]] == [
        "app.bsky.feed.searchPosts", "com.atproto.server.refreshSession", "app.bsky.feed.searchPosts",
        "app.bsky.notification.listNotifications"]


def test_a_revoked_app_password_fails_with_advice(sky: BlueskyServer) -> None:
    cursor = connector(sky, login=True).fetch(None).cursor
    sky.revoke(BRAND)
    with pytest.raises(ConnectorError) as caught:
        connector(sky, login=True).fetch(cursor)
    message = str(caught.value)
    assert caught.value.status == 401 and "AuthenticationRequired" in message and "App passwords" in message
    assert message.startswith("bluesky monitor 'bluesky-test': POST ") and "/xrpc/com.atproto.server.createSession " in message
    assert PASSWORD not in message and cursor["session"]["access"] not in message


def test_search_that_needs_a_login_says_so(sky: BlueskyServer) -> None:
    sky.search_requires_auth = True
    with pytest.raises(ConnectorError, match="log in with `identifier` and `app_password`") as caught:
        connector(sky).fetch(None)
    assert caught.value.status == 401
    sky.post("marta.bsky.social", "acme", at=T - 60)
    assert len(connector(sky, login=True).fetch(None).mentions) == 1


# -- notifications and mapping -----------------------------------------------------------------------------------


def test_notifications_bring_mentions_replies_and_quotes(sky: BlueskyServer) -> None:
    own = sky.post(BRAND, "Acme 5.2 is out", at=T - 900)
    mention = sky.post("marta.bsky.social", f"@{BRAND} hello", at=T - 800)
    reply = sky.post("pieter.bsky.social", "congrats!", at=T - 700, reply_to=own["uri"])
    quote = sky.post("liang.bsky.social", "finally", at=T - 600, quote=own["uri"])
    result = connector(sky, login=True, search=False).fetch(None)
    assert uris(result.mentions) == [mention["uri"], reply["uri"], quote["uri"]]
    assert [m.raw["reason"] for m in result.mentions] == ["mention", "reply", "quote"]
    (sent,) = [r for r in sky.requests if r.path.endswith("listNotifications")]
    assert sent.query["reasons"] == ["mention", "reply", "quote"] and sent.headers["authorization"].startswith("Bearer ")


def test_post_mapping_expands_shortened_links_on_byte_offsets(sky: BlueskyServer) -> None:
    url = "https://acme.example/docs/contacts/export-all-contacts-to-csv"
    root = sky.post("marta.bsky.social", "Acme thread", at=T - 500)
    made = sky.post("liang.bsky.social", f"有人知道 Acme 怎么导出联系人吗？😅 {url} 谢谢", at=T - 120, reply_to=root["uri"],
                    langs=["zh"])
    assert "acme.example/docs/contacts/... 谢谢" in made["record"]["text"]  # shortened as the app posts it
    mention = next(m for m in connector(sky).fetch(None).mentions if m.external_id == made["uri"])
    rkey = made["uri"].rsplit("/", 1)[-1]
    assert mention == Mention(
        source="bluesky",
        external_id=made["uri"],
        url=f"https://bsky.app/profile/liang.bsky.social/post/{rkey}",
        author="liang.bsky.social",
        author_is_brand=False,
        text=f"有人知道 Acme 怎么导出联系人吗？😅 {url} 谢谢",
        created_at=NOW - timedelta(seconds=120),
        thread_id=root["uri"],
        parent_id=root["uri"],
        kind="reply",
        language="zh",
        site="bsky.app",
        link_url=url,
    )


def test_mapping_of_odd_records() -> None:
    post = {"uri": "at://did:plc:abc/app.bsky.feed.post/3kxyz", "author": {"did": "did:plc:abc", "handle": "handle.invalid"},
            "record": {"text": "see acme.example/x", "createdAt": "2026-11-20T11:00:00.123456789Z",
                       "embed": {"$type": "app.bsky.embed.recordWithMedia",
                                 "media": {"$type": "app.bsky.embed.external", "external": {"uri": "https://acme.example/x"}}}},
            "indexedAt": "2026-11-20T11:00:01Z"}
    mention = post_mention(post, {"did:plc:abc"})
    assert mention.url == "https://bsky.app/profile/did:plc:abc/post/3kxyz" and mention.author_is_brand
    assert mention.created_at == datetime(2026, 11, 20, 11, 0, 0, 123456, tzinfo=timezone.utc)
    assert mention.link_url == "https://acme.example/x" and mention.language is None
    facets = [{"index": {"byteStart": 4, "byteEnd": 99}, "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://x"}]}]
    assert expand_links("see acme", facets) == "see acme"  # a range beyond the text is ignored


# -- replies() ----------------------------------------------------------------------------------------------------


def test_replies_find_the_earliest_brand_post_below(sky: BlueskyServer) -> None:
    asked = sky.post("marta.bsky.social", "Acme login broken?", at=T - 900)
    ignored = sky.post("pieter.bsky.social", "Acme refund?", at=T - 850)
    other = sky.post("pieter.bsky.social", "same", at=T - 800, reply_to=asked["uri"])
    first = sky.post(BRAND, "Fixed, sorry!", at=T - 700, reply_to=other["uri"])
    sky.post(BRAND, "Again: fixed", at=T - 600, reply_to=asked["uri"])
    reader = connector(sky, login=True)
    by_uri = {m.external_id: m for m in reader.fetch(None).mentions}
    status = reader.replies(by_uri[asked["uri"]])
    assert status.answered is True and status.answered_by == BRAND
    assert status.answered_at == NOW - timedelta(seconds=700)
    assert status.url == f"https://bsky.app/profile/{BRAND}/post/{first['uri'].rsplit('/', 1)[-1]}"
    assert reader.replies(by_uri[ignored["uri"]]).answered is False
    thread_calls = [r for r in sky.requests if r.path.endswith("getPostThread")]
    assert thread_calls[-1].query["depth"] == ["100"] and "authorization" not in thread_calls[-1].headers  # threads are public


def test_replies_skip_deleted_and_blocked_posts_in_the_tree(sky: BlueskyServer) -> None:
    asked = sky.post("marta.bsky.social", "Acme?", at=T - 900)
    answer = sky.post(BRAND, "Here to help", at=T - 800, reply_to=asked["uri"])
    reader = connector(sky)
    mention = reader.fetch(None).mentions[0]
    thread = json.loads(sky.handle(type(sky.requests[0])("GET", "/xrpc/app.bsky.feed.getPostThread",
                                                          {"uri": [asked["uri"]]}, {}, b"")).body)
    brand_reply = thread["thread"]["replies"][0]
    thread["thread"]["replies"] = [
        {"$type": "app.bsky.feed.defs#notFoundPost", "uri": asked["uri"] + "x", "notFound": True},
        {"$type": "app.bsky.feed.defs#blockedPost", "uri": asked["uri"] + "y", "blocked": True,
         "author": {"did": "did:plc:zzz", "viewer": {"blockedBy": True}}},
    ]
    sky.fail_next(Response.json(thread))
    assert reader.replies(mention).answered is False  # the brand's answer was deleted: nothing left to see
    thread["thread"]["replies"].append(brand_reply)
    sky.fail_next(Response.json(thread))
    assert reader.replies(mention).url == f"https://bsky.app/profile/{BRAND}/post/{answer['uri'].rsplit('/', 1)[-1]}"


def test_replies_are_unknown_for_deleted_posts_and_errors(sky: BlueskyServer) -> None:
    asked = sky.post("marta.bsky.social", "Acme?", at=T - 900)
    reader = connector(sky)
    mention = reader.fetch(None).mentions[0]
    sky.fail_next(Response.json({"error": "UpstreamFailure", "message": "Upstream Failure"}, 502))
    assert reader.replies(mention).answered is None
    sky.fail_next(Response.json({"thread": {"$type": "app.bsky.feed.defs#blockedPost", "uri": asked["uri"], "blocked": True}}))
    assert reader.replies(mention).answered is None
    sky.delete(asked["uri"])
    assert reader.replies(mention).answered is None  # 400 NotFound
    assert connector(sky, brands=()).replies(mention).answered is None
    assert reader.replies(Mention(source="bluesky", external_id="https://bsky.app/x")).answered is None


# -- failures --------------------------------------------------------------------------------------------------


def test_rate_limit_uses_ratelimit_reset(sky: BlueskyServer) -> None:
    sky.rate_limit_next(reset_in=90)
    with pytest.raises(ConnectorError) as caught:
        connector(sky).fetch(None)
    assert caught.value.status == 429 and 80 < (caught.value.retry_after or 0) <= 90
    assert "RateLimitExceeded" in str(caught.value) and "bluesky monitor 'bluesky-test'" in str(caught.value)


@pytest.mark.parametrize("response, words", [
    (Response(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}), "not JSON"),
    (Response.json({"hits": []}), "without a 'posts' list"),
    (Response.json({"posts": [{"text": "no uri"}]}), "without a 'posts' list"),
    (Response.json({"error": "InvalidRequest", "message": "Error: limit must be between 1 and 100"}, 400), "InvalidRequest"),
    (Response(503, "unavailable"), "retries on the next run"),
])
def test_malformed_or_failed_answers_are_connector_errors(sky: BlueskyServer, response: Response, words: str) -> None:
    sky.fail_next(response)
    with pytest.raises(ConnectorError, match=words):
        connector(sky).fetch(None)


def test_verify_logs_in_and_reads_one_of_each(sky: BlueskyServer) -> None:
    connector(sky, login=True).verify()
    assert [r.path.removeprefix("/xrpc/") for r in sky.requests] == [
        "com.atproto.server.createSession", "app.bsky.feed.searchPosts", "app.bsky.notification.listNotifications"]
    sky.revoke(BRAND)
    with pytest.raises(ConnectorError) as caught:
        connector(sky, login=True).verify()
    assert caught.value.status == 401 and PASSWORD not in str(caught.value)
    sky.search_requires_auth = True
    with pytest.raises(ConnectorError, match="log in with") as caught:
        connector(sky).verify()
    assert caught.value.status == 401


# -- the real pipeline -------------------------------------------------------------------------------------------

def deployment(tmp_path: Path, fake: BlueskyServer) -> Deployment:
    monitor = {"connector": "bluesky", "schedule": "*/5 * * * *", "query": "acme", "base_url": fake.url, "identifier": BRAND}
    return write_deployment(tmp_path, {"bluesky-acme": {**monitor, "app_password": "${EARFUL_TEST_BLUESKY_PASSWORD}"},
                                       "bluesky-old-password": {**monitor, "app_password": "an-old-revoked-password"}},
                            acme_rules({"bluesky": [BRAND]}), env={"EARFUL_TEST_BLUESKY_PASSWORD": PASSWORD})


def test_end_to_end_three_runs_alert_each_match_once(tmp_path: Path, sky: BlueskyServer, capsys: pytest.CaptureFixture[str]) -> None:
    deployed = deployment(tmp_path, sky)
    now = time.time()
    broken = sky.post("marta.bsky.social", "Acme login broken since this morning", at=now - 600)
    sky.post("pieter.bsky.social", "lunch anyone?", at=now - 500)
    sky.post(BRAND, "Acme 5.2.1 fixes the broken login", at=now - 400)
    first = deployed.tick()
    outcome = {o.name: o for o in first.monitors}
    assert outcome["bluesky-acme"].ok, outcome["bluesky-acme"].error
    bad = outcome["bluesky-old-password"]
    assert not bad.ok and "monitor 'bluesky-old-password' (bluesky)" in (bad.error or "") and "HTTP 401" in (bad.error or "")
    question = sky.post("liang.bsky.social", "How do I export contacts from Acme?", at=now - 300)
    second = deployed.tick()
    assert second.monitors[0].ok and second.monitors[0].new_items == 1
    refund = sky.post("pieter.bsky.social", f"@{BRAND} refund please, Acme", at=now - 200)
    deployed.tick()
    assert sorted(deployed.alerted("bluesky", kind=None)) == sorted(f"bluesky:{p['uri']}" for p in (broken, question, refund))
    assert sky.logins == 1  # one login for the three runs: the session lives in the cursor
    sky.rate_limit_next(reset_in=60, path="searchPosts")  # not the other monitor's login, running alongside
    assert deployed.failing_tick("bluesky-acme", "429").get("defer_until")
    assert PASSWORD not in capsys.readouterr().out


def test_demo_source_alerts_the_right_items_once(tmp_path: Path) -> None:
    source = demo_source(time.time())
    with demo_deployment(tmp_path, source) as deployed:
        first = deployed.tick()
        assert first.monitors[0].ok, first.monitors[0].error
        alerted, items = deployed.stored()
        alerts = {item.text[:25]: destination for item, destination in alerted}
        assert sorted(alerts.values()) == ["marketing", "support", "support", "support"]
        assert not any(t.startswith(("We're hiring", "A heron", "Is there a way to apply")) for t in alerts)
        assert deployed.tick().monitors[0].alerts == 0
        reader = BlueskyConnector(deployed.config.monitors[source.name].options,
                                  ConnectorContext(monitor=source.name, brand_accounts={"bluesky": (BRAND,)}))
        by_text = {m.text[:20]: m for m in items if m is not None}
        assert reader.replies(by_text["@acme.bsky.social th"]).answered is True
        assert reader.replies(by_text["Third week waiting f"]).answered is False
