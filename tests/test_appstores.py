"""App Store (customer-reviews RSS JSON) and Google Play (batchexecute) connectors against the local fake."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.appstore import AppStoreConnector, AppStoreOptions
from earful.connectors.base import ConnectorContext, ConnectorError
from earful.connectors.googleplay import GooglePlayConnector, GooglePlayOptions
from earful.core import Mention
from earful.sandbox.appstores import (
    DEPTH_LIMIT_TEXT,
    PLAY_PREFIX,
    AppStoresServer,
    demo_source,
    demo_sources,
)
from earful.sandbox.server import Response

from .deploy import write_deployment

NOW = datetime(2024, 5, 20, 12, 0, tzinfo=timezone.utc)
APP = "1601234567"
PKG = "example.acme.crm"
BRANDS = {"appstore": ("Acme Inc.",), "googleplay": ("Acme Inc.",)}


@pytest.fixture
def stores() -> Iterator[AppStoresServer]:
    with AppStoresServer() as server:
        server.add_apple_app(APP, "Acme CRM")
        server.add_play_app(PKG, "Acme Inc.")
        yield server  # type: ignore[misc]


def context(monitor: str = "test") -> ConnectorContext:
    return ConnectorContext(monitor=monitor, brand_accounts=BRANDS, now=NOW)


def apple(stores: AppStoresServer, **options: Any) -> AppStoreConnector:
    return AppStoreConnector(AppStoreOptions(**{"app_id": APP, "app_name": "Acme CRM", "base_url": stores.url, **options}), context())


def play(stores: AppStoresServer, **options: Any) -> GooglePlayConnector:
    return GooglePlayConnector(GooglePlayOptions(**{"app_id": PKG, "base_url": stores.url, "page_size": 20, **options}), context())


def add_apple(stores: AppStoresServer, n: int, *, start: int = 0, country: str = "us", **fields: Any) -> list[Any]:
    """`n` reviews, the first one newest (NOW - start hours), one per hour back."""
    made = [stores.add_apple_review(APP, country=country, updated=NOW - timedelta(hours=i),
                                    **{"author": f"user{i}", "rating": 1 + i % 5, "title": f"Title {i}", "text": f"Acme text {i}", **fields})
            for i in range(start + n - 1, start - 1, -1)]  # oldest first, so ids grow with time as Apple's do
    return made[::-1]


def add_play(stores: AppStoresServer, n: int, *, start: int = 0, **fields: Any) -> list[Any]:
    return [stores.add_play_review(PKG, at=NOW - timedelta(minutes=10 * i, microseconds=-123000),
                                   **{"author": f"Player {i}", "rating": 1 + i % 5, "text": f"Acme play text {i}", **fields})
            for i in range(start, start + n)]


def ids(mentions: list[Mention]) -> list[str]:
    return [m.external_id for m in mentions]


def test_registry_finds_the_connectors() -> None:
    assert load("appstore") is AppStoreConnector and load("googleplay") is GooglePlayConnector


def test_options_validate_and_accept_store_urls() -> None:
    assert AppStoreOptions(app_id="https://apps.apple.com/us/app/acme-crm/id1601234567").app_id == APP
    assert AppStoreOptions(app_id="id1601234567", countries=["US", "gb", "us"]).countries == ["us", "gb"]
    assert GooglePlayOptions(app_id=f"https://play.google.com/store/apps/details?id={PKG}&hl=en").app_id == PKG
    for bad in ({"app_id": "acme"}, {"app_id": APP, "countries": ["usa"]}, {"app_id": APP, "countries": []},
                {"app_id": APP, "max_pages": 11}):
        with pytest.raises(ValidationError):
            AppStoreOptions(**bad)
    for bad in ({"app_id": "acme"}, {"app_id": PKG, "sort": "oldest"}, {"app_id": PKG, "lang": "english"}):
        with pytest.raises(ValidationError):
            GooglePlayOptions(**bad)


# -- App Store -----------------------------------------------------------------------------------


def test_appstore_first_run_maps_the_label_wrapped_feed(stores: AppStoresServer) -> None:
    reviews = add_apple(stores, 3, version="5.2.0", vote_sum=4, vote_count=6)
    result = apple(stores).fetch(None)
    assert result.requests == 1 and ids(result.mentions) == [r.id for r in reviews][::-1]
    newest = result.mentions[-1]
    assert (newest.source, newest.kind, newest.external_id, newest.author) == ("appstore", "review", reviews[0].id, "user0")
    assert (newest.title, newest.text, newest.rating) == ("Title 0", "Acme text 0", 1.0)
    assert newest.created_at == NOW and newest.created_at.tzinfo is not None
    assert newest.brand_replied is None  # the feed has no developer responses: unknown, never "not answered"
    assert newest.url == f"https://apps.apple.com/us/app/id{APP}?see-all=reviews&reviewId={reviews[0].id}"
    assert len({m.url for m in result.mentions}) == 3  # one URL per review, so the store never clusters two reviews
    assert newest.site == "Acme CRM (US)"
    assert newest.raw == {"country": "us", "app_id": APP, "version": "5.2.0", "vote_sum": 4, "vote_count": 6, "reply_at": None}
    assert stores.apple_requests()[0].path == f"/us/rss/customerreviews/page=1/id={APP}/sortby=mostrecent/json"
    assert result.cursor == {"countries": {"us": {"max_id": int(reviews[0].id), "newest": NOW.isoformat(), "last_count": 3}}}
    assert apple(stores).replies(newest).answered is None


def test_first_runs_return_only_the_lookback_window(stores: AppStoresServer) -> None:
    recent = add_apple(stores, 1)
    stores.add_apple_review(APP, updated=NOW - timedelta(days=45), author="old", rating=1, title="Old", text="old")
    first = apple(stores).fetch(None)
    assert ids(first.mentions) == [recent[0].id] and apple(stores).fetch(first.cursor).mentions == []
    fresh = add_play(stores, 1)
    stores.add_play_review(PKG, at=NOW - timedelta(days=45), author="old", rating=1, text="old")
    played = play(stores).fetch(None)
    assert ids(played.mentions) == [fresh[0].id] and play(stores).fetch(played.cursor).mentions == []
    assert len(play(stores, first_run_lookback="60d").fetch(None).mentions) == 2
    assert len(play(stores, sort="most_relevant").fetch(None).mentions) == 1


def test_appstore_idle_poll_costs_one_request_per_country(stores: AppStoresServer) -> None:
    add_apple(stores, 2)
    add_apple(stores, 2, country="gb")
    connector = apple(stores, countries=["us", "gb"])
    first = connector.fetch(None)
    assert len(first.mentions) == 4 and {m.raw["country"] for m in first.mentions} == {"us", "gb"}
    idle = connector.fetch(first.cursor)
    assert idle.mentions == [] and idle.requests == 2 and idle.cursor == first.cursor


def test_appstore_new_reviews_across_three_ticks_exactly_once(stores: AppStoresServer) -> None:
    add_apple(stores, 2, start=10)
    connector = apple(stores)
    cursor = connector.fetch(None).cursor
    seen: list[str] = []
    for tick in range(3):
        fresh = add_apple(stores, 2, start=8 - 2 * tick)
        result = connector.fetch(cursor)
        assert sorted(ids(result.mentions)) == sorted(r.id for r in fresh) and result.requests == 1
        seen += ids(result.mentions)
        cursor = result.cursor
    assert len(seen) == len(set(seen)) == 6


def test_appstore_paging_back_after_an_outage_and_the_page_past_the_end(stores: AppStoresServer) -> None:
    add_apple(stores, 5, start=500)
    connector = apple(stores)
    cursor = connector.fetch(None).cursor
    backlog = add_apple(stores, 120, start=100)
    result = connector.fetch(cursor)
    assert sorted(ids(result.mentions)) == sorted(r.id for r in backlog) and result.requests == 3
    # exactly 50 reviews: page 2 is requested and is the page past the end (no `entry` key at all)
    with AppStoresServer() as other:
        other.add_apple_app(APP, "Acme CRM")
        add_apple(other, 50)
        assert "entry" not in json.loads(_get(f"{other.url}/us/rss/customerreviews/page=2/id={APP}/sortby=mostrecent/json"))["feed"]
        full = AppStoreConnector(AppStoreOptions(app_id=APP, base_url=other.url, first_run_pages=3), context()).fetch(None)
        assert len(full.mentions) == 50 and full.requests == 2


def test_appstore_page_depth_text_single_entry_metadata_entry_and_no_dates() -> None:
    with AppStoresServer(entry_dates=False, metadata_entry=True) as old:
        old.add_apple_app(APP, "Acme CRM")
        assert _get(f"{old.url}/us/rss/customerreviews/page=11/id={APP}/sortby=mostrecent/json") == DEPTH_LIMIT_TEXT
        (only,) = add_apple(old, 1)
        feed = json.loads(_get(f"{old.url}/us/rss/customerreviews/page=1/id={APP}/sortby=mostrecent/json"))["feed"]
        assert isinstance(feed["entry"], list) and "im:name" in feed["entry"][0]  # metadata first, then the review
        connector = AppStoreConnector(AppStoreOptions(app_id=APP, base_url=old.url), context())
        first = connector.fetch(None)
        assert ids(first.mentions) == [only.id] and first.mentions[0].created_at == NOW  # from the XML form of the page
        old.metadata_entry = False
        feed = json.loads(_get(f"{old.url}/us/rss/customerreviews/page=1/id={APP}/sortby=mostrecent/json"))["feed"]
        assert isinstance(feed["entry"], dict)  # a single review is an object, not a list
        newer = add_apple(old, 1, start=0, title="Second")
        assert ids(connector.fetch(first.cursor).mentions) == [newer[0].id]
        # the depth-limit text where a page was expected ends the walk instead of failing it
        add_apple(old, 60, start=1000)
        old.fail_next(Response(200, json.dumps(_feed_page(old, 1)), {"Content-Type": "application/json"}),
                      Response(200, _get(f"{old.url}/us/rss/customerreviews/page=1/id={APP}/sortby=mostrecent/xml"),
                               {"Content-Type": "text/xml; charset=UTF-8"}),  # the dates of the dateless JSON page
                      Response(200, DEPTH_LIMIT_TEXT, {"Content-Type": "text/plain; charset=UTF-8"}))
        # (dated now, the 41-day-old reviews fall outside the default 30-day first-run window: widen it)
        deep = AppStoreConnector(AppStoreOptions(app_id=APP, base_url=old.url, first_run_pages=5, first_run_lookback="60d"),
                                 context()).fetch(None)
        assert len(deep.mentions) == 50 and deep.requests == 3 and all(m.created_at for m in deep.mentions)


def _feed_page(server: AppStoresServer, page: int) -> Any:
    return json.loads(_get(f"{server.url}/us/rss/customerreviews/page={page}/id={APP}/sortby=mostrecent/json"))


def _get(url: str) -> str:
    import requests

    return requests.get(url, timeout=5).text


def test_appstore_non_latin_text(stores: AppStoresServer) -> None:
    add_apple(stores, 1, country="fr", author="Zoé", title="L'installation se bloque à 1,90Go",
              text="J'essaye depuis 1heure…\nça m'empêche d'avancer 😤")
    add_apple(stores, 1, country="jp", author="山田", title="ログインできない", text="アップデート後に Acme が起動しません。")
    result = apple(stores, countries=["fr", "jp"]).fetch(None)
    by_country = {m.raw["country"]: m for m in result.mentions}
    assert by_country["fr"].text == "J'essaye depuis 1heure…\nça m'empêche d'avancer 😤" and by_country["fr"].author == "Zoé"
    assert by_country["jp"].title == "ログインできない" and by_country["jp"].site == "Acme CRM (JP)"


def test_appstore_errors_name_monitor_and_keep_going_per_country(stores: AppStoresServer) -> None:
    add_apple(stores, 2)
    add_apple(stores, 2, country="gb")
    connector = apple(stores, countries=["us", "gb"])
    cursor = connector.fetch(None).cursor
    stores.fail_next(Response(503, "Service Unavailable", {"Content-Type": "text/plain"}))
    fresh = add_apple(stores, 1, country="gb", start=0, title="new gb")
    partly = connector.fetch(cursor)
    assert ids(partly.mentions) == [fresh[0].id] and "HTTP 503" in partly.notes[0]
    assert partly.cursor["countries"]["us"] == cursor["countries"]["us"]  # the failed storefront keeps its cursor
    stores.fail_next(*[Response(429, "", {"Retry-After": "60"})] * 2)
    with pytest.raises(ConnectorError, match="appstore monitor 'test'.*HTTP 429") as limited:
        connector.fetch(cursor)
    assert limited.value.retry_after == 60
    stores.fail_next(Response(200, "<html>maintenance</html>", {"Content-Type": "text/html"}))
    with pytest.raises(ConnectorError, match="body is not JSON"):
        apple(stores).fetch(None)
    stores.fail_next(Response(200, '{"feed": {"entry": [{"id": {"label": "abc"}, "im:rating": {"label": "5"}}]}}'))
    with pytest.raises(ConnectorError, match="not a number; the feed format changed"):
        apple(stores).fetch(None)


def test_appstore_feed_emptied_after_reviews_is_an_error(stores: AppStoresServer) -> None:
    add_apple(stores, 3)
    cursor = apple(stores).fetch(None).cursor
    stores.apple[APP].reviews["us"].clear()
    with pytest.raises(ConnectorError, match="has no reviews .* although the last run read 3"):
        apple(stores).fetch(cursor)
    assert apple(stores).fetch(None).mentions == []  # an app that never had reviews is simply empty


# -- Google Play ------------------------------------------------------------------------------------


def test_play_first_run_maps_reviews_and_developer_replies(stores: AppStoresServer) -> None:
    reviews = add_play(stores, 3, thumbs_up=7, version="5.2.0")
    stores.play_reply(PKG, reviews[1].id, "Fixed in 5.2.1, sorry!", NOW + timedelta(hours=1))
    result = play(stores).fetch(None)
    assert result.requests == 1 and ids(result.mentions) == [r.id for r in reviews][::-1]
    answered = result.mentions[1]
    assert answered.brand_replied is True and answered.raw["reply_by"] == "Acme Inc."
    assert answered.raw["reply_at"] == (NOW + timedelta(hours=1)).isoformat()
    assert answered.raw["reply_excerpt"] == "Fixed in 5.2.1, sorry!"
    newest = result.mentions[-1]
    assert newest.brand_replied is False and newest.raw["reply_at"] is None
    assert (newest.source, newest.kind, newest.author, newest.rating, newest.text) == ("googleplay", "review", "Player 0", 1.0, "Acme play text 0")
    assert newest.created_at == NOW + timedelta(microseconds=123000) and newest.language is None and newest.raw["lang"] == "en"
    assert newest.url == f"https://play.google.com/store/apps/details?id={PKG}&reviewId={reviews[0].id}"
    assert (newest.raw["thumbs_up"], newest.raw["version"], newest.site) == (7, "5.2.0", f"{PKG} (US)")
    request = stores.play_requests()[0]
    assert request.method == "POST" and request.arg("rpcids") == "UsvDTd" and request.arg("hl") == "en" and request.arg("gl") == "us"
    f_req = json.loads(parse_qs(request.body.decode())["f.req"][0])
    assert f_req[0][0][0] == "UsvDTd" and json.loads(f_req[0][0][1]) == [[None, None, [2, 2, [20, None, None]], None, []], [PKG, 7]]


def test_play_idle_poll_and_three_ticks(stores: AppStoresServer) -> None:
    add_play(stores, 2, start=20)
    connector = play(stores)
    cursor = connector.fetch(None).cursor
    idle = connector.fetch(cursor)
    assert idle.mentions == [] and idle.requests == 1
    seen: list[str] = []
    for tick in range(3):
        fresh = add_play(stores, 2, start=10 - 3 * tick)
        result = connector.fetch(cursor)
        assert sorted(ids(result.mentions)) == sorted(r.id for r in fresh) and result.requests == 1
        seen += ids(result.mentions)
        cursor = result.cursor
    assert len(seen) == len(set(seen)) == 6


def test_play_paging_back_with_tokens_after_an_outage(stores: AppStoresServer) -> None:
    add_play(stores, 3, start=500)
    connector = play(stores)
    cursor = connector.fetch(None).cursor
    backlog = add_play(stores, 55, start=100)
    result = connector.fetch(cursor)
    assert sorted(ids(result.mentions)) == sorted(r.id for r in backlog) and result.requests == 3
    tokens = [json.loads(json.loads(parse_qs(r.body.decode())["f.req"][0])[0][0][1])[0][2][2][2] for r in stores.play_requests()[-3:]]
    assert tokens[0] is None and all(tokens[1:])
    capped = play(stores, max_pages=1)
    add_play(stores, 30, start=50)
    limited = capped.fetch(result.cursor)
    assert len(limited.mentions) == 20 and "raise `max_pages`" in limited.notes[0]


def test_play_same_second_boundary_and_edited_reviews(stores: AppStoresServer) -> None:
    at = NOW - timedelta(hours=1)
    a = stores.add_play_review(PKG, at=at, author="A", rating=2, text="Acme first")
    connector = play(stores)
    cursor = connector.fetch(None).cursor
    b = stores.add_play_review(PKG, at=at, author="B", rating=3, text="Acme same second")
    second = connector.fetch(cursor)
    assert ids(second.mentions) == [b.id]
    assert connector.fetch(second.cursor).mentions == []
    # an edit moves the review to the top with a new date: it comes back under the same id (an update, not a new item)
    a.text, a.at, a.rating = "Acme first, edited: fixed now", NOW, 4
    edited = connector.fetch(second.cursor)
    assert ids(edited.mentions) == [a.id] and edited.mentions[0].rating == 4.0


def test_play_replies_answered_unanswered_unknown(stores: AppStoresServer) -> None:
    reviews = add_play(stores, 30)
    connector = play(stores)
    mentions = {m.external_id: m for m in connector.fetch(None).mentions}
    before = len(stores.play_requests())
    assert connector.replies(mentions[reviews[2].id]).answered is False
    assert connector.replies(mentions[reviews[3].id]).answered is False
    assert len(stores.play_requests()) == before  # checks reuse what this run's fetch read
    stores.play_reply(PKG, reviews[2].id, "We are on it.", NOW + timedelta(minutes=5))
    connector = play(stores)  # the next run
    status = connector.replies(mentions[reviews[2].id])
    assert (status.answered, status.answered_by, status.answered_at) == (True, "Acme Inc.", NOW + timedelta(minutes=5))
    deep = Mention(source="googleplay", external_id=reviews[25].id, created_at=reviews[25].at)
    assert connector.replies(deep).answered is False  # found on page 2
    assert connector.replies(Mention(source="googleplay", external_id="gone", created_at=NOW)).answered is None
    stores.fail_next(Response(500, "oops"))
    assert play(stores).replies(mentions[reviews[2].id]).answered is None


def test_play_most_relevant_reads_one_page_and_remembers_ids(stores: AppStoresServer) -> None:
    add_play(stores, 5)
    connector = play(stores, sort="most_relevant")
    first = connector.fetch(None)
    assert len(first.mentions) == 5 and len(first.cursor["seen"]) == 5
    fresh = add_play(stores, 1, start=50, thumbs_up=99)
    again = connector.fetch(first.cursor)
    assert ids(again.mentions) == [fresh[0].id] and again.requests == 1
    body = json.loads(json.loads(parse_qs(stores.play_requests()[-1].body.decode())["f.req"][0])[0][0][1])
    assert body[0][2][1] == 1


def test_play_errors_throttling_and_changed_shapes(stores: AppStoresServer) -> None:
    add_play(stores, 2)
    connector = play(stores)
    stores.gateway_errors = 1
    with pytest.raises(ConnectorError, match="PlayGatewayError") as throttled:
        connector.fetch(None)
    assert (throttled.value.retry_after, throttled.value.status) == (600, 429)
    stores.fail_next(Response(429, "<html>Too many</html>", {"Retry-After": "30"}))
    with pytest.raises(ConnectorError, match=r"googleplay monitor 'test': POST .* HTTP 429") as limited:
        connector.fetch(None)
    assert limited.value.retry_after == 30
    stores.fail_next(Response(200, "<!doctype html><title>Sorry</title>", {"Content-Type": "text/html"}))
    with pytest.raises(ConnectorError, match=r"unexpected shape \(the answer does not start with"):
        connector.fetch(None)
    stores.fail_next(Response(200, PLAY_PREFIX + json.dumps([["wrb.fr", "UsvDTd", json.dumps([[["id1", ["x"], 9]]]), None]])))
    with pytest.raises(ConnectorError, match="does not have the .* layout"):
        connector.fetch(None)
    with pytest.raises(ConnectorError, match="HTTP 400( Bad Request)?; the request was rejected; the RPC format may have changed"):
        connector._post({"f.req": "[]"})  # a request the endpoint does not understand
    stores.fail_next(Response(200, PLAY_PREFIX + json.dumps([["er", None, None, None, None, 400]])))
    with pytest.raises(ConnectorError, match="no UsvDTd result in the answer"):
        connector.fetch(None)
    unreachable = play(stores)
    stores.stop()
    with pytest.raises(ConnectorError, match="could not connect to"):
        unreachable.fetch(None)
    stores.start()


def test_play_without_reviews_and_emptied_later(stores: AppStoresServer) -> None:
    empty = play(stores).fetch(None)
    assert empty.mentions == [] and empty.cursor["last_count"] == 0
    add_play(stores, 2)
    cursor = play(stores).fetch(None).cursor
    stores.play[PKG].reviews.clear()
    with pytest.raises(ConnectorError, match="returned no reviews .* although the last run read 2"):
        play(stores).fetch(cursor)


def test_play_non_latin_text(stores: AppStoresServer) -> None:
    stores.add_play_review(PKG, lang="ja", country="jp", at=NOW, author="佐藤", rating=1, text="ログアウトされ続けます 😢")
    (mention,) = play(stores, lang="ja", country="jp").fetch(None).mentions
    assert (mention.author, mention.text, mention.language, mention.raw["lang"]) == ("佐藤", "ログアウトされ続けます 😢", None, "ja")


# -- the real pipeline and the demo ------------------------------------------------------------------

RULES = """\
brand:
  name: Acme
  accounts: {appstore: [Acme Inc.], googleplay: [Acme Inc.]}
