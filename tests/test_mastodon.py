"""The mastodon connector (plain REST) against the fake Mastodon instance."""

from __future__ import annotations

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
from earful.connectors.mastodon import (
    MastodonConnector,
    MastodonOptions,
    full_acct,
    is_brand,
)
from earful.core import Mention
from earful.sandbox.mastodon import MastodonServer, demo_source
from earful.sandbox.server import Response

from .deploy import Deployment, acme_rules, write_deployment
from .support import demo_deployment

TOKEN = "zX9-brand-account-token-4f1c"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
T = NOW.timestamp()


@pytest.fixture
def masto() -> Iterator[MastodonServer]:
    with MastodonServer(domain="mastodon.example") as fake:
        fake.acme = fake.add_account("acme", display_name="Acme CRM", token=TOKEN)  # type: ignore[attr-defined]
        fake.ben = fake.add_account("ben")  # type: ignore[attr-defined]
        fake.olga = fake.add_account("olga", "hachyderm.example")  # type: ignore[attr-defined]
        yield fake  # type: ignore[misc]


def connector(fake: MastodonServer, *, now: datetime = NOW, query: str | None = 'acme OR "acme crm"',
              brands: tuple[str, ...] = ("acme@mastodon.example",), **options: Any) -> MastodonConnector:
    opts: dict[str, Any] = {"base_url": fake.url, "hashtags": ["acmecrm"], **options}
    context = ConnectorContext(monitor="mastodon-test", query=query, brand_accounts={"mastodon": brands}, now=now)
    return MastodonConnector(MastodonOptions(**opts), context)


def sent(fake: MastodonServer, part: str) -> list[dict[str, str]]:
    return [{k: v[-1] for k, v in r.query.items()} for r in fake.requests_to(part)]


def local_ids(mentions: list[Mention]) -> list[str]:
    return [m.raw["id"] for m in mentions]


def test_registry_and_lazy_imports() -> None:
    assert load("mastodon") is MastodonConnector
    code = "import sys, earful.connectors.mastodon; print('requests' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_options_validate() -> None:
    opts = MastodonOptions(base_url="https://mastodon.social", hashtags=["#AcmeCRM", "acmecrm", "日本語"], access_token="s3cr3t",
                           federation_lag="5m")
    assert opts.hashtags == ["acmecrm", "日本語"] and opts.read_mentions and opts.federation_lag == timedelta(minutes=5)
    assert "s3cr3t" not in repr(opts)
    assert not MastodonOptions(base_url="https://m.example", access_token="t", mentions=False, hashtags=["a"]).read_mentions
    for bad, words in [
        ({"hashtags": ["acme"]}, "set `base_url`"),
        ({"base_url": "https://m.example"}, "nothing to read"),
        ({"base_url": "https://m.example", "mentions": True}, "`mentions` needs `access_token`"),
        ({"base_url": "https://m.example", "search": True}, "`search` needs `access_token`"),
        ({"base_url": "https://m.example", "hashtags": ["acme crm"]}, "not a hashtag"),
        ({"base_url": "https://m.example", "access_token": ""}, "empty"),
    ]:
        with pytest.raises(ValidationError, match=words):
            MastodonOptions(**bad)


# -- reading ---------------------------------------------------------------------------------------------


def test_first_run_reads_the_lookback_window_only(masto: MastodonServer) -> None:
    masto.post(masto.ben, "Acme was fine last week #acmecrm", at=T - 3 * 86400)
    recent = masto.post(masto.ben, "Acme is broken today #AcmeCRM", at=T - 600)
    result = connector(masto).fetch(None)
    assert local_ids(result.mentions) == [recent["id"]]
    assert sent(masto, "/timelines/tag/acmecrm") == [{"limit": "40"}]
    assert result.cursor == {"streams": {"tag:acmecrm": {"min_id": recent["id"], "seen": [recent["id"]]}}}
    assert "authorization" not in masto.requests[0].headers  # hashtags need no token


def test_first_run_pages_back_through_the_link_header(masto: MastodonServer) -> None:
    made = [masto.post(masto.ben, f"#acmecrm number {n}", at=T - 5000 + n)["id"] for n in range(100)]
    result = connector(masto).fetch(None)
    assert local_ids(result.mentions) == made
    assert [q.get("max_id") for q in sent(masto, "/tag/")] == [None, made[60], made[20]]


