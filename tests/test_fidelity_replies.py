"""Reply tracking on real data (issue 15, items 9 and 10).

9. A first run or a catch-up over old threads finds questions whose reply
   deadline passed long ago. One found a week or more past it is `late`
   ("found too late"): never checked, never escalated, counted apart in
   `earful report`; one found past its deadline but within the week is
   still tracked, and its alert says it was found late.
10. Review pages name who answered (Trustpilot heads the company's reply
    with its display name; G2 and Capterra say "Response from ..."): that
    name is the query's `answered_by`, and where the page names nobody the
    answer is "on the page", without an invented name.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from earful import connectors
from earful.connectors.base import ConnectorContext, RunResources
from earful.connectors.capterra import CapterraOptions
from earful.connectors.g2 import G2Options
from earful.connectors.trustpilot import TrustpilotConnector, TrustpilotOptions
from earful.core import Mention
from earful.monitors.replies import GIVE_UP_AFTER, answer_note, found_too_late
from earful.monitors.report import kpis
from earful.monitors.runner import run
from earful.monitors.store import Query, Store
from earful.monitors.store.migrations import m006_queries_found_too_late
from earful.sandbox.reviews import ReviewSitesServer

from .deploy import write_deployment
from .fake_connector import SOURCES, Script
from .support import CHANNEL, SLA_RULES, SLACK_ENV, slack_destination

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
COMPLAINT_SLA = timedelta(hours=1)  # SLA_RULES: complaints must be answered within 1h


@pytest.fixture(autouse=True)
def fake_source(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(connectors.CONNECTORS, "fake", "tests.fake_connector")
    SOURCES.clear()
    yield
    SOURCES.clear()


def forum(tmp_path, slack, **options: Any):
    return write_deployment(tmp_path, {"forum": {"connector": "fake", "schedule": "* * * * *", **options}}, SLA_RULES,
                            env=SLACK_ENV, destinations={"support": slack_destination(slack, max_retries=0)}).config


def complaint(external_id: str, posted: datetime) -> Mention:
    return Mention(source="fake", external_id=external_id, url=f"https://fake.example/{external_id}", author="customer",
                   text="acme is broken, I want a refund", created_at=posted, kind="post")


def tracked(config) -> dict[str, Query]:
    store = Store(config.state_path)
    try:
        return {q.item_key: q for q in store.all_queries()}
    finally:
        store.close()


def text_of(slack, key: str) -> str:
    """What a reader sees of the message carrying `key`: its fallback text and every block."""
    (message,) = [m for m in slack.messages(CHANNEL)
                  if ((m.get("metadata") or {}).get("event_payload") or {}).get("key") == key]
    return message["text"] + json.dumps(message.get("blocks") or [], ensure_ascii=False)


# -- 9: found too late -----------------------------------------------------------------


def test_the_boundary_is_a_week_past_the_deadline() -> None:
    deadline = T0 - GIVE_UP_AFTER
    assert found_too_late(T0, deadline)
    assert not found_too_late(T0 - timedelta(seconds=1), deadline)


def test_a_query_found_a_week_past_its_deadline_is_late_never_checked_nor_escalated(tmp_path, slack) -> None:
    config = forum(tmp_path, slack, reply_checks_per_run=1)
    old = [complaint(f"old{i}", T0 - timedelta(days=30 + i)) for i in range(3)]
    fresh = Mention(source="fake", external_id="new", url="https://fake.example/new", author="customer",
                    text="how do i export from acme?", created_at=T0, kind="post")
    SOURCES["forum"] = Script(mentions=[*old, fresh])
    for minutes in range(0, 3 * 24 * 60, 30):  # three days of half-hourly ticks
        run(config, now=T0 + timedelta(minutes=minutes))
    queries = tracked(config)
    for days, mention in enumerate(old, 30):
        query = queries[mention.key]
        assert (query.status, query.next_check_at, query.escalated_at, query.checks) == ("late", None, None, 0)
        note = text_of(slack, f"{mention.key}#support")
        assert f"posted {days}d earlier" in note and "too late to track" in note and "no escalation" in note, note
    assert queries[fresh.key].status == "open" and queries[fresh.key].checks >= 3  # the late ones took no budget
    checked = [key for key, _ in SOURCES["forum"].reply_calls]
    assert fresh.key in checked and not any(m.key in checked for m in old)
    # only the query found in time breaches and escalates
    assert [k for k in slack.posted_keys(CHANNEL) if "#escalation#" in k] == [f"{fresh.key}#escalation#support"]


def test_found_late_but_within_the_week_is_still_tracked(tmp_path, slack) -> None:
    config = forum(tmp_path, slack)
    within = complaint("within", T0 - GIVE_UP_AFTER - COMPLAINT_SLA + timedelta(minutes=1))  # a minute inside the week
    beyond = complaint("beyond", T0 - GIVE_UP_AFTER - COMPLAINT_SLA)  # exactly a week past its deadline
    SOURCES["forum"] = Script(mentions=[within, beyond])
    SOURCES["forum"].answers[within.key] = (T0 + timedelta(seconds=30), "acme_support")
    run(config, now=T0)
    opened = tracked(config)
    assert opened[beyond.key].status == "late" and opened[beyond.key].escalated_at is None
    assert opened[within.key].status == "open" and opened[within.key].next_check_at == T0 + timedelta(minutes=1)
    assert opened[within.key].escalated_at is not None  # its alert says it was found late; no escalation follows
    assert "already past its 1h reply SLA when found" in text_of(slack, f"{within.key}#support")
    run(config, now=T0 + timedelta(minutes=1))
    answered = tracked(config)[within.key]
    assert answered.status == "answered" and answered.answered_by == "acme_support"
    assert [key for key, _ in SOURCES["forum"].reply_calls] == [within.key]
    assert not [k for k in slack.posted_keys(CHANNEL) if "#escalation#" in k]


def test_report_counts_late_queries_apart_within_80_columns(tmp_path, slack, capsys) -> None:
    from earful.monitors.cli import main

    config = forum(tmp_path, slack)
    now = datetime.now(timezone.utc)  # `earful report` reads the wall clock
    SOURCES["forum"] = Script(mentions=[complaint("old", now - timedelta(days=60)), complaint("now", now)])
    run(config, now=now)
    store = Store(config.state_path)
    try:
        (row,) = kpis(config, store, now - timedelta(days=1), now)
    finally:
        store.close()
    assert (row.queries, row.still_open, row.breaches, row.found_too_late) == (1, 1, 0, 1)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--since", "3650d", "--json", "--config", str(config.path)])
    assert exit_info.value.code in (0, None)
    (channel,) = json.loads(capsys.readouterr().out)["channels"]
    assert (channel["queries"], channel["still_open"], channel["found_too_late"]) == (1, 1, 1)
    with pytest.raises(SystemExit):
        main(["report", "--since", "3650d", "--config", str(config.path)])
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines), table
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("channel"))
    assert lines[header].split()[-2:] == ["unknown", "late"] and "…" not in table
    assert lines[header + 2].split() == ["fake", "1", "0", "—", "—", "—", "0", "1", "0", "1"]


def test_the_migration_settles_phantom_open_queries(tmp_path) -> None:
    """Before `late`, such a query opened as `open`, with no next check and `escalated_at` set, forever."""
    path = tmp_path / "state.db"
    store = Store(path)
    try:
        common = dict(monitor="forum", source="fake", sla=COMPLAINT_SLA, business_hours=False, answered_at=None,
                      answered_by=None)
        store.open_query(cluster="fake:old", item_key="fake:old", posted_at=T0 - timedelta(days=30), seen_at=T0,
                         deadline=T0 - timedelta(days=30) + COMPLAINT_SLA, status="open", next_check_at=None,
                         escalated_at=T0, **common)
        store.open_query(cluster="fake:late-ish", item_key="fake:late-ish", posted_at=T0 - timedelta(days=2), seen_at=T0,
                         deadline=T0 - timedelta(days=2) + COMPLAINT_SLA, status="open", next_check_at=T0 + timedelta(days=1),
                         escalated_at=T0, **common)
        store.db["_sqlite_migrations"].delete_where("name = ?", [m006_queries_found_too_late.__name__])
    finally:
        store.close()
    store = Store(path)  # opening an older state file upgrades it
    try:
        queries = {q.cluster: q for q in store.all_queries()}
        assert (queries["fake:old"].status, queries["fake:old"].escalated_at) == ("late", None)
        assert queries["fake:late-ish"].status == "open"
        assert [q.cluster for q in store.queries_due(T0 + timedelta(days=2))] == ["fake:late-ish"]
        assert store.breached_queries(T0) == []
    finally:
        store.close()


# -- 10: who answered, as the page says -------------------------------------------------


def _trustpilot(**options: Any) -> TrustpilotConnector:
    context = ConnectorContext(monitor="tp", brand_accounts={"trustpilot": ("B&H Photo-Video",)}, now=T0)
    return TrustpilotConnector(TrustpilotOptions(product="bhphotovideo.com", **options), context)


def _next_data(business_unit: dict[str, Any]) -> dict[str, Any]:
    """A page's `__NEXT_DATA__` shaped like a recorded Trustpilot page: the `reply` object names nobody."""
    review = {
        "id": "65709c0e6e75b8117f91ec07", "filtered": False, "pending": False, "rating": 1, "likes": 0,
        "title": "Order system glitch", "text": "Could not update the billing address on my order.",
        "labels": {"merged": None, "verification": {"isVerified": True, "verificationLevel": "invited"}},
        "dates": {"experiencedDate": "2023-12-06T00:00:00.000Z", "publishedDate": "2023-12-06T18:06:39.000Z",
                  "updatedDate": None},
        "consumer": {"id": "56189f110000ff0001e1ee53", "displayName": "Jingxiu", "countryCode": "US", "numberOfReviews": 4},
        "reply": {"message": "Thank you for this feedback. -- Henry / B&H", "publishedDate": "2023-12-06T19:48:52.000Z",
                  "updatedDate": None},
        "language": "en", "location": None,
    }
    props = {"businessUnit": business_unit, "reviews": [review],
             "filters": {"pagination": {"currentPage": 1, "perPage": 20, "totalCount": 1, "totalPages": 1}}}
    return {"nextData": json.dumps({"props": {"pageProps": props}})}


