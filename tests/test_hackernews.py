"""The hackernews connector against the fake Algolia API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.base import ConnectorContext, ConnectorError
from earful.connectors.hackernews import (
    HackerNewsConnector,
    HackerNewsOptions,
    hit_mention,
)
from earful.connectors.pushdown import all_words_queries as pushdown
from earful.core import Mention
from earful.sandbox.hackernews import HackerNewsServer
from earful.sandbox.server import Response

FIXTURES = Path(__file__).parent / "fixtures" / "hn"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
T = int(NOW.timestamp())


@pytest.fixture
def hn() -> Iterator[HackerNewsServer]:
    with HackerNewsServer() as fake:
        yield fake  # type: ignore[misc]


def context(query: str | None = 'acme OR "acme crm"') -> ConnectorContext:
    return ConnectorContext(monitor="test", query=query, brand_accounts={"hackernews": ("acmehq",)}, now=NOW)


def connector(hn: HackerNewsServer, query: str | None = 'acme OR "acme crm"', **options: Any) -> HackerNewsConnector:
    return HackerNewsConnector(HackerNewsOptions(base_url=hn.url, **options), context(query))


def searches(hn: HackerNewsServer) -> list[dict[str, str]]:
    return [{k: v[-1] for k, v in r.query.items()} for r in hn.requests_to("/search_by_date")]


def test_registry_finds_the_connector() -> None:
    assert load("hackernews") is HackerNewsConnector


# -- query pushdown --------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, sent",
    [
        ('acme OR "acme crm"', ["acme"]),
        ("acme", ["acme"]),
        ('"acme crm"', ['"acme crm"']),
        ('"acme crm" OR "acme api"', ["acme"]),
        ('acme (broken OR refund OR "never respond*") -"job offer"', ["acme"]),
        ("acme.com OR acme", ["acme"]),
        ("acme OR globex", ["acme", "globex"]),
        ("(acme OR globex) crm", ["crm"]),
        ("acme AND crm", ["acme crm"]),
        ("acme broken OR refund", ["acme"]),  # AND binds looser than OR, as in the rules language
        ('acme -spam type:post|comment title:"acme crm"', ['acme "acme crm"']),
        ("acme | globex", ["acme", "globex"]),
        ("“acme crm”", ['"acme crm"']),
    ],
)
def test_pushdown(query: str, sent: list[str]) -> None:
    assert pushdown(query) == sent


@pytest.mark.parametrize("query", ["acme OR -spam", "acm*", "NOT acme", "source:reddit"])
def test_pushdown_refuses_a_branch_that_matches_everything(query: str) -> None:
    with pytest.raises(ValueError, match="OR-branch"):
        pushdown(query)


def test_unsearchable_query_is_a_connector_error_with_advice(hn: HackerNewsServer) -> None:
    with pytest.raises(ConnectorError, match="set `search`"):
        connector(hn, "acme OR -spam").fetch(None)
    with pytest.raises(ConnectorError, match="no query"):
        connector(hn, None).fetch(None)
    assert hn.requests == []


# -- cursor ------------------------------------------------------------------------------


def test_first_run_reads_only_the_lookback_window(hn: HackerNewsServer) -> None:
    hn.add_story(title="Acme CRM was great in 2022", created_at_i=T - 3 * 86400)
    recent = hn.add_story(title="Acme CRM 4.0 is out", url="https://www.acme.com/blog/4-0", created_at_i=T - 3600)
    result = connector(hn).fetch(None)
    assert [m.external_id for m in result.mentions] == [recent["objectID"]]
    (sent,) = searches(hn)
    assert sent["numericFilters"] == f"created_at_i>={T - 86400}"
    assert sent["query"] == "acme" and sent["tags"] == "(story,comment)" and sent["hitsPerPage"] == "100"
    assert result.cursor == {"created_at_i": T - 3600, "seen_at_max": [recent["objectID"]]}


def test_first_run_lookback_option_accepts_short_durations(hn: HackerNewsServer) -> None:
    hn.add_story(title="Acme two days ago", created_at_i=T - 2 * 86400)
    assert len(connector(hn, first_run_lookback="3d").fetch(None).mentions) == 1
    assert searches(hn)[-1]["numericFilters"] == f"created_at_i>={T - 3 * 86400}"


def test_idle_poll_is_one_request_and_nothing_new(hn: HackerNewsServer) -> None:
    hn.add_story(title="Acme CRM 4.0 is out", created_at_i=T - 60)
    hn_connector = connector(hn)
    cursor = hn_connector.fetch(None).cursor
    before = len(hn.requests)
    idle = hn_connector.fetch(cursor)
    assert idle.mentions == [] and idle.requests == 1 and len(hn.requests) == before + 1
    assert idle.cursor == cursor
    assert searches(hn)[-1]["numericFilters"] == f"created_at_i>={T - 60}"


def test_incremental_returns_only_new_items(hn: HackerNewsServer) -> None:
    story = hn.add_story(title="Acme CRM 4.0 is out", created_at_i=T - 60)
    hn_connector = connector(hn)
    cursor = hn_connector.fetch(None).cursor
    comment = hn.add_comment(parent_id=story["objectID"], text="Is acme still slow on mobile?", author="jdoe", created_at_i=T + 30)
    result = hn_connector.fetch(cursor)
    assert [m.external_id for m in result.mentions] == [comment["objectID"]]
    assert result.cursor == {"created_at_i": T + 30, "seen_at_max": [comment["objectID"]]}


def test_items_sharing_the_boundary_second_are_neither_lost_nor_repeated(hn: HackerNewsServer) -> None:
    a = hn.add_story(title="Acme one", created_at_i=T)
    b = hn.add_story(title="Acme two", created_at_i=T)
    hn_connector = connector(hn)
    first = hn_connector.fetch(None)
    assert {m.external_id for m in first.mentions} == {a["objectID"], b["objectID"]}
    assert first.cursor["seen_at_max"] == sorted([a["objectID"], b["objectID"]])
    late = hn.add_story(title="Acme three, indexed a moment later", created_at_i=T)  # same second
    second = hn_connector.fetch(first.cursor)
    assert [m.external_id for m in second.mentions] == [late["objectID"]]
    assert hn_connector.fetch(second.cursor).mentions == []


def test_pagination_across_pages(hn: HackerNewsServer) -> None:
    created = [hn.add_story(title=f"Acme story {n}", created_at_i=T - 1000 + n)["objectID"] for n in range(12)]
    result = connector(hn, hits_per_page=5).fetch(None)
    assert [m.external_id for m in result.mentions] == created  # oldest first
    assert [s["page"] for s in searches(hn)] == ["0", "1", "2"]
    assert result.requests == 3 and "pending" not in result.cursor


def test_a_second_filling_whole_pages_is_finished_in_one_run(hn: HackerNewsServer) -> None:
    """Stopping inside one second would re-read the same first page forever: finish it, then stop."""
    burst = [hn.add_story(title=f"Acme burst {n}", created_at_i=T - 10)["objectID"] for n in range(6)]
    older = [hn.add_story(title=f"Acme older {n}", created_at_i=T - 20 - n)["objectID"] for n in range(3)]
    hn_connector = connector(hn, hits_per_page=2, max_pages=1)
    first = hn_connector.fetch(None)
    assert sorted(m.external_id for m in first.mentions) == sorted(burst + older[:2])
    assert first.requests == 4  # three pages of the busy second, one more to see time move on
    assert first.cursor["seen_at_max"] == sorted(burst)
    assert first.cursor["pending"][0]["to"] == T - 21
    second = hn_connector.fetch(first.cursor)
    assert [m.external_id for m in second.mentions] == older[2:]
    assert "pending" not in second.cursor
    assert hn_connector.fetch(second.cursor).mentions == []


def test_budget_leaves_a_pending_window_read_on_later_runs(hn: HackerNewsServer) -> None:
    ids = {hn.add_story(title=f"Acme item {n}", created_at_i=T - 5000 + 10 * n)["objectID"] for n in range(25)}
    hn_connector = connector(hn, hits_per_page=5, max_pages=2)
    first = hn_connector.fetch(None)
    assert len(first.mentions) == 10 and first.requests == 2
    assert first.cursor["pending"] and first.notes
    newest = max(m.created_at for m in first.mentions)
    assert first.cursor["created_at_i"] == int(newest.timestamp())
    fresh = hn.add_story(title="Acme item arriving meanwhile", created_at_i=T + 5)["objectID"]
    ids.add(fresh)
    seen = [m.external_id for m in first.mentions]
    cursor = first.cursor
    runs = 0
    while cursor.get("pending"):
        result = hn_connector.fetch(cursor)
        assert result.requests <= 2
        seen += [m.external_id for m in result.mentions]
        cursor = result.cursor
        runs += 1
        assert runs < 20
    assert seen.count(fresh) == 1
    assert sorted(seen) == sorted(ids)
    assert connector(hn, hits_per_page=5).fetch(cursor).mentions == []


def test_catch_up_beyond_algolias_1000_hits_narrows_the_window(hn: HackerNewsServer) -> None:
    ids = [hn.add_story(title=f"Acme flood {n}", created_at_i=T - 20000 + 10 * n)["objectID"] for n in range(1500)]
    result = connector(hn, hits_per_page=200, max_pages=20).fetch(None)
    got = [m.external_id for m in result.mentions]
    assert got == ids and len(set(got)) == 1500
    sent = searches(hn)
    assert all(int(s["page"]) * 200 < 1000 for s in sent)
    assert any("created_at_i<=" in s["numericFilters"] for s in sent)
    assert result.requests == len(sent) <= 9
    assert "pending" not in result.cursor


# -- mapping ------------------------------------------------------------------------------


def test_story_mapping_and_brand_account(hn: HackerNewsServer) -> None:
    story = hn.add_story(
        title="Acme CRM 4.0: offline mode",
        author="AcmeHQ",
        url="https://www.acme.com/blog/offline",
        text="We rebuilt sync from scratch.\n\nAsk us anything about it.",
        created_at_i=T - 120,
        points=42,
    )
    (mention,) = connector(hn).fetch(None).mentions
    assert mention == Mention(
        source="hackernews",
        external_id=story["objectID"],
        url=f"https://news.ycombinator.com/item?id={story['objectID']}",
        author="AcmeHQ",
        author_is_brand=True,
        title="Acme CRM 4.0: offline mode",
        text="We rebuilt sync from scratch.\n\nAsk us anything about it.",
        created_at=NOW - timedelta(seconds=120),
        thread_id=story["objectID"],
        kind="post",
        site="acme.com",
        link_url="https://www.acme.com/blog/offline",
    )
    assert mention.raw["url"] == "https://www.acme.com/blog/offline" and mention.raw["points"] == 42


def test_ask_hn_without_url_sits_on_hacker_news(hn: HackerNewsServer) -> None:
    hn.add_story(title="Ask HN: Is Acme CRM support always this slow?", author="jdoe", created_at_i=T - 5)
    (mention,) = connector(hn).fetch(None).mentions
    assert mention.site == "news.ycombinator.com" and "ask_hn" in mention.raw["tags"]
    assert not mention.author_is_brand


def test_comment_mapping_unescapes_hn_html(hn: HackerNewsServer) -> None:
    story = hn.add_story(title="Ask HN: Which CRM do small teams like?", author="founder", created_at_i=T - 600)
    parent = hn.add_comment(parent_id=story["objectID"], text="We use HubSpot.", author="someone", created_at_i=T - 500)
    long_url = "https://status.acme.com/incidents/2024-04-23-export-api-degraded-performance"
    comment = hn.add_comment(
        parent_id=parent["objectID"],
        text=f"Acme's export API is broken: {long_url}\n\nSupport won't answer <anything> & \"priority\" means nothing.",
        author="throwaway_sre",
        created_at_i=T - 400,
    )
    assert "&#x27;" in comment["comment_text"] and "&#x2F;" in comment["comment_text"] and "<p>" in comment["comment_text"]
    assert comment["comment_text"].count("...") == 1  # HN shortens long link text
    (mention,) = connector(hn).fetch(None).mentions
    assert mention.kind == "comment"
    assert mention.text == f"Acme's export API is broken: {long_url}\n\nSupport won't answer <anything> & \"priority\" means nothing."
    assert mention.title == "Ask HN: Which CRM do small teams like?"
    assert mention.thread_id == story["objectID"] and mention.parent_id == parent["objectID"]
    assert mention.url == f"https://news.ycombinator.com/item?id={comment['objectID']}"
    assert mention.site == "news.ycombinator.com"
    assert mention.created_at == NOW - timedelta(seconds=400)


def test_recorded_2014_shape_with_null_fields(hn: HackerNewsServer) -> None:
    reply = json.loads((FIXTURES / "search_by_date_legacy.json").read_text())
    hn.fail_next(Response.json(reply))
    hn_connector = HackerNewsConnector(
        HackerNewsOptions(base_url=hn.url),
        ConnectorContext(monitor="test", query="acme", brand_accounts={"hackernews": ("acmehq",)}, now=datetime(2024, 4, 30, 12, tzinfo=timezone.utc)),
    )
    story, comment = hn_connector.fetch(None).mentions
    assert story.kind == "post" and story.text == "" and story.site == "github.com"
    assert story.title == "Show HN: An open-source importer from Acme CRM to Postgres"
    assert story.thread_id == "40211500" and story.parent_id is None
    assert comment.kind == "comment" and comment.thread_id == "40211877" and comment.parent_id == "40212003"
    assert comment.text == (
        "We pay for Acme CRM and the export API has been broken for a week: "
        "https://status.acme.com/incidents/2024-04-23-export-api-degraded-performance\n\n"
        "Their support hasn't answered a single ticket. Does anyone know a person there?\n\n"
        'Edit: "priority support" <> priority, apparently.'
    )
    assert comment.created_at == datetime(2024, 4, 30, 9, 40, 12, tzinfo=timezone.utc)


def test_fake_takes_hit_fields_with_explicit_ids(hn: HackerNewsServer) -> None:
    """Sample data (the demo's) gives ids, stored HN HTML and thread sizes directly."""
    hn.add_story(42100002, title="Why we left Acme CRM", author="dkr", created_at_i=T - 900, num_comments=41)
    hn.add_comment(
        42100011,
        story_id=42100002,
        parent_id=42100002,
        author="tmk",
        comment_text="Our Acme export is broken, &quot;priority&quot; support is silent.<p>Refund?",
        created_at_i=T - 800,
    )
    hn.add_comment(42100099, story_id=42100077, parent_id=42100077, text="Acme thread we do not hold", created_at_i=T - 700)
    story, comment, orphan = connector(hn).fetch(None).mentions
    assert story.external_id == "42100002" and story.raw["num_comments"] == 41
    assert comment.text == 'Our Acme export is broken, "priority" support is silent.\n\nRefund?'
    assert comment.thread_id == "42100002" and comment.title == "Why we left Acme CRM"
    assert orphan.thread_id == "42100077" and orphan.title == ""
    with pytest.raises(ValueError, match="exists"):
        hn.add_story(42100002, title="again")


def test_hit_mention_without_brand_accounts() -> None:
    hit = {"objectID": 7, "created_at_i": T, "author": "acmehq", "title": "x", "_tags": ["story"]}
    assert hit_mention(hit, set()).author_is_brand is False
    assert hit_mention(hit, set()).external_id == "7"


# -- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response, problem",
    [
        (Response(200, b'{"hits": [', {"Content-Type": "application/json"}), "not JSON"),
        (Response(200, b"<html>Service Unavailable</html>", {"Content-Type": "text/html"}), "not JSON"),
        (Response.json({"hits": "none", "nbHits": 0, "nbPages": 0, "hitsPerPage": 100}), "'hits' is not a list"),
        (Response.json({"results": []}), "'hits' is missing"),
        (Response.json({"hits": [{"title": "no id"}], "nbHits": 1, "nbPages": 1, "hitsPerPage": 100}), "lacks objectID"),
    ],
)
def test_malformed_replies_are_connector_errors(hn: HackerNewsServer, response: Response, problem: str) -> None:
    hn.fail_next(response)
    with pytest.raises(ConnectorError) as caught:
        connector(hn).fetch({"created_at_i": T - 10, "seen_at_max": []})
    message = str(caught.value)
    assert problem in message
    assert "hackernews monitor 'test'" in message and f"{hn.url}/api/v1/search_by_date" in message