def test_idle_poll_costs_one_request_per_stream(masto: MastodonServer) -> None:
    masto.post(masto.ben, "Acme #acmecrm", at=T - 60)
    reader = connector(masto, access_token=TOKEN, search=True)
    cursor = reader.fetch(None).cursor
    assert set(cursor["streams"]) == {"tag:acmecrm", "mentions", "search:acme"}
    before = len(masto.requests)
    idle = reader.fetch(cursor)
    assert idle.mentions == [] and idle.requests == 3 and len(masto.requests) == before + 3
    assert idle.cursor == cursor


def test_three_ticks_over_three_streams_return_each_status_once(masto: MastodonServer) -> None:
    reader = connector(masto, access_token=TOKEN, search=True)
    expected, seen, cursor = [], [], None
    for tick in range(3):
        base = T - 3000 + tick * 600
        expected.append(masto.post(masto.ben, f"tick {tick}: acme in the tag #acmecrm", at=base)["id"])
        expected.append(masto.post(masto.olga, f"@acme tick {tick}: a mention that also matches the search", at=base + 10)["id"])
        expected.append(masto.post(masto.ben, f"tick {tick}: Acme found by search only", at=base + 20)["id"])
        masto.post(masto.ben, f"tick {tick}: nothing to see", at=base + 30)
        result = reader.fetch(cursor)
        seen += local_ids(result.mentions)
        cursor = result.cursor
    assert seen == expected


def test_forward_pages_follow_min_id_and_the_link_header(masto: MastodonServer) -> None:
    masto.post(masto.ben, "#acmecrm start", at=T - 9000)
    reader = connector(masto, federation_lag="0s")
    cursor = reader.fetch(None).cursor
    made = [masto.post(masto.ben, f"#acmecrm {n}", at=T - 8000 + n)["id"] for n in range(100)]
    result = reader.fetch(cursor)
    assert local_ids(result.mentions) == made and result.requests == 3
    assert [q["min_id"] for q in sent(masto, "/tag/")[-3:]] == [cursor["streams"]["tag:acmecrm"]["min_id"], made[39], made[79]]


def test_long_outage_is_read_over_several_runs_without_gaps(masto: MastodonServer) -> None:
    masto.post(masto.ben, "#acmecrm start", at=T - 9000)
    reader = connector(masto, max_pages=2)
    cursor = reader.fetch(None).cursor
    backlog = [masto.post(masto.ben, f"#acmecrm backlog {n}", at=T - 8000 + n)["id"] for n in range(150)]
    seen, runs = [], []
    for _ in range(6):
        result = reader.fetch(cursor)
        seen += local_ids(result.mentions)
        runs.append((len(result.mentions), bool(result.notes)))
        cursor = result.cursor
        assert result.requests <= 2 + 3  # max_pages, plus at most 3 pages of the lag overlap
    assert seen == backlog
    assert runs[0] == (79, True) and runs[-1] == (0, False)  # 2 pages, one of them re-reading the last status seen


def test_late_federated_statuses_are_caught_within_the_lag(masto: MastodonServer) -> None:
    masto.post(masto.ben, "#acmecrm newest so far", at=T - 60)
    reader = connector(masto)
    cursor = reader.fetch(None).cursor
    late = masto.post(masto.olga, "#acmecrm published 5 minutes ago, delivered now", at=T - 300)
    too_late = masto.post(masto.olga, "#acmecrm published an hour ago, delivered now", at=T - 3600)
    assert int(late["id"]) < int(cursor["streams"]["tag:acmecrm"]["min_id"])  # ids follow publication time
    result = reader.fetch(cursor)
    assert local_ids(result.mentions) == [late["id"]]
    assert too_late["id"] not in local_ids(result.mentions)
    assert reader.fetch(result.cursor).mentions == []


def test_mentions_come_from_notifications_with_the_token(masto: MastodonServer) -> None:
    mention = masto.post(masto.olga, "@acme your export is broken", at=T - 120)
    masto.post(masto.ben, "@ben talking to myself", at=T - 100)
    reader = connector(masto, hashtags=[], access_token=TOKEN)
    result = reader.fetch(None)
    assert local_ids(result.mentions) == [mention["id"]] and result.mentions[0].raw["via"] == "mentions"
    (query,) = sent(masto, "/notifications")
    assert query == {"types[]": "mention", "limit": "40"}
    assert masto.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    deleted = masto.post(masto.olga, "@acme deleted before we look", at=T - 30)
    masto.delete(deleted["id"])
    assert reader.fetch(result.cursor).mentions == []


