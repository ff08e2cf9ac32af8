"""G2, Capterra and Trustpilot connectors: real chromium (Playwright) reading the local fake review pages.

One browser serves the whole module (`browser` fixture, a RunResources
closed at the end), as one browser serves a whole run in production; the
fake server is fresh per test. `page_delay` is 0 everywhere.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.base import ConnectorContext, ConnectorError, RunResources
from earful.connectors.browser import (
    CHROMIUM_ENV,
    RESOURCE_KEY,
    BrowserOptions,
    proxy_settings,
    shared_browser,
)
from earful.connectors.capterra import CapterraConnector, CapterraOptions
from earful.connectors.g2 import G2Connector, G2Options
from earful.connectors.reviews import ReviewCursor, json_ld, parse_rating, parse_when
from earful.connectors.trustpilot import TrustpilotConnector, TrustpilotOptions
from earful.core import Mention
from earful.sandbox.reviews import ReviewSitesServer, demo_source, demo_sources
from earful.sandbox.server import Response

from .deploy import write_deployment

pytestmark = pytest.mark.chromium

NOW = datetime(2024, 5, 20, 12, 0, tzinfo=timezone.utc)
G2, CAPTERRA, TRUSTPILOT = ("g2", "acme-crm"), ("capterra", "2001234/Acme-CRM"), ("trustpilot", "acme.example")
CLASSES = {"g2": (G2Connector, G2Options), "capterra": (CapterraConnector, CapterraOptions),
           "trustpilot": (TrustpilotConnector, TrustpilotOptions)}
BRANDS = {"g2": ("Acme CRM",), "capterra": ("Acme CRM",), "trustpilot": ("Acme CRM",)}


@pytest.fixture(scope="module")
def browser() -> Iterator[RunResources]:
    """The run's shared resources: the first connector starts chromium, the end of the module closes it."""
    resources = RunResources()
    yield resources
    resources.close_all()


@pytest.fixture
def sites() -> Iterator[ReviewSitesServer]:
    with ReviewSitesServer() as server:
        for site, key in (G2, CAPTERRA, TRUSTPILOT):
            server.add_product(site, key, "Acme CRM", vendor="Acme Inc.")
        yield server  # type: ignore[misc]


def connector(sites: ReviewSitesServer, resources: RunResources, site: str = "g2", monitor: str = "test", **options: Any):
    cls, opts = CLASSES[site]
    product = {"g2": G2[1], "capterra": CAPTERRA[1], "trustpilot": TRUSTPILOT[1]}[site]
    settings = {"product": product, "base_url": sites.url, "page_delay": 0, "timeout": 10, **options}
    context = ConnectorContext(monitor=monitor, brand_accounts=BRANDS, now=NOW, resources=resources)
    return cls(opts(**settings), context)


def add(sites: ReviewSitesServer, site_key: tuple[str, str], n: int, *, start: int = 0, hours: float = 5, **fields: Any) -> list[Any]:
    """`n` reviews, newest first from NOW - start*hours, one every `hours`."""
    site, key = site_key
    out = []
    for i in range(start, start + n):
        defaults = {"author": f"Reviewer {i}", "rating": 1 + i % 5, "title": f"Review number {i}",
                    "text": f"Acme review body {i}.", "role": "Sales Manager", "company_size": "Small-Business (50 or fewer emp.)"}
        out.append(sites.add_review(site, key, published=NOW - timedelta(hours=hours * i), **{**defaults, **fields}))
    return out


def ids(mentions: list[Mention]) -> list[str]:
    return [m.external_id for m in mentions]


# -- registry and options ---------------------------------------------------------------


def test_registry_finds_the_connectors() -> None:
    assert load("g2") is G2Connector and load("capterra") is CapterraConnector and load("trustpilot") is TrustpilotConnector


