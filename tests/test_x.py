"""The x connector (tweepy, API v2) against the fake X API."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.base import ConnectorContext, ConnectorError, RequestBudget
from earful.connectors.pushdown import compile_query
from earful.connectors.x import XConnector, XOptions, snowflake_time, tweet_mention
from earful.core import Mention
from earful.monitors.runner import budget_period
from earful.sandbox.server import FakeServer, Request, Response
from earful.sandbox.x import XServer, snowflake

from .deploy import Deployment, acme_rules, write_deployment

TOKEN = "AAAAAAAAAAAAAAAAAAAAAtest-bearer-9f3c"
BRAND_ID = "1700000000000000001"
DAY = 86400.0


@pytest.fixture
def x() -> Iterator[XServer]:
    with XServer(bearer_token=TOKEN) as fake:
        fake.add_user("acme", "Acme CRM", id=BRAND_ID)
        fake.add_user("acmesupport", "Acme Support", id="1700000000000000002")
        yield fake  # type: ignore[misc]


def connector(fake: XServer, query: str | None = 'acme OR "acme crm"', *, budget: RequestBudget | None = None,
              brands: tuple[str, ...] = ("acme", "acmesupport"), now: datetime | None = None, **options: Any) -> XConnector:
    context = ConnectorContext(monitor="x-test", query=query, brand_accounts={"x": brands}, now=now, budget=budget)
    return XConnector(XOptions(bearer_token=TOKEN, base_url=fake.url, **options), context)


def calls(fake: XServer, path_part: str = "/2/") -> list[dict[str, str]]:
    return [{k: v[-1] for k, v in r.query.items()} for r in fake.requests_to(path_part)]


def ids(mentions: list[Mention]) -> list[str]:
    return [m.external_id for m in mentions]


def test_registry_and_lazy_imports() -> None:
    assert load("x") is XConnector
    code = "import sys, earful.connectors.x; print(sorted({'tweepy', 'requests'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_options_validate_and_hide_the_token() -> None:
    opts = XOptions(bearer_token="AAAA-very-secret", mentions_of="@Acme", first_run_lookback="2d", monthly_budget=1500)
    assert opts.first_run_lookback == timedelta(days=2) and opts.mentions_of == "@Acme" and opts.max_requests == 5
    assert "very-secret" not in repr(opts) and "very-secret" not in str(opts.model_dump())
    assert XOptions(bearer_token="t", mentions_of="783214").mentions_of == "783214"
    for bad in ({"mentions_of": "acme crm"}, {"first_run_lookback": "8d"}, {"max_results": 5}, {"max_requests": 0},
                {"monthly_budget": 0}, {"mention_of": "@acme"}):
        with pytest.raises(ValidationError):
            XOptions(bearer_token="t", **bad)


@pytest.mark.parametrize("query, sent", [
    ('acme OR "acme crm"', '(acme OR "acme crm")'),
    ("acme broken OR refund", "acme (broken OR refund)"),  # ours: AND looser than OR; X's: the reverse
    ('acme (broken OR refund OR "never respond*") -"job offer"', 'acme -"job offer"'),
    ("acme lang:de author:@jdoe -spam", "acme lang:de from:jdoe -spam"),
    ('title:"acme crm" site:r/crm outage', '"acme crm" outage'),
    ("acme OR acme", "acme"),
    ("acme[dot]com OR @acme OR #acmecrm", "(\"acme[dot]com\" OR @acme OR #acmecrm)"),
])
def test_query_compiles_to_x_operators(query: str, sent: str) -> None:
    assert compile_query(query, "x") == sent


def test_query_pushdown_and_its_limits(x: XServer) -> None:
    assert connector(x).query() == '(acme OR "acme crm") -is:retweet'
    assert connector(x, include_retweets=True).query() == '(acme OR "acme crm")'
    assert connector(x, "ignored", search="acme lang:en -is:reply").query() == "acme lang:en -is:reply"
    with pytest.raises(ConnectorError, match="over the plan's 64"):
        connector(x, " OR ".join(f"word{n}" for n in range(20)), max_query_length=64).fetch(None)
    with pytest.raises(ConnectorError, match="set `search`"):
        connector(x, "acme OR -spam").fetch(None)
    with pytest.raises(ConnectorError, match="nothing to watch"):
        connector(x, None).fetch(None)
    assert x.requests == []


# -- first run, mapping ----------------------------------------------------------------------


def test_first_run_asks_for_the_fields_it_maps(x: XServer) -> None:
    now = time.time()
    x.add_tweet("oldtimer", "acme was fine in the old days", created_at=now - 2 * DAY)
    recent = x.add_tweet("jdoe", "Acme CRM export is broken again", created_at=now - 3600)
    result = connector(x).fetch(None)
    assert ids(result.mentions) == [recent["id"]] and result.requests == 1
    (sent,) = calls(x)
    assert sent["query"] == '(acme OR "acme crm") -is:retweet' and sent["max_results"] == "100"
    assert sent["sort_order"] == "recency" and "since_id" not in sent
    assert set(sent["tweet.fields"].split(",")) >= {"created_at", "conversation_id", "in_reply_to_user_id",
                                                    "referenced_tweets", "lang", "public_metrics", "author_id"}
    assert sent["expansions"].split(",")[0] == "author_id" and "username" in sent["user.fields"]
    start = datetime.strptime(sent["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(start.timestamp() - (now - DAY)) < 5
    assert result.cursor == {"search": {"query": sent["query"], "since_id": recent["id"]}}


def test_reply_mapping(x: XServer) -> None:
    now = time.time()
    question = x.add_tweet("maria_ops", "@acme how do I connect Acme to Gmail?", created_at=now - 600)
    reply = x.add_tweet("kim", "Same question! Status page says https://status.acme.example/incidents/42 &lt;3",
                        reply_to=question["id"], created_at=now - 300, lang="en")
    by_id = {m.external_id: m for m in connector(x).fetch(None).mentions}
    mention = by_id[reply["id"]]
    assert mention == Mention(
        source="x",
        external_id=reply["id"],
        url=f"https://x.com/kim/status/{reply['id']}",
        author="kim",
        text="@maria_ops Same question! Status page says https://status.acme.example/incidents/42 &lt;3",
        created_at=datetime.fromtimestamp(int(now - 300), timezone.utc),
        thread_id=question["id"],
        parent_id=question["id"],
        kind="reply",
        language="en",
        brand_replied=False,
        site="x.com",
        link_url="https://status.acme.example/incidents/42",
    )
    assert "t.co" in reply["text"] and "&amp;lt;3" in reply["text"]  # the wire format escapes; the mention does not
    assert mention.raw["in_reply_to_user_id"] == x.user_by_name("maria_ops").id  # type: ignore[union-attr]
    root = by_id[question["id"]]
    assert root.kind == "post" and root.thread_id == question["id"] and root.parent_id is None
    assert root.brand_replied is None  # it has a reply (reply_count 1): who wrote it is replies()' business


def test_long_posts_non_latin_text_and_language(x: XServer) -> None:
    long_text = "Acme CRM " + "export problems again and again " * 12 + "the end"
    long = x.add_tweet("essayist", long_text)
    japanese = x.add_tweet("tanaka", "Acme CRMのエクスポートが壊れています。サポートは？", lang="ja")
    unknown = x.add_tweet("emoji_fan", "acme 🔥🔥", lang="und")
    by_id = {m.external_id: m for m in connector(x).fetch(None).mentions}
    assert long["text"].endswith("…") and by_id[long["id"]].text == long_text  # note_tweet holds the whole post
    assert by_id[japanese["id"]].text == "Acme CRMのエクスポートが壊れています。サポートは？"
    assert by_id[japanese["id"]].language == "ja" and by_id[unknown["id"]].language is None


def test_retweets_and_quotes_cluster_with_the_original(x: XServer) -> None:
    original = x.add_tweet("devin", "Day 3 with no response from @acme support https://acme.example/tickets/9")
    x.add_tweet("gus", retweet_of=original["id"])
    quote = x.add_tweet("saas_watch", "Not a good look, Acme.", quote_of=original["id"])
    result = connector(x).fetch(None)
    by_id = {m.external_id: m for m in result.mentions}
    assert set(by_id) == {original["id"], quote["id"]}  # -is:retweet
    assert by_id[quote["id"]].link_url == by_id[original["id"]].url == f"https://x.com/devin/status/{original['id']}"
    with_rts = {m.external_id: m for m in connector(x, include_retweets=True).fetch(None).mentions}
    (retweet,) = [m for m in with_rts.values() if m.author == "gus"]
    assert retweet.link_url == by_id[original["id"]].url
    assert retweet.text == "RT @devin: Day 3 with no response from @acme support https://acme.example/tickets/9"


def test_brand_posts_are_flagged(x: XServer) -> None:
    own = x.add_tweet("AcmeSupport", "Acme CRM 5.2.1 fixes the broken export")
    (mention,) = connector(x).fetch(None).mentions
    assert mention.external_id == own["id"] and mention.author_is_brand
    assert tweet_mention({"id": "5", "text": "hi", "author_id": BRAND_ID}, {}, {}, set(), {BRAND_ID}).author_is_brand


# -- cursor ------------------------------------------------------------------------------------------


def test_idle_poll_is_one_request_per_stream(x: XServer) -> None:
    x.add_tweet("jdoe", "@acme is acme down?")
    hub = connector(x, mentions_of="@acme")
    first = hub.fetch(None)
    assert first.requests == 3  # search, user lookup, mentions
    before = len(x.requests)
    idle = hub.fetch(first.cursor)
    assert idle.mentions == [] and idle.requests == 2 == len(x.requests) - before
    assert idle.cursor == first.cursor
    assert [c.get("since_id") for c in calls(x)[-2:]] == [first.cursor["search"]["since_id"], first.cursor["mentions"]["since_id"]]


def test_new_posts_across_three_ticks_are_returned_exactly_once(x: XServer) -> None:
    hub = connector(x, mentions_of="@acme")
    cursor = None
    seen: list[str] = []
    expected: list[str] = []
    for tick in range(3):
        expected.append(x.add_tweet("ann", f"acme question {tick}")["id"])
        expected.append(x.add_tweet("bob", f"hey @acme, tick {tick}")["id"])  # found by both streams
        x.add_tweet("carl", f"unrelated {tick}")
        result = hub.fetch(cursor)
        seen += ids(result.mentions)
        cursor = result.cursor
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))
    assert len(x.requests_to("/2/users/by/username")) == 1  # the handle was resolved once


def test_three_day_outage_pages_back_to_the_cursor(x: XServer) -> None:
    now = time.time()
    last = x.add_tweet("ann", "acme before the outage", created_at=now - 3 * DAY - 600)
    cursor = connector(x, now=datetime.fromtimestamp(now - 3 * DAY, timezone.utc)).fetch(None).cursor
    assert cursor["search"]["since_id"] == last["id"]
    posted = [x.add_tweet(f"user{n % 40}", f"acme update {n}", created_at=now - 3 * DAY + n * 700)["id"] for n in range(350)]
    hub = connector(x)
    result = hub.fetch(cursor)
    assert sorted(ids(result.mentions)) == sorted(posted) and result.requests == 4
    assert [c.get("next_token") is None for c in calls(x)[-4:]] == [True, False, False, False]
    assert "pending" not in result.cursor["search"] and result.notes == []
    assert hub.fetch(result.cursor).mentions == []


def test_catch_up_beyond_max_requests_continues_on_later_runs(x: XServer) -> None:
    now = time.time()
    x.add_tweet("ann", "acme before the outage", created_at=now - 2 * DAY - 600)
    cursor = connector(x, now=datetime.fromtimestamp(now - 2 * DAY, timezone.utc)).fetch(None).cursor
    hub = connector(x, max_requests=2)
    posted = [x.add_tweet("ann", f"acme backlog {n}", created_at=now - 2 * DAY + n * 300)["id"] for n in range(450)]
    seen: list[str] = []
    runs = 0
    while True:
        result = hub.fetch(cursor)
        assert result.requests <= 2
        seen += ids(result.mentions)
        cursor = result.cursor
        runs += 1
        if runs == 1:
            assert cursor["search"]["pending"] and result.notes
            posted.append(x.add_tweet("bea", "acme fresh while catching up")["id"])
        if "pending" not in cursor["search"]:
            break
        assert runs < 10
    assert sorted(seen) == sorted(posted) and len(seen) == len(set(seen))
    assert hub.fetch(cursor).mentions == []


def test_outage_longer_than_seven_days_uses_start_time_instead_of_since_id(x: XServer) -> None:
    now = time.time()
    stale = x.add_tweet("ann", "acme long ago", created_at=now - 8 * DAY)
    cursor = {"search": {"query": '(acme OR "acme crm") -is:retweet', "since_id": stale["id"]}}
    fresh = x.add_tweet("bob", "acme this week", created_at=now - 2 * DAY)
    result = connector(x).fetch(cursor)
    assert ids(result.mentions) == [fresh["id"]]
    (sent,) = calls(x)
    assert "since_id" not in sent and "start_time" in sent
    assert any("7 days" in note for note in result.notes)
    assert result.cursor["search"]["since_id"] == fresh["id"]


def test_snowflake_ids_carry_their_time() -> None:
    moment = datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone.utc)
    assert snowflake_time(snowflake(moment.timestamp(), 17)) == moment
    # a real recorded post whose text is the time its bot posted it: "2022-10-07 22:42:12.637103 tweepy"
    posted = datetime(2022, 10, 7, 22, 42, 12, 637103, tzinfo=timezone.utc)
    assert timedelta(0) <= snowflake_time(1578516068309794817) - posted < timedelta(seconds=1)


# -- mentions -------------------------------------------------------------------------------------------


def test_mentions_of_a_numeric_id_needs_no_lookup_and_skips_retweets(x: XServer) -> None:
    mention = x.add_tweet("ann", "@acme can you reset my 2FA?")
    x.add_tweet("bob", retweet_of=mention["id"])
    result = connector(x, None, mentions_of=BRAND_ID).fetch(None)
    assert ids(result.mentions) == [mention["id"]] and result.requests == 1
    assert x.requests[0].path == f"/2/users/{BRAND_ID}/mentions"
    assert result.cursor["mentions"]["user_id"] == BRAND_ID


def test_unknown_handle_is_a_clear_error(x: XServer) -> None:
    with pytest.raises(ConnectorError, match=r"X has no user @acme_typo .*check `mentions_of`"):
        connector(x, None, mentions_of="@acme_typo").fetch(None)


def test_mentions_pages_with_pagination_token(x: XServer) -> None:
    hub = connector(x, None, mentions_of="@acme", max_results=10)
    cursor = hub.fetch(None).cursor
    posted = [x.add_tweet(f"u{n}", f"@acme ping {n}")["id"] for n in range(25)]
    result = hub.fetch(cursor)
    assert sorted(ids(result.mentions)) == sorted(posted) and result.requests == 3
    assert [c.get("pagination_token") is None for c in calls(x, "/mentions")[-3:]] == [True, False, False]


# -- replies -----------------------------------------------------------------------------------------------


def test_replies_answered_and_unanswered(x: XServer) -> None:
    now = time.time()
    question = x.add_tweet("maria", "@acme how do I connect Acme to Gmail?", created_at=now - 3000)
    x.add_tweet("ann", "same question", reply_to=question["id"], created_at=now - 2500)
    answer = x.add_tweet("acmesupport", "Settings > Integrations > Gmail", reply_to=question["id"], created_at=now - 2000)
    ignored = x.add_tweet("devin", "acme support never answers me", created_at=now - 1000)
    hub = connector(x)
    by_id = {m.external_id: m for m in hub.fetch(None).mentions}
    status = hub.replies(by_id[question["id"]])
    assert status.answered is True and status.answered_by == "acmesupport"
    assert status.answered_at == datetime.fromtimestamp(int(now - 2000), timezone.utc)
    assert status.url == f"https://x.com/acmesupport/status/{answer['id']}"
    sent = calls(x)[-1]
    assert sent["query"] == f"conversation_id:{question['id']} (from:acme OR from:acmesupport)"
    assert hub.replies(by_id[ignored["id"]]).answered is False


def test_a_brand_answer_to_someone_else_does_not_answer_this_reply(x: XServer) -> None:
    root = x.add_tweet("news", "Acme CRM raises a Series C")
    complaint = x.add_tweet("devin", "acme still has not refunded me", reply_to=root["id"])
    fan = x.add_tweet("fan", "congrats acme!", reply_to=root["id"])
    x.add_tweet("acme", "thank you!", reply_to=fan["id"])
    hub = connector(x)
    by_id = {m.external_id: m for m in hub.fetch(None).mentions}
    assert hub.replies(by_id[complaint["id"]]).answered is False
    assert hub.replies(by_id[fan["id"]]).answered is True
    assert hub.replies(by_id[root["id"]]).answered is True  # an answer anywhere in the conversation it started


def test_replies_unknown_when_x_cannot_tell(x: XServer) -> None:
    now = time.time()
    hub = connector(x)
    old = tweet_mention({"id": str(snowflake(now - 9 * DAY)), "text": "acme?", "author_id": "1",
                         "created_at": datetime.fromtimestamp(now - 9 * DAY, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                         "conversation_id": str(snowflake(now - 9 * DAY))}, {}, {}, set())
    assert hub.replies(old).answered is None  # the answer may lie beyond recent search's 7 days
    fresh = x.add_tweet("ann", "acme?")
    (mention,) = hub.fetch(None).mentions
    x.fail_next(Response(503, "<html>over capacity</html>", {"Content-Type": "text/html"}))
    assert hub.replies(mention).answered is None
    assert connector(x, brands=()).replies(mention).answered is None
    assert hub.replies(Mention(source="reddit", external_id=fresh["id"], thread_id=fresh["id"])).answered is None


# -- failures and limits --------------------------------------------------------------------------------------------


def test_rate_limit_defers_to_the_reset_time(x: XServer) -> None:
    hub = connector(x)
    cursor = hub.fetch(None).cursor
    reset = x.exhaust("search", reset_in=600)
    with pytest.raises(ConnectorError) as caught:
        hub.fetch(cursor)
    error = caught.value
    assert error.status == 429 and error.retry_after is not None and 590 <= error.retry_after <= 600
    assert "x monitor 'x-test'" in str(error) and "450 requests per window" in str(error)
    assert int(x.windows["search"][1]) == reset


def test_invalid_token_names_monitor_and_source_without_the_token(x: XServer) -> None:
    hub = XConnector(XOptions(bearer_token="AAAA-revoked-token-123", base_url=x.url),
                     ConnectorContext(monitor="x-test", query="acme"))
    with pytest.raises(ConnectorError) as caught:
        hub.fetch(None)
    message = str(caught.value)
    assert caught.value.status == 401 and "x monitor 'x-test'" in message and "bearer_token" in message
    assert "revoked-token" not in message and TOKEN not in message


def test_x_rejections_are_explained(x: XServer) -> None:
    with pytest.raises(ConnectorError, match=r"HTTP 400 \(.*errors processing your request.*\); check the query") as caught:
        connector(x, search="(acme OR").fetch(None)
    assert caught.value.status == 400
    x.fail_next(Response.json({"title": "Client Forbidden", "detail": "This request must be made using an approved developer account that is enrolled in the requested endpoint.", "reason": "client-not-enrolled", "type": "https://api.twitter.com/2/problems/client-forbidden"}, 403))
    with pytest.raises(ConnectorError, match=r"HTTP 403 \(This request must be made using an approved developer account"):
        connector(x).fetch(None)
    x.fail_next(Response(503, "<html>Over capacity</html>", {"Content-Type": "text/html"}))
    with pytest.raises(ConnectorError, match="HTTP 503; X server error"):
        connector(x).fetch(None)


@pytest.mark.parametrize("response, problem", [
    (Response(200, b'{"data": [{"id": "1", "text"', {"Content-Type": "application/json"}), "not JSON"),
    (Response(200, b"<html>rate limited by proxy</html>", {"Content-Type": "text/html"}), "not JSON"),
    (Response.json({"data": {"oops": True}, "meta": {}}), "unexpected reply"),
    (Response.json({"data": [{"text": "no id"}], "meta": {"result_count": 1}}), "lacks its id"),
    (Response.json({"result": []}), "neither 'data' nor 'meta'"),
])
def test_malformed_replies_are_clear_errors(x: XServer, response: Response, problem: str) -> None:
    hub = connector(x)
    cursor = hub.fetch(None).cursor
    x.fail_next(response)
    with pytest.raises(ConnectorError, match=problem) as caught:
        hub.fetch(cursor)
    assert "x monitor 'x-test'" in str(caught.value)


def test_timeout_is_enforced_although_tweepy_sets_none() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        hub = XConnector(XOptions(bearer_token="t", base_url=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3),
                         ConnectorContext(monitor="x-test", query="acme"))
        started = time.monotonic()
        with pytest.raises(ConnectorError, match="timed out after 0.3s"):
            hub.fetch(None)
        assert time.monotonic() - started < 3
    finally:
        silent.close()


class Recorder(FakeServer):
    def handle(self, request: Request) -> Response:
        return Response.json({"meta": {"result_count": 0}})


def test_base_url_with_a_path_prefix_rewrites_tweepys_fixed_host() -> None:
    with Recorder() as proxy:
        hub = XConnector(XOptions(bearer_token=TOKEN, base_url=f"{proxy.url}/x-proxy/"), ConnectorContext(monitor="m", query="acme"))
        assert hub.fetch(None).mentions == []
        (request,) = proxy.requests
        assert request.path == "/x-proxy/2/tweets/search/recent"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["host"] == proxy.url.removeprefix("http://")
        assert request.headers["user-agent"].startswith("earful/") and "Tweepy/" in request.headers["user-agent"]


# -- request budget -----------------------------------------------------------------------------------------------


def test_budget_caps_the_run_and_exhaustion_makes_no_request(x: XServer) -> None:
    now = time.time()
    for n in range(250):
        x.add_tweet("ann", f"acme item {n}", created_at=now - DAY / 2 + n * 60)
    budget = RequestBudget("x-test", "2026-11", limit=4, used=2)
    result = connector(x, budget=budget, mentions_of="@acme").fetch(None)
    assert result.requests == 2 and budget.used == 4 and budget.remaining == 0
    assert result.cursor["search"]["pending"]  # the rest of the search waits for next month's budget
    assert result.cursor["mentions"] == {"user_id": BRAND_ID, "handle": "acme"}  # resolved, not read yet
    before = len(x.requests)
    with pytest.raises(ConnectorError, match=r"x monitor 'x-test': monthly request budget exhausted \(4/4 used in 2026-11\)"):
        connector(x, budget=budget).fetch(result.cursor)
    assert len(x.requests) == before and budget.used == 4


# -- the real pipeline --------------------------------------------------------------------------------------------

def deployment(tmp_path: Path, fake: XServer, **options: Any) -> Deployment:
    return write_deployment(tmp_path, {
        "x-acme": {"connector": "x", "schedule": "*/15 * * * *", "query": "acme", "bearer_token": "${EARFUL_TEST_X_TOKEN}",
                   "base_url": fake.url, **options},
    }, acme_rules({"x": ["acme", "acmesupport"]}, complaint='broken OR refund OR outage OR "no response"'),
        env={"EARFUL_TEST_X_TOKEN": TOKEN})


def test_end_to_end_three_runs_and_a_three_day_outage_alert_each_match_once(tmp_path: Path, x: XServer) -> None:
    deployed = deployment(tmp_path, x, mentions_of="@acme")
    real_now = datetime.now(timezone.utc)
    t0 = real_now - timedelta(days=4)
    base = t0.timestamp()
    broken = x.add_tweet("jdoe", "@acme the export is broken", created_at=base - 600)
    x.add_tweet("ann", "acme anvils are funny", created_at=base - 500)
    x.add_tweet("acme", "Acme 5.2 fixes the broken export", created_at=base - 400)
    assert deployed.tick(now=t0).monitors[0].ok
    question = x.add_tweet("bob", "how do I roll back acme?", reply_to=broken["id"], created_at=base + 100)
    second = deployed.tick(now=t0 + timedelta(minutes=5)).monitors[0]
    assert second.ok and second.new_items == 1 and second.requests == 2
    refund = x.add_tweet("cat", "@acme refund please", created_at=base + 400)
    deployed.tick(now=t0 + timedelta(minutes=10))
    expected = {broken["id"], question["id"], refund["id"]}
    assert sorted(deployed.alerted()) == sorted(f"x:{i}" for i in expected)  # delivered or held by flood control

    for n in range(260):  # three days of posts while earful was down
        text = f"acme outage report #{n}" if n % 2 == 0 else f"acme anvil meme #{n}"
        post = x.add_tweet(f"user{n % 30}", text, created_at=base + DAY + n * 990)
        if n % 2 == 0:
            expected.add(post["id"])
    outcome = deployed.tick().monitors[0]
    assert outcome.ok and outcome.fetched == 260 and outcome.requests == 4  # search: 3 pages; mentions: 1
    assert sorted(deployed.alerted()) == sorted(f"x:{i}" for i in expected)
    idle = deployed.tick().monitors[0]
    assert idle.ok and idle.fetched == 0 and idle.requests == 2

    x.exhaust("search", reset_in=300)
    deferred = datetime.fromisoformat(deployed.failing_tick("x-acme", "429")["defer_until"])
    assert timedelta(seconds=250) < deferred - datetime.now(timezone.utc) <= timedelta(seconds=300)
    assert len(deployed.alerted()) == len(expected) == 133


def test_end_to_end_monthly_budget_is_persisted_and_never_overspent(tmp_path: Path, x: XServer) -> None:
    deployed = deployment(tmp_path, x, max_requests=3, monthly_budget=5, first_run_lookback="3d")
    now = time.time()
    posted = [x.add_tweet(f"u{n % 50}", f"acme refund request {n}", created_at=now - 2 * DAY + n * 400)["id"] for n in range(350)]
    period = budget_period(datetime.now(timezone.utc))

    def used() -> int:
        with deployed.store() as store:
            return store.budgets(period)["x-acme"]["used"]

    first = deployed.tick().monitors[0]
    assert first.ok and first.requests == 3 and first.fetched == 300 and used() == 3  # a pending window is left
    second = deployed.tick().monitors[0]
    assert second.ok and second.requests == 2 and second.fetched == 50 and used() == 5
    assert sorted(deployed.alerted()) == sorted(f"x:{i}" for i in posted)
    before = len(x.requests)
    deployed.failing_tick("x-acme", "monthly request budget exhausted (5/5")
    assert len(x.requests) == before and used() == 5


# -- the fake itself holds X's walls ------------------------------------------------------------------------------


def test_fake_enforces_the_seven_day_window_and_parameter_ranges(x: XServer) -> None:
    import requests

    now = time.time()
    old = x.add_tweet("ann", "acme old", created_at=now - 8 * DAY)
    url, auth = f"{x.url}/2/tweets/search/recent", {"Authorization": f"Bearer {TOKEN}"}
    stale = requests.get(url, params={"query": "acme", "since_id": old["id"]}, headers=auth, timeout=5)
    assert stale.status_code == 400 and stale.json()["title"] == "Invalid Request"
    assert "must be a tweet id created after" in stale.json()["errors"][0]["message"]
    assert requests.get(url, params={"query": "acme", "max_results": 5}, headers=auth, timeout=5).status_code == 400
    assert requests.get(url, params={"query": "-acme"}, headers=auth, timeout=5).status_code == 400
    empty = requests.get(url, params={"query": "acme"}, headers=auth, timeout=5)  # the old post is out of reach
    assert empty.json() == {"meta": {"result_count": 0}}
    assert all(h in empty.headers for h in ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"))
    unauthorized = requests.get(url, params={"query": "acme"}, timeout=5)
    assert unauthorized.status_code == 401 and unauthorized.json()["detail"] == "Unauthorized"