def test_rate_limit_sets_retry_after(hn: HackerNewsServer) -> None:
    hn.fail_next(Response.json({"message": "Too many requests", "status": 429}, 429, {"Retry-After": "30"}))
    with pytest.raises(ConnectorError) as caught:
        connector(hn).fetch(None)
    assert caught.value.retry_after == 30 and caught.value.status == 429


def test_options_validate() -> None:
    with pytest.raises(ValidationError):
        HackerNewsOptions(hits_per_page=5000)
    with pytest.raises(ValidationError):
        HackerNewsOptions(tags=["story", "comment)"])
    with pytest.raises(ValidationError):
        HackerNewsOptions(hits_per_pge=10)
    assert HackerNewsOptions(tags="(story,poll),author_pg").tag_filter == "(story,poll),author_pg"
    assert HackerNewsOptions(first_run_lookback="12h").first_run_lookback == timedelta(hours=12)


# -- several searches, explicit search ------------------------------------------------------


def test_or_without_common_word_runs_one_search_per_branch(hn: HackerNewsServer) -> None:
    a = hn.add_story(title="Acme launches", created_at_i=T - 50)
    g = hn.add_story(title="Globex launches", created_at_i=T - 40)
    both = hn.add_story(title="Acme vs Globex", created_at_i=T - 30)
    hn_connector = connector(hn, "acme OR globex")
    first = hn_connector.fetch(None)
    assert sorted(m.external_id for m in first.mentions) == sorted([a["objectID"], g["objectID"], both["objectID"]])
    assert set(first.cursor["searches"]) == {"acme", "globex"}
    idle = hn_connector.fetch(first.cursor)
    assert idle.mentions == [] and idle.requests == 2