@pytest.mark.parametrize("cls, given, stored", [
    (G2Options, "https://www.g2.com/products/acme-crm/reviews?order=most_recent", "acme-crm"),
    (G2Options, "acme-crm", "acme-crm"),
    (CapterraOptions, "https://www.capterra.com/p/2001234/Acme-CRM/reviews/", "2001234/Acme-CRM"),
    (CapterraOptions, "2001234/Acme-CRM", "2001234/Acme-CRM"),
    (TrustpilotOptions, "https://www.trustpilot.com/review/acme.example?page=2", "acme.example"),
    (TrustpilotOptions, "Acme.Example", "acme.example"),
])
def test_product_accepts_the_site_url_or_its_id(cls: Any, given: str, stored: str) -> None:
    assert cls(product=given).product == stored


@pytest.mark.parametrize("cls, bad", [(G2Options, "acme crm"), (CapterraOptions, "Acme-CRM"), (TrustpilotOptions, "acme")])
def test_bad_product_is_a_config_error_with_an_example(cls: Any, bad: str) -> None:
    with pytest.raises(ValidationError, match="e.g."):
        cls(product=bad)


def test_browser_options_defaults_proxy_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    options = G2Options(product="acme-crm")
    assert (options.page_delay, options.max_pages, options.first_run_pages, options.user_agent) == (1.0, 10, 1, None)
    monkeypatch.setenv(CHROMIUM_ENV, "/opt/chromium/chrome")
    assert G2Options(product="acme-crm").browser_path == "/opt/chromium/chrome"
    with pytest.raises(ValidationError, match="proxy"):
        G2Options(product="acme-crm", proxy="ftp://proxy")
    secret = G2Options(product="acme-crm", proxy="http://bob:s3cr%40t@proxy.example:3128")
    assert "s3cr" not in repr(secret) and "s3cr" not in str(secret.model_dump())
    assert proxy_settings(secret.proxy) == {"server": "http://proxy.example:3128", "username": "bob", "password": "s3cr@t"}
    assert proxy_settings(None) is None
    with pytest.raises(ValidationError):
        G2Options(product="acme-crm", colour="blue")


def test_dates_and_ratings_parse_the_forms_sites_use() -> None:
    assert parse_when("2024-05-01") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert parse_when("2023-12-07T11:23:40.000Z") == datetime(2023, 12, 7, 11, 23, 40, tzinfo=timezone.utc)
    assert parse_when("May 1, 2024") == parse_when("Reviewed on May 1st, 2024") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert parse_when("yesterday") is None
    assert (parse_rating("4.0"), parse_rating(9, 10), parse_rating("Rated 2 out of 5 stars"), parse_rating("7")) == (4.0, 4.5, 2.0, None)


def test_structured_data_parsing_tolerates_broken_and_nested_blocks() -> None:
    graph = {"@context": "https://schema.org", "@graph": [
        {"@type": ["Organization", "Thing"], "name": "Acme CRM",
         "aggregateRating": {"@type": "AggregateRating", "ratingValue": "8.2", "bestRating": "10", "reviewCount": "1,204"}},
        {"@type": "Review", "author": [{"@type": "Person", "name": "Jo"}], "datePublished": "2024-05-01",
         "reviewRating": {"ratingValue": 9, "bestRating": 10}, "name": "Good", "reviewBody": "<p>Fine &amp; fast</p>"}]}
    reviews, aggregate = json_ld(["{not json", json.dumps(graph), None])
    assert (aggregate.count, aggregate.rating, aggregate.name) == (1204, 4.1, "Acme CRM")
    assert [(r.author, r.rating, r.title, r.text, r.created_at) for r in reviews] == [
        ("Jo", 4.5, "Good", "Fine & fast", datetime(2024, 5, 1, tzinfo=timezone.utc))]
    trustpilot = TrustpilotConnector(TrustpilotOptions(product="acme.example"), ConnectorContext(monitor="t"))
    assert trustpilot.embedded({"nextData": "{oops"}, "") == "the page's __NEXT_DATA__ is not JSON"
    assert "no props.pageProps.reviews" in trustpilot.embedded({"nextData": '{"props": {"pageProps": {}}}'}, "")
    shape_changed = {"nextData": json.dumps({"props": {"pageProps": {"reviews": [{"id": "a1", "rating": 2, "dates": {}}]}}})}
    assert trustpilot.embedded(shape_changed, "").reviews[0].replied is None  # no `reply` key: unknown, not "unanswered"