def test_trustpilot_reply_is_by_the_business_the_page_names() -> None:
    tp = _trustpilot()
    named = tp.embedded(_next_data({"displayName": "B&H Photo-Video", "numberOfReviews": 1}), "https://x")
    (review,) = named.reviews
    assert review.replied and review.reply_by == "B&H Photo-Video"
    assert review.reply_at == datetime(2023, 12, 6, 19, 48, 52, tzinfo=timezone.utc)
    assert tp.mention(review, set()).raw["reply_by"] == "B&H Photo-Video"
    assert tp._reply_status(review, Mention(source="trustpilot", external_id=review.id)).answered_by == "B&H Photo-Video"
    (anonymous,) = tp.embedded(_next_data({"numberOfReviews": 1}), "https://x").reviews
    assert anonymous.replied and tp.mention(anonymous, set()).raw["reply_by"] is None
    status = tp._reply_status(anonymous, Mention(source="trustpilot", external_id=anonymous.id))
    assert status.answered is True and status.answered_by is None  # not the domain, not "the brand"


def test_an_unnamed_answer_is_answered_on_the_page() -> None:
    query = Query(cluster="g2:1", item_key="g2:1", monitor="g2", source="g2", posted_at=T0, seen_at=T0,
                  deadline=T0 + timedelta(hours=24), sla=timedelta(hours=24), status="answered", checks=1,
                  next_check_at=None, answered_at=T0 + timedelta(hours=2), answered_by=None, answer_url=None,
                  escalated_at=None)
    config = type("NoHours", (), {"business_hours": staticmethod(lambda: None)})()
    assert answer_note(query, config) == "answered on the page after 2h"
    assert answer_note(query.__class__(**{**query.__dict__, "answered_by": "Acme CRM"}), config) == \
        "answered by Acme CRM after 2h"