def test_search_pushes_the_query_down_and_pages_by_offset(masto: MastodonServer) -> None:
    made = [masto.post(masto.ben, f"Acme question {n}", at=T - 5000 + 30 * n)["id"] for n in range(90)]
    reader = connector(masto, hashtags=[], access_token=TOKEN, mentions=False, search=True)
    result = reader.fetch(None)
    assert local_ids(result.mentions) == made
    queries = sent(masto, "/api/v2/search")
    assert [q["offset"] for q in queries] == ["0", "40", "80"]
    assert queries[0] == {"q": "acme", "type": "statuses", "resolve": "false", "limit": "40", "offset": "0"}
    newer = masto.post(masto.ben, "Acme newest", at=T - 10)
    second = reader.fetch(result.cursor)
    assert local_ids(second.mentions) == [newer["id"]] and second.requests == 1
    assert sent(masto, "/api/v2/search")[-1]["min_id"]  # the server is told where the cursor is
    verbatim = connector(masto, hashtags=[], access_token=TOKEN, mentions=False, search='"acme crm"')
    verbatim.fetch(None)
    assert sent(masto, "/api/v2/search")[-1]["q"] == '"acme crm"'


def test_search_beyond_max_pages_is_noted(masto: MastodonServer) -> None:
    for n in range(100):
        masto.post(masto.ben, f"Acme {n}", at=T - 5000 + n)
    result = connector(masto, hashtags=[], access_token=TOKEN, mentions=False, search=True, max_pages=1).fetch(None)
    assert len(result.mentions) == 40 and any("older results were skipped" in n for n in result.notes)


def test_search_needs_a_query() -> None:
    with MastodonServer() as fake:
        reader = connector(fake, query=None, hashtags=[], access_token=TOKEN, search=True)
        with pytest.raises(ConnectorError, match="needs the monitor's `query`"):
            reader.fetch(None)


# -- mapping ---------------------------------------------------------------------------------------------


def test_status_mapping(masto: MastodonServer) -> None:
    long_url = "https://status.acme.example/incidents/2026-11-20-export-degraded"
    parent = masto.post(masto.ben, "Anyone else? #acmecrm", at=T - 300)
    made = masto.post(masto.olga, f"@acme @ben Acme's export is <broken> & slow:\n{long_url}\n\nRefund? #AcmeCRM",
                      at=T - 120, in_reply_to=parent["id"], spoiler="Acme rant", poll=["yes", "no"])
    assert "<span class=\"ellipsis\">" in made["content"] and "h-card" in made["content"]
    mention = next(m for m in connector(masto).fetch(None).mentions if m.raw["id"] == made["id"])
    host = masto.domain  # the instance's own domain, not the address it is read at
    assert mention == Mention(
        source="mastodon",
        external_id=f"{host}/{made['id']}",
        url=f"https://hachyderm.example/@olga/{made['id']}",
        author="olga@hachyderm.example",
        author_is_brand=False,
        title="Acme rant",
        text=f"@acme @ben Acme's export is <broken> & slow:\n{long_url}\n\nRefund? #AcmeCRM\n\nPoll: yes / no",
        created_at=NOW - timedelta(seconds=120),
        thread_id=None,
        parent_id=f"{host}/{parent['id']}",
        kind="reply",
        language="en",
        site="hachyderm.example",
        link_url=long_url,
    )
    assert mention.raw["tags"] == ["acmecrm"] and mention.raw["uri"].startswith("https://hachyderm.example/users/olga/")


def test_local_accounts_get_the_instance_domain_and_brand_matching_is_strict() -> None:
    local = {"acct": "acme", "url": "https://mastodon.example/@acme"}
    remote = {"acct": "acme@evil.example", "url": "https://evil.example/@acme"}
    assert full_acct(local) == "acme@mastodon.example"
    assert is_brand(local, {"acme@mastodon.example"}) and not is_brand(remote, {"acme@mastodon.example"})
    assert is_brand(local, {"acme"}) and not is_brand(remote, {"acme"})  # a bare name is the local account only