# -- first run, idle, incremental, paging back -----------------------------------------------


def test_g2_first_run_reads_one_page_maps_reviews_and_idles_cheaply(sites: ReviewSitesServer, browser: RunResources) -> None:
    reviews = add(sites, G2, 30)
    sites.respond("g2", G2[1], reviews[0].id, "Thanks Reviewer 0, fixed in 5.2.", NOW + timedelta(hours=2), "Sam Lee")
    g2 = connector(sites, browser)
    result = g2.fetch(None)
    assert result.requests == 1 and len(sites.page_requests("g2")) == 1
    assert ids(result.mentions) == [r.id for r in reviews[:25]][::-1]  # oldest first, page 1 only
    newest = result.mentions[-1]
    assert newest.source == "g2" and newest.kind == "review" and newest.external_id == reviews[0].id
    assert newest.url == f"https://www.g2.com/products/acme-crm/reviews/acme-crm-review-{reviews[0].id}"
    assert (newest.author, newest.title, newest.rating, newest.site) == ("Reviewer 0", "Review number 0", 1.0, "Acme CRM")
    assert newest.created_at == datetime(2024, 5, 20, tzinfo=timezone.utc)  # G2 shows dates, not times
    assert "What do you like best about Acme CRM?" in newest.text and "Acme review body 0." in newest.text
    assert newest.brand_replied is True and newest.raw["reply_at"] == "2024-05-20T00:00:00+00:00"
    assert newest.raw["reply_by"] == "Sam Lee of Acme CRM" and newest.raw["reply_excerpt"].startswith("Thanks Reviewer 0")
    assert newest.raw["role"] == "Sales Manager" and newest.raw["company_size"] == "Small-Business (50 or fewer emp.)"
    assert result.mentions[0].brand_replied is False and result.mentions[0].raw["reply_at"] is None
    assert [r.path for r in sites.requests if r.path.startswith("/static/")] == []  # avatars (images) were never fetched
    assert sites.page_requests("g2")[0].query["order"] == ["most_recent"]
    cursor = ReviewCursor.load(result.cursor)
    assert cursor.last_parsed == 25 and cursor.total == 30 and len(cursor.seen) == 25
    assert cursor.horizon == datetime(2024, 5, 15, tzinfo=timezone.utc)  # the first window was cut short
    # the idle poll: one page, nothing new, the same reviews remembered
    idle = g2.fetch(result.cursor)
    assert idle.mentions == [] and idle.requests == 1 and len(sites.page_requests("g2")) == 2
    assert ReviewCursor.load(idle.cursor).seen == cursor.seen


def test_first_run_returns_only_the_lookback_window_but_remembers_all(sites: ReviewSitesServer, browser: RunResources) -> None:
    recent = add(sites, CAPTERRA, 2)
    old = add(sites, CAPTERRA, 2, start=40, hours=24)  # 40 and 41 days old
    capterra = connector(sites, browser, "capterra")
    first = capterra.fetch(None)
    assert sorted(ids(first.mentions)) == sorted(r.id for r in recent)
    assert set(ReviewCursor.load(first.cursor).seen) == {r.id for r in recent + old}
    assert capterra.fetch(first.cursor).mentions == []
    assert CapterraOptions(product="1/x", first_run_lookback="60d").first_run_lookback == timedelta(days=60)
    assert CapterraOptions(product="1/x", first_run_lookback="12h").first_run_lookback == timedelta(hours=12)