def test_explicit_search_is_sent_verbatim(hn: HackerNewsServer) -> None:
    hn.add_story(title="Acme pricing page", created_at_i=T - 5)
    connector(hn, "ignored", search='"acme pricing"', tags=["story"]).fetch(None)
    sent = searches(hn)[-1]
    assert sent["query"] == '"acme pricing"' and sent["tags"] == "(story)"


# -- replies -----------------------------------------------------------------------------------


def test_replies_finds_the_earliest_brand_answer_in_the_tree(hn: HackerNewsServer) -> None:
    hn.fail_next(Response.json(json.loads((FIXTURES / "item_40212345.json").read_text())))
    mention = Mention(source="hackernews", external_id="40212345", kind="comment")
    status = connector(hn).replies(mention)
    assert status.answered is True
    assert status.answered_by == "acmehq"
    assert status.answered_at == datetime(2024, 4, 30, 10, 20, 3, tzinfo=timezone.utc)
    assert status.url == "https://news.ycombinator.com/item?id=40212588"
    assert hn.requests[-1].path == "/api/v1/items/40212345"


def test_replies_against_the_fake_tree(hn: HackerNewsServer) -> None:
    story = hn.add_story(title="Ask HN: Acme export broken?", author="jdoe", created_at_i=T - 900)
    answered = hn.add_comment(parent_id=story["objectID"], text="Same for us with Acme", author="ann", created_at_i=T - 800)
    hn.add_comment(parent_id=answered["objectID"], text="Fixed now, sorry!", author="AcmeHQ", created_at_i=T - 700)
    ignored = hn.add_comment(parent_id=story["objectID"], text="Acme never replies to me", author="bob", created_at_i=T - 600)
    hn_connector = connector(hn)
    by_id = {m.external_id: m for m in hn_connector.fetch(None).mentions}
    assert hn_connector.replies(by_id[answered["objectID"]]).answered is True
    assert hn_connector.replies(by_id[ignored["objectID"]]).answered is False
    assert hn_connector.replies(by_id[story["objectID"]]).answered is True  # a descendant answered