REVIEW_RULES = """\
brand:
  name: Acme
  accounts: {trustpilot: [Acme CRM], g2: [Acme CRM]}
rules:
  - id: bad-review
    query: 'rating:<=2'
    labels: [complaint]
    reply_within: 24h
"""


@pytest.fixture
def sites() -> Iterator[ReviewSitesServer]:
    with ReviewSitesServer() as server:
        server.add_product("trustpilot", "acme.example", "Acme CRM", vendor="Acme Inc.")
        server.add_product("g2", "acme-crm", "Acme CRM", vendor="Acme Inc.")
        yield server  # type: ignore[misc]


@pytest.mark.chromium
def test_review_sites_name_who_answered_or_say_it_was_answered_on_the_page(tmp_path, slack, sites) -> None:
    sites.unnamed_replies.add("g2")  # G2's response blocks here say nothing about who wrote them
    now = datetime.now(timezone.utc).replace(microsecond=0)
    answered = {site: sites.add_review(site, key, published=now - timedelta(hours=3), author="Ann", rating=1,
                                       title="Refund", text="Still waiting for my refund.")
                for site, key in (("trustpilot", "acme.example"), ("g2", "acme-crm"))}
    waiting = {site: sites.add_review(site, key, published=now - timedelta(hours=2), author="Bo", rating=2,
                                      title="Slow", text="Support is slow.")
               for site, key in (("trustpilot", "acme.example"), ("g2", "acme-crm"))}
    for site, key in (("trustpilot", "acme.example"), ("g2", "acme-crm")):
        sites.respond(site, key, answered[site].id, "Refunded today, sorry.", now - timedelta(hours=1), "Sam Lee")
    monitor = {"schedule": "0 * * * *", "base_url": sites.url, "page_delay": 0}
    deployed = write_deployment(tmp_path, {
        "tp-acme": {"connector": "trustpilot", "product": "acme.example", **monitor},
        "g2-acme": {"connector": "g2", "product": "acme-crm", **monitor},
    }, REVIEW_RULES, env=SLACK_ENV, destinations={"support": slack_destination(slack, max_retries=0)})
    assert all(outcome.ok for outcome in deployed.tick(now=now).monitors)
    first = tracked(deployed.config)
    assert (first[f"trustpilot:{answered['trustpilot'].id}"].status, first[f"trustpilot:{answered['trustpilot'].id}"].answered_by) \
        == ("answered", "Acme CRM")
    assert (first[f"g2:{answered['g2'].id}"].status, first[f"g2:{answered['g2'].id}"].answered_by) == ("answered", None)
    for site, key in (("trustpilot", "acme.example"), ("g2", "acme-crm")):
        assert first[f"{site}:{waiting[site].id}"].status == "open"
        sites.respond(site, key, waiting[site].id, "We are on it.", now - timedelta(minutes=30))
    assert all(outcome.ok for outcome in deployed.tick(now=now + timedelta(minutes=10)).monitors)
    later = tracked(deployed.config)
    tp_key, g2_key = f"trustpilot:{waiting['trustpilot'].id}", f"g2:{waiting['g2'].id}"
    assert (later[tp_key].status, later[tp_key].answered_by) == ("answered", "Acme CRM")
    assert (later[g2_key].status, later[g2_key].answered_by) == ("answered", None)
    assert "answered by Acme CRM after" in text_of(slack, f"{tp_key}#support")
    g2_text = text_of(slack, f"{g2_key}#support")
    assert "answered on the page after" in g2_text and "answered by" not in g2_text
    assert "the brand" not in json.dumps([q.answered_by for q in later.values()])