def test_new_reviews_across_three_ticks_are_found_exactly_once(sites: ReviewSitesServer, browser: RunResources) -> None:
    add(sites, G2, 3, start=10)
    g2 = connector(sites, browser)
    cursor = g2.fetch(None).cursor
    found: list[str] = []
    for tick in range(3):
        fresh = add(sites, G2, 2, start=8 - 2 * tick - 1, hours=0.5)  # newer reviews each tick
        result = g2.fetch(cursor)
        assert sorted(ids(result.mentions)) == sorted(r.id for r in fresh)
        found += ids(result.mentions)
        cursor = result.cursor
    assert len(found) == len(set(found)) == 6


def test_paging_back_after_an_outage_reads_until_the_last_seen_review(sites: ReviewSitesServer, browser: RunResources) -> None:
    add(sites, G2, 10, start=200)
    g2 = connector(sites, browser)
    cursor = g2.fetch(None).cursor
    backlog = add(sites, G2, 60, start=100, hours=1)
    before = len(sites.page_requests("g2"))
    result = g2.fetch(cursor)
    assert sorted(ids(result.mentions)) == sorted(r.id for r in backlog)
    assert result.requests == 3 and len(sites.page_requests("g2")) - before == 3  # 25 + 25 + 10 new, then the seen ones
    assert [r.query.get("page") for r in sites.page_requests("g2")[before:]] == [None, ["2"], ["3"]]
    assert g2.fetch(result.cursor).mentions == []


def test_max_pages_caps_a_catch_up_and_the_skipped_ones_stay_skipped(sites: ReviewSitesServer, browser: RunResources) -> None:
    add(sites, G2, 5, start=300)
    g2 = connector(sites, browser, max_pages=2)
    cursor = g2.fetch(None).cursor
    add(sites, G2, 80, start=100, hours=1)
    result = g2.fetch(cursor)
    assert len(result.mentions) == 50 and result.requests == 2
    assert result.notes and "raise `max_pages`" in result.notes[0]
    later = g2.fetch(result.cursor)
    assert later.mentions == [] and later.requests == 1


def test_capterra_maps_cards_json_ld_and_vendor_response(sites: ReviewSitesServer, browser: RunResources) -> None:
    first, second = add(sites, CAPTERRA, 2, pros="Fast search.", cons="Support never responds.",
                        role="Office Manager", industry="Retail", company_size="11-50 employees")
    sites.respond("capterra", CAPTERRA[1], second.id, "We called you back today.", NOW - timedelta(hours=1), "Acme CRM")
    result = connector(sites, browser, "capterra").fetch(None)
    by_id = {m.external_id: m for m in result.mentions}
    answered, open_ = by_id[second.id], by_id[first.id]
    assert answered.brand_replied is True and answered.raw["reply_by"] == "Acme CRM"
    assert answered.raw["reply_at"] == "2024-05-20T00:00:00+00:00"
    assert open_.brand_replied is False
    assert open_.url == f"https://www.capterra.com/p/2001234/Acme-CRM/reviews/{first.id}/"
    assert open_.text.startswith("Acme review body 0.") and "Pros" in open_.text and "Support never responds." in open_.text
    assert (open_.rating, open_.title, open_.author) == (1.0, "Review number 0", "Reviewer 0")
    assert open_.raw["industry"] == "Retail" and open_.raw["time_used"] == "1-2 years"
    assert sites.page_requests("capterra")[0].query["sort"] == ["most_recent"]


def test_trustpilot_reads_next_data_with_the_company_reply(sites: ReviewSitesServer, browser: RunResources) -> None:
    first, second = add(sites, TRUSTPILOT, 2, country="GB")
    sites.respond("trustpilot", TRUSTPILOT[1], second.id, "Sorry Reviewer 1, we refunded you.", NOW - timedelta(hours=1))
    result = connector(sites, browser, "trustpilot").fetch(None)
    by_id = {m.external_id: m for m in result.mentions}
    assert by_id[second.id].brand_replied is True and by_id[second.id].raw["reply_at"] == "2024-05-20T11:00:00+00:00"
    assert by_id[second.id].raw["reply_by"] == "Acme CRM"
    mention = by_id[first.id]
    assert mention.brand_replied is False and mention.url == f"https://www.trustpilot.com/reviews/{first.id}"
    assert (mention.created_at, mention.language, mention.raw["country"], mention.raw["verified"]) == (NOW, "en", "GB", True)
    assert sites.page_requests("trustpilot")[0].query["sort"] == ["recency"]