def test_replies_unknown_on_errors_or_without_brand_accounts(hn: HackerNewsServer) -> None:
    mention = Mention(source="hackernews", external_id="999")
    assert connector(hn).replies(mention).answered is None  # 404 from the fake
    hn.fail_next(Response(502, "bad gateway"))
    assert connector(hn).replies(Mention(source="hackernews", external_id="1")).answered is None
    no_brand = HackerNewsConnector(HackerNewsOptions(base_url=hn.url), ConnectorContext(monitor="test", query="acme"))
    assert no_brand.replies(mention).answered is None


# -- the fake itself behaves like Algolia ------------------------------------------------------


def test_fake_caps_reachable_hits_at_1000(hn: HackerNewsServer) -> None:
    import requests

    for n in range(1200):
        hn.add_story(title=f"Acme {n}", created_at_i=T - n)
    reply = requests.get(f"{hn.url}/api/v1/search_by_date", params={"query": "acme", "hitsPerPage": 100, "page": 9}, timeout=5).json()
    assert reply["nbHits"] == 1200 and reply["nbPages"] == 10 and len(reply["hits"]) == 100
    deeper = requests.get(f"{hn.url}/api/v1/search_by_date", params={"query": "acme", "hitsPerPage": 100, "page": 10}, timeout=5).json()
    assert deeper["hits"] == []


def test_fake_tags_and_numeric_filters(hn: HackerNewsServer) -> None:
    import requests

    story = hn.add_story(title="Acme CRM", author="pg", created_at_i=T - 100)
    hn.add_comment(parent_id=story["objectID"], text="acme rocks", author="pg", created_at_i=T - 50)
    hn.add_story(title="Unrelated", author="pg", created_at_i=T - 10)

    def ids(**params: Any) -> list[str]:
        reply = requests.get(f"{hn.url}/api/v1/search_by_date", params=params, timeout=5).json()
        return [h["_tags"][0] for h in reply["hits"]]

    assert ids(query="acme", tags="(story,comment)") == ["comment", "story"]
    assert ids(query="acme", tags="comment,author_pg") == ["comment"]
    assert ids(query="acme", numericFilters=f"created_at_i>{T - 100}") == ["comment"]
    assert ids(query='"acme crm"') == ["story"]
    assert ids(query="acme -rocks") == ["story"]
    assert ids(query="", tags="story", numericFilters=f"created_at_i>={T - 100},created_at_i<{T}") == ["story", "story"]