rules:
  - id: bad-review
    query: 'rating:<=2 type:review'
    labels: [complaint, review]
    severity: high
"""


def test_end_to_end_three_runs_alert_each_bad_review_once(tmp_path: Path, stores: AppStoresServer) -> None:
    deployed = write_deployment(tmp_path, {
        "appstore-acme": {"connector": "appstore", "schedule": "0 * * * *", "app_id": APP, "countries": ["us", "gb"],
                          "base_url": stores.url},
        "googleplay-acme": {"connector": "googleplay", "schedule": "0 * * * *", "app_id": PKG, "base_url": stores.url},
    }, RULES)
    bad: list[str] = []
    now = datetime.now(timezone.utc)
    for tick in range(3):
        a1 = stores.add_apple_review(APP, updated=now - timedelta(minutes=30 - tick), author=f"a{tick}", rating=1, title="Broken", text="x")
        stores.add_apple_review(APP, country="gb", updated=now - timedelta(minutes=30 - tick), author=f"b{tick}", rating=5, title="Great")
        p1 = stores.add_play_review(PKG, at=now - timedelta(minutes=30 - tick), author=f"p{tick}", rating=2, text="Acme crashes")
        stores.add_play_review(PKG, at=now - timedelta(minutes=29 - tick), author=f"q{tick}", rating=4, text="Fine")
        bad += [f"appstore:{a1.id}", f"googleplay:{p1.id}"]
        report = deployed.tick()
        assert all(m.ok for m in report.monitors), [m.error for m in report.monitors]
        assert [m.new_items for m in report.monitors] == [2, 2]
        assert [m.requests for m in report.monitors] == [2, 1]
    assert sorted(deployed.alerted(kind=None)) == sorted(bad)


def test_demo_sources_serve_sample_data_that_hits_the_rules() -> None:
    now = time.time()
    single = demo_source(now)
    assert single.name == "appstore-acme" and single.monitor["base_url"] == "{url}" and single.monitor["connector"] == "appstore"
    appstore_source, play_source = demo_sources(now)
    assert appstore_source.server is play_source.server
    with appstore_source.server, play_source.server:
        url = appstore_source.server.url
        a = AppStoreConnector(AppStoreOptions(app_id=appstore_source.monitor["app_id"], base_url=url), context()).fetch(None)
        p = GooglePlayConnector(GooglePlayOptions(app_id=play_source.monitor["app_id"], base_url=url), context()).fetch(None)
    assert any(m.rating == 1 and "broken" in m.text.lower() for m in a.mentions) and any(m.rating == 5 for m in a.mentions)
    assert {m.brand_replied for m in p.mentions} == {True, False}
    again = demo_sources(now + 3600)[1].server
    with again:
        later = GooglePlayConnector(GooglePlayOptions(app_id=PKG, base_url=again.url), context()).fetch(None)
    assert ids(later.mentions) and set(ids(later.mentions)) == set(ids(p.mentions))  # stable ids across demo runs