def test_trustpilot_without_next_data_falls_back_to_the_cards(sites: ReviewSitesServer, browser: RunResources) -> None:
    reviews = add(sites, TRUSTPILOT, 3)
    sites.respond("trustpilot", TRUSTPILOT[1], reviews[1].id, "Fixed, thanks!", NOW)
    from_state = connector(sites, browser, "trustpilot").fetch(None).mentions
    sites.layout["trustpilot"] = "no-next-data"
    from_cards = connector(sites, browser, "trustpilot").fetch(None).mentions
    assert [(m.external_id, m.rating, m.title, m.text, m.created_at, m.brand_replied) for m in from_cards] == \
           [(m.external_id, m.rating, m.title, m.text, m.created_at, m.brand_replied) for m in from_state]
    assert from_cards[1].raw["reply_at"] == NOW.isoformat()


def test_non_latin_text_survives(sites: ReviewSitesServer, browser: RunResources) -> None:
    sites.add_review("trustpilot", TRUSTPILOT[1], published=NOW, author="山田太郎", rating=2, language="ja",
                     title="サポートが返事をくれない 😞", text="Acme のサポートに三回メールしました。\n\nまだ返事がありません。")
    sites.add_review("g2", G2[1], published=NOW, author="Zoë Ångström", rating=2, title="Überzeugt nicht — «support»",
                     text="Данные пропали после импорта.")
    tp = connector(sites, browser, "trustpilot").fetch(None).mentions[0]
    assert (tp.author, tp.title, tp.language) == ("山田太郎", "サポートが返事をくれない 😞", "ja")
    assert tp.text == "Acme のサポートに三回メールしました。\n\nまだ返事がありません。"
    g2 = connector(sites, browser).fetch(None).mentions[0]
    assert (g2.author, g2.title) == ("Zoë Ångström", "Überzeugt nicht — «support»") and "Данные пропали" in g2.text


def test_product_without_reviews_is_fine_when_the_page_says_so(sites: ReviewSitesServer, browser: RunResources) -> None:
    for site in ("g2", "capterra", "trustpilot"):
        result = connector(sites, browser, site).fetch(None)
        assert result.mentions == [] and ReviewCursor.load(result.cursor).last_parsed == 0, site
    assert connector(sites, browser, "trustpilot").fetch(result.cursor).mentions == []


def test_deleted_and_edited_reviews(sites: ReviewSitesServer, browser: RunResources) -> None:
    reviews = add(sites, G2, 4)
    g2 = connector(sites, browser)
    cursor = g2.fetch(None).cursor
    sites.remove_review("g2", G2[1], reviews[0].id)  # the newest review is taken down
    reviews[1].title = "Edited: still broken"
    after = g2.fetch(cursor)
    assert after.mentions == []  # neither an error nor a repeat
    fresh = add(sites, G2, 1, start=0, hours=0, title="A new one")
    assert ids(g2.fetch(after.cursor).mentions) == [fresh[0].id]


# -- replies() -------------------------------------------------------------------------------


def test_replies_reads_the_vendor_response_block(sites: ReviewSitesServer, browser: RunResources) -> None:
    reviews = add(sites, G2, 30)
    sites.respond("g2", G2[1], reviews[27].id, "Sorry about that.", NOW - timedelta(days=5), "Sam Lee")
    g2 = connector(sites, browser)
    mentions = {m.external_id: m for m in g2.fetch(None).mentions}
    unanswered = g2.replies(mentions[reviews[3].id])
    assert unanswered.answered is False and unanswered.answered_at is None
    # a review from page 2, answered after the first run saw it
    page_two = Mention(source="g2", external_id=reviews[27].id, url="https://www.g2.com/x", created_at=reviews[27].published)
    status = g2.replies(page_two)
    assert status.answered is True and status.answered_by == "Sam Lee of Acme CRM"
    assert status.answered_at == datetime(2024, 5, 15, tzinfo=timezone.utc) and status.url == "https://www.g2.com/x"
    gone = Mention(source="g2", external_id="1", created_at=NOW - timedelta(days=400))
    assert g2.replies(gone).answered is None
    before = len(sites.page_requests("g2"))
    assert [g2.replies(mentions[r.id]).answered for r in reviews[:5]] == [False] * 5
    assert len(sites.page_requests("g2")) == before  # checks reuse the pages this run already read
    sites.bot_check["g2"] = "cloudflare"
    fresh = connector(sites, browser)
    assert fresh.replies(mentions[reviews[3].id]).answered is None  # errors are "unknown", never "answered"