def test_non_latin_text_edits_and_brand_posts(masto: MastodonServer) -> None:
    yuki = masto.add_account("yuki", "mstdn.example")
    ja = masto.post(yuki, "Acme が朝から落ちています 😢 #acmecrm", at=T - 200, language="ja")
    ar = masto.post(masto.ben, "هل Acme متوقف؟ #acmecrm", at=T - 150, language="ar")
    own = masto.post(masto.acme, "Acme 5.2 is out #acmecrm", at=T - 100)
    masto.edit(ja["id"], "Acme が朝から落ちています 😢 (復旧しました) #acmecrm", at=T - 50)
    reader = connector(masto)
    first = reader.fetch(None)
    by_id = {m.raw["id"]: m for m in first.mentions}
    assert by_id[ja["id"]].text == "Acme が朝から落ちています 😢 (復旧しました) #acmecrm" and by_id[ja["id"]].language == "ja"
    assert by_id[ja["id"]].raw["edited_at"] is not None
    assert by_id[ar["id"]].text == "هل Acme متوقف؟ #acmecrm"
    assert by_id[own["id"]].author_is_brand and by_id[own["id"]].author == "acme@mastodon.example"
    masto.edit(ar["id"], "edited again later")
    assert reader.fetch(first.cursor).mentions == []  # an edit is not a new status
    tagged = masto.post(yuki, "エクスポートが遅い #日本語", at=T - 20, language="ja")
    assert local_ids(connector(masto, hashtags=["日本語"]).fetch(None).mentions) == [tagged["id"]]
    assert masto.requests_to("/timelines/tag/")[-1].path == "/api/v1/timelines/tag/%E6%97%A5%E6%9C%AC%E8%AA%9E"  # percent-encoded UTF-8


# -- replies() ---------------------------------------------------------------------------------------------


def test_replies_find_the_earliest_brand_answer_below(masto: MastodonServer) -> None:
    asked = masto.post(masto.ben, "How do I export from Acme? #acmecrm", at=T - 900)
    ignored = masto.post(masto.olga, "Acme never responds #acmecrm", at=T - 850)
    other = masto.post(masto.olga, "@ben same question", at=T - 800, in_reply_to=asked["id"])
    first = masto.post(masto.acme, "@olga @ben Settings → Export", at=T - 700, in_reply_to=other["id"])
    masto.post(masto.acme, "@ben also the API", at=T - 600, in_reply_to=asked["id"])
    reader = connector(masto)
    by_id = {m.raw["id"]: m for m in reader.fetch(None).mentions}
    status = reader.replies(by_id[asked["id"]])
    assert status.answered is True and status.answered_by == "acme@mastodon.example"
    assert status.answered_at == NOW - timedelta(seconds=700) and status.url == first["url"]
    assert reader.replies(by_id[ignored["id"]]).answered is False
    assert masto.requests[-1].path == f"/api/v1/statuses/{ignored['id']}/context"


def test_replies_are_unknown_when_the_status_is_gone_or_the_instance_fails(masto: MastodonServer) -> None:
    asked = masto.post(masto.ben, "Acme? #acmecrm", at=T - 900)
    reader = connector(masto)
    mention = reader.fetch(None).mentions[0]
    masto.fail_next(Response.json({"error": "Internal Server Error"}, 500))
    assert reader.replies(mention).answered is None
    masto.delete(asked["id"])
    assert reader.replies(mention).answered is None
    assert connector(masto, brands=()).replies(mention).answered is None
    assert reader.replies(Mention(source="mastodon", external_id="other.example/123")).answered is None


# -- failures ---------------------------------------------------------------------------------------------


def test_rate_limit_waits_until_the_reset_header(masto: MastodonServer) -> None:
    masto.rate_limit_next(reset_in=120)
    with pytest.raises(ConnectorError) as caught:
        connector(masto).fetch(None)
    assert caught.value.status == 429 and 110 < (caught.value.retry_after or 0) <= 120
    assert "'Too many requests'" in str(caught.value) and "mastodon monitor 'mastodon-test'" in str(caught.value)


def test_a_revoked_token_names_monitor_and_source_but_not_the_token(masto: MastodonServer) -> None:
    masto.revoke(TOKEN)
    with pytest.raises(ConnectorError) as caught:
        connector(masto, access_token=TOKEN).fetch(None)
    message = str(caught.value)
    assert caught.value.status == 401 and "'The access token is invalid'" in message and "Preferences -> Development" in message
    assert message.startswith("mastodon monitor 'mastodon-test': GET ") and TOKEN not in message


@pytest.mark.parametrize("response, words", [
    (Response(200, b"<html>Welcome to nginx</html>", {"Content-Type": "text/html"}), "not JSON"),
    (Response.json({"statuses": []}), "expected a list of statuses"),
    (Response.json([{"id": "9hBx2VwqPZ4Tq", "content": "pleroma"}]), "not a number"),
    (Response.json({"error": "Record not found"}, 404), "HTTP 404"),
    (Response(503, "down for maintenance"), "retries on the next run"),
])
def test_malformed_or_failed_answers_are_connector_errors(masto: MastodonServer, response: Response, words: str) -> None:
    masto.fail_next(response)
    with pytest.raises(ConnectorError, match=words):
        connector(masto).fetch(None)