@pytest.mark.chromium
@pytest.mark.parametrize("site, key, options", [("g2", "acme-crm", G2Options), ("capterra", "2001234/Acme-CRM", CapterraOptions)])
def test_g2_and_capterra_carry_the_responder_the_block_names(sites, site: str, key: str, options: Any) -> None:
    sites.add_product("capterra", "2001234/Acme-CRM", "Acme CRM", vendor="Acme Inc.")
    now = datetime(2024, 5, 20, 12, 0, tzinfo=timezone.utc)
    review = sites.add_review(site, key, published=now - timedelta(hours=3), author="Ann", rating=1,
                              title="Refund", text="Still waiting.")
    sites.respond(site, key, review.id, "Refunded.", now - timedelta(hours=1))
    resources = RunResources()
    try:
        context = ConnectorContext(monitor=site, brand_accounts={site: ("Acme CRM",)}, now=now, resources=resources)

        def connector() -> Any:
            return connectors.load(site)(options(product=key, base_url=sites.url, page_delay=0, timeout=10), context)

        (mention,) = connector().fetch(None).mentions
        assert mention.raw["reply_by"] == "Acme Inc."  # "Response from Acme Inc.": the vendor the page names
        sites.unnamed_replies.add(site)
        status = connector().replies(mention)
        assert status.answered is True and status.answered_by is None
    finally:
        resources.close_all()