# -- health: layout changes, walls, bot checks, HTTP errors ---------------------------------


def test_changed_layout_is_a_health_failure_naming_the_site(sites: ReviewSitesServer, browser: RunResources) -> None:
    add(sites, G2, 30)
    g2 = connector(sites, browser, monitor="g2-acme")
    cursor = g2.fetch(None).cursor
    sites.layout["g2"] = "redesign"
    with pytest.raises(ConnectorError) as failure:
        g2.fetch(cursor)
    message = str(failure.value)
    assert message.startswith("g2 monitor 'g2-acme': the review page loaded but none of the 3 review selectors matched (layout changed?)")
    assert f"{sites.url}/products/acme-crm/reviews?order=most_recent" in message
    assert "the page's AggregateRating says 30 reviews" in message and "last successful parse: 25 reviews" in message


def test_changed_layout_on_a_first_run_is_caught_by_the_aggregate_rating(sites: ReviewSitesServer, browser: RunResources) -> None:
    add(sites, CAPTERRA, 3)
    sites.layout["capterra"] = "redesign"
    with pytest.raises(ConnectorError, match=r"^capterra monitor 'test': .*none of the 3 review selectors matched.*says 3 reviews"):
        connector(sites, browser, "capterra").fetch(None)


def test_review_ids_that_change_form_fail_instead_of_realerting(sites: ReviewSitesServer, browser: RunResources) -> None:
    add(sites, G2, 10, start=1)
    g2 = connector(sites, browser)
    cursor = g2.fetch(None).cursor
    add(sites, G2, 1, start=0, hours=0)
    sites.layout["g2"] = "new-ids"
    with pytest.raises(ConnectorError, match=r"none of the 11 review ids .* is one earlier runs saw, although 8 of the "
                                             r"reviews are older than the newest seen .*the G2 review ids changed form"):
        g2.fetch(cursor)


def test_a_field_selector_that_stops_matching_is_named(sites: ReviewSitesServer, browser: RunResources) -> None:
    add(sites, G2, 3)
    sites.layout["g2"] = "no-rating"
    with pytest.raises(ConnectorError, match=r"g2 monitor 'test': 3 of 3 reviews .* have no rating .*itemprop='reviewRating'"):
        connector(sites, browser).fetch(None)


def test_trustpilot_state_and_cards_both_changed(sites: ReviewSitesServer, browser: RunResources) -> None:
    add(sites, TRUSTPILOT, 3)
    sites.layout["trustpilot"] = "redesign"
    with pytest.raises(ConnectorError) as failure:
        connector(sites, browser, "trustpilot").fetch(None)
    message = str(failure.value)
    assert message.startswith("trustpilot monitor 'test': the review page loaded but none of the 3 review selectors matched")
    assert "no props.pageProps.reviews list" in message and "says 3 reviews" in message


def test_consent_wall_fails_and_a_banner_over_a_readable_page_does_not(sites: ReviewSitesServer, browser: RunResources) -> None:
    add(sites, TRUSTPILOT, 3)
    sites.consent["trustpilot"] = "banner"
    assert len(connector(sites, browser, "trustpilot").fetch(None).mentions) == 3
    sites.consent["trustpilot"] = "wall"
    with pytest.raises(ConnectorError, match=r"^trustpilot monitor 'test': a consent overlay \(#onetrust-consent-sdk, "
                                             r"covering \d+% of the window\) hides the Trustpilot reviews"):
        connector(sites, browser, "trustpilot").fetch(None)