def test_verify_checks_the_token_and_each_stream(masto: MastodonServer) -> None:
    connector(masto, access_token=TOKEN, search=True).verify()
    assert [r.path for r in masto.requests] == ["/api/v1/accounts/verify_credentials", "/api/v1/timelines/tag/acmecrm",
                                                "/api/v1/notifications", "/api/v2/search"]
    assert all(r.query.get("limit") == ["1"] for r in masto.requests[1:])
    masto.revoke(TOKEN)
    with pytest.raises(ConnectorError) as caught:
        connector(masto, access_token=TOKEN).verify()
    assert caught.value.status == 401 and TOKEN not in str(caught.value)


# -- the real pipeline --------------------------------------------------------------------------------------

def deployment(tmp_path: Path, fake: MastodonServer) -> Deployment:
    return write_deployment(tmp_path, {
        "mastodon-acme": {"connector": "mastodon", "schedule": "*/5 * * * *", "query": "acme", "base_url": fake.url,
                          "access_token": "${EARFUL_TEST_MASTODON_TOKEN}", "hashtags": ["acmecrm"], "search": True},
        "mastodon-old-token": {"connector": "mastodon", "schedule": "*/5 * * * *", "base_url": fake.url,
                               "access_token": "an-old-revoked-token"},
    }, acme_rules({"mastodon": ["acme@mastodon.example"]}), env={"EARFUL_TEST_MASTODON_TOKEN": TOKEN})


def test_end_to_end_three_runs_alert_each_match_once(tmp_path: Path, masto: MastodonServer, capsys: pytest.CaptureFixture[str]) -> None:
    deployed = deployment(tmp_path, masto)
    now = time.time()
    host = masto.domain
    broken = masto.post(masto.olga, "@acme export broken since Tuesday #acmecrm", at=now - 600)
    masto.post(masto.ben, "lunch? #acmecrm", at=now - 500)
    masto.post(masto.acme, "Acme 5.2.1 fixes the broken export #acmecrm", at=now - 400)
    first = deployed.tick()
    outcome = {o.name: o for o in first.monitors}
    assert outcome["mastodon-acme"].ok, outcome["mastodon-acme"].error
    bad = outcome["mastodon-old-token"]
    assert not bad.ok and "monitor 'mastodon-old-token' (mastodon)" in (bad.error or "") and "HTTP 401" in (bad.error or "")
    question = masto.post(masto.ben, "How do I roll Acme back to 5.1?", at=now - 300)  # found by search only
    second = deployed.tick()
    assert second.monitors[0].ok and second.monitors[0].new_items == 1
    refund = masto.post(masto.olga, "@acme refund please", at=now - 200, in_reply_to=broken["id"])  # mention only
    deployed.tick()
    assert sorted(deployed.alerted("mastodon", kind=None)) == sorted(f"mastodon:{host}/{s['id']}" for s in (broken, question, refund))
    masto.fail_next(Response.json({"error": "Internal Server Error"}, 500),  # not the other monitor's request
                    match=lambda request: TOKEN in request.headers.get("authorization", ""))
    deployed.failing_tick("mastodon-acme", "HTTP 500")
    assert TOKEN not in capsys.readouterr().out


def test_demo_source_alerts_the_right_items_once(tmp_path: Path) -> None:
    source = demo_source(time.time())
    with demo_deployment(tmp_path, source) as deployed:
        first = deployed.tick()
        assert first.monitors[0].ok, first.monitors[0].error
        alerted, items = deployed.stored()
        alerts = {item.text[:30]: destination for item, destination in alerted}
        assert sorted(alerts.values()) == ["marketing", "support", "support", "support", "support"]
        assert not any("5.2 is here" in t or "tomatoes" in t for t in alerts)  # the brand's own post, an unrelated one
        assert deployed.tick().monitors[0].alerts == 0
        reader = MastodonConnector(deployed.config.monitors[source.name].options,
                                   ConnectorContext(monitor=source.name, brand_accounts={"mastodon": ("acme@mastodon.example",)}))
        by_text = {m.text[:15]: m for m in items if m is not None}
        assert reader.replies(by_text["How do I connec"]).answered is True
        assert reader.replies(by_text["@acme our expor"]).answered is False