@pytest.mark.parametrize("kind, detail", [("cloudflare", "cf-mitigated: challenge"), ("captcha", "iframe[src*='captcha']")])
def test_bot_checks_are_reported_not_taken_for_an_empty_page(sites: ReviewSitesServer, browser: RunResources,
                                                             kind: str, detail: str) -> None:
    add(sites, G2, 3)
    sites.bot_check["g2"] = kind
    with pytest.raises(ConnectorError) as failure:
        connector(sites, browser).fetch(None)
    assert "G2 answered with a bot check instead of the reviews" in str(failure.value) and detail in str(failure.value)
    assert (failure.value.status == 403) == (kind == "cloudflare")


def test_ignored_sort_parameter_is_an_error(sites: ReviewSitesServer, browser: RunResources) -> None:
    add(sites, G2, 6, hours=30)
    sites.ignore_sort.add("g2")
    with pytest.raises(ConnectorError, match="not newest first .*ignored the sort parameter"):
        connector(sites, browser).fetch(None)


def test_http_errors_rate_limits_and_timeouts(sites: ReviewSitesServer, browser: RunResources) -> None:
    add(sites, G2, 3)
    g2 = connector(sites, browser, timeout=10)  # roomy: these pages answer at once; a loaded CI box is slow
    page = lambda request: request.path.startswith("/products/")  # noqa: E731 - not a browser's side request
    sites.fail_next(Response(429, "<h1>Too Many Requests</h1>", {"Retry-After": "120", "Content-Type": "text/html"}), match=page)
    with pytest.raises(ConnectorError, match="rate-limited") as limited:
        g2.fetch(None)
    assert (limited.value.retry_after, limited.value.status) == (120.0, 429)
    sites.fail_next(Response(503, "<h1>Service Unavailable</h1>", {"Content-Type": "text/html"}), match=page)
    with pytest.raises(ConnectorError, match="answered HTTP 503; server error") as down:
        g2.fetch(None)
    assert down.value.status == 503
    with pytest.raises(ConnectorError, match=r"HTTP 404; check `product` \('no-such-crm'\)"):
        connector(sites, browser, product="no-such-crm").fetch(None)
    slow = sites.hold_next(page)
    with pytest.raises(ConnectorError, match="did not finish loading within 0.5s"):
        connector(sites, browser, timeout=0.5).fetch(None)
    slow.release()


def test_unreachable_site_and_missing_browser(sites: ReviewSitesServer, browser: RunResources) -> None:
    g2 = connector(sites, browser)
    sites.stop()
    with pytest.raises(ConnectorError, match=r"could not load http://127\.0\.0\.1:\d+/products/.*connection refused"):
        g2.fetch(None)
    sites.start()
    with pytest.raises(ConnectorError, match=r"no chromium at /nonexistent/chromium; .*`browser_path` / \$EARFUL_CHROMIUM"):
        connector(sites, browser, browser_path="/nonexistent/chromium").fetch(None)


# -- demo --------------------------------------------------------------------------------------


def test_demo_sources_share_one_server_and_hit_the_demo_rules(browser: RunResources) -> None:
    single = demo_source(NOW.timestamp())
    assert single.name == "g2-acme" and single.monitor["connector"] == "g2" and single.monitor["base_url"] == "{url}"
    sources = demo_sources(NOW.timestamp())
    assert [s.monitor["connector"] for s in sources] == ["g2", "capterra", "trustpilot"]
    assert len({id(s.server) for s in sources}) == 1
    with sources[0].server, sources[1].server:  # reference-counted: still up after one exit
        pass
    server = sources[0].server
    with server:
        seen: dict[str, list[Mention]] = {}
        for source in sources:
            options = {k: v for k, v in source.monitor.items() if k not in ("connector", "schedule")}
            cls, opts = CLASSES[source.monitor["connector"]]
            options["base_url"] = server.url
            context = ConnectorContext(monitor=source.name, brand_accounts=BRANDS, resources=browser, now=NOW)
            seen[source.monitor["connector"]] = cls(opts(**options), context).fetch(None).mentions
    g2 = seen["g2"]
    assert any(m.rating == 1 and m.brand_replied is False and "never responds" in m.text.lower() for m in g2)
    assert any(m.brand_replied is True for m in g2) and any(m.rating == 5 for m in g2)
    assert all(seen[site] for site in seen)


# -- one browser per run --------------------------------------------------------------------


def _chromium_descendants() -> set[int]:
    """Live (non-zombie) chromium processes below this test process."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            parents[int(entry)], names[int(entry)] = int(fields[1]), name
    found = set()
    for pid, name in names.items():
        ancestor = parents.get(pid)
        while ancestor and ancestor != os.getpid():
            ancestor = parents.get(ancestor)
        if ancestor == os.getpid() and "chrom" in name.lower():
            found.add(pid)
    return found


def test_one_browser_per_run_and_none_left_after_close_all(sites: ReviewSitesServer, browser: RunResources) -> None:
    """The module's resources stand for one run: all three sites used one browser; closing the run leaves no chromium."""
    add(sites, G2, 2)
    add(sites, CAPTERRA, 2)
    add(sites, TRUSTPILOT, 2)
    for site in ("g2", "capterra", "trustpilot"):
        assert len(connector(sites, browser, site).fetch(None).mentions) == 2
    shared = browser.get(RESOURCE_KEY, lambda: pytest.fail("a second browser was started"))
    assert shared_browser(ConnectorContext(monitor="x", resources=browser), BrowserOptions(), "x")[0] is shared
    assert _chromium_descendants(), "chromium should be running during the run"
    browser.close_all()
    deadline = time.monotonic() + 5
    while _chromium_descendants() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _chromium_descendants() == set()


# -- the real pipeline ----------------------------------------------------------------------

RULES = """\
brand:
  name: Acme
  accounts: {g2: [Acme CRM]}
rules:
  - id: bad-review
    query: 'rating:<=2 source:g2'
    labels: [complaint, review]
    severity: high
    reply_within: 24h
"""


def test_end_to_end_three_runs_alert_each_bad_review_once(tmp_path: Path, sites: ReviewSitesServer,
                                                         browser: RunResources) -> None:
    browser.close_all()  # each `run` starts and closes its own browser, as a cron tick does
    deployed = write_deployment(tmp_path, {
        "g2-acme": {"connector": "g2", "schedule": "0 * * * *", "product": "acme-crm", "base_url": sites.url, "page_delay": 0},
    }, RULES)
    now = datetime.now(timezone.utc)
    bad = [sites.add_review("g2", G2[1], published=now - timedelta(days=3), author="A", rating=1, title="Never responds", text="x"),
           sites.add_review("g2", G2[1], published=now - timedelta(days=3), author="B", rating=5, title="Great", text="y")][:1]
    sites.add_review("g2", G2[1], published=now - timedelta(days=90), author="Z", rating=1, title="Ancient", text="old")
    assert deployed.tick().monitors[0].ok
    bad.append(sites.add_review("g2", G2[1], published=now - timedelta(days=2), author="C", rating=2, title="Meh", text="z"))
    sites.add_review("g2", G2[1], published=now - timedelta(days=2), author="D", rating=4, title="Fine", text="w")
    second = deployed.tick()
    assert second.monitors[0].ok and second.monitors[0].new_items == 2 and second.monitors[0].requests == 1
    bad.append(sites.add_review("g2", G2[1], published=now - timedelta(days=1), author="E", rating=1, title="Lost data", text="v"))
    third = deployed.tick()
    assert third.monitors[0].ok and third.monitors[0].new_items == 1
    assert sorted(deployed.alerted(kind=None)) == sorted(f"g2:{r.id}" for r in bad)


