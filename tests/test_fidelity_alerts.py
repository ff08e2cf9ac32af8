"""Alerts say what the customer wrote, and answered items open no tickets (issue 15, items 11 and 12).

Comments, replies and chat messages carry their thread's title (an Instagram
launch post, a Reddit link title, a Telegram group's name). Headlined with
it, a complaint reads as the brand's own launch post on a phone
notification and in a ticket list; the headline is the writer's own words,
the thread shown as context. And an item the brand had already answered
when earful found it is no ticket; its alert says who answered.

The end-to-end tests run the real Instagram connector against the sandbox's
Graph API fake (a launch post, a complaint under it, a question the brand
answered) into the fake Slack, Jira and Zendesk.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import pytest

from earful.alerts import format as fmt
from earful.alerts import tickets as tk
from earful.alerts.email import EmailDestination, EmailOptions
from earful.alerts.slack import build_blocks, build_text
from earful.core import Alert, Match, Mention
from earful.monitors import digest as dg
from earful.monitors import digest_render as render
from earful.monitors.routing import Router
from earful.monitors.store import Store
from earful.sandbox.jira import DEFAULT_API_TOKEN as JIRA_TOKEN
from earful.sandbox.jira import DEFAULT_EMAIL as JIRA_EMAIL
from earful.sandbox.jira import JiraServer
from earful.sandbox.meta import instagram_demo_source
from earful.sandbox.zendesk import DEFAULT_API_TOKEN as ZENDESK_TOKEN
from earful.sandbox.zendesk import DEFAULT_EMAIL as ZENDESK_EMAIL
from earful.sandbox.zendesk import ZendeskServer

from .deploy import CONSOLE, Deployment, write_deployment
from .support import CHANNEL, SLACK_ENV, slack_destination

LAUNCH = "Meet Acme CRM 5.2 ✨ offline mode is here. #crm #sales"
COMPLAINT = "The Acme app keeps crashing since the update, totally broken on my iPhone"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


def comment(ident: str = "17900000000000001", text: str = COMPLAINT, **changes: Any) -> Mention:
    """An Instagram comment as the connector maps it: the media's caption is its title."""
    base = Mention(source="instagram", external_id=ident, url=f"https://www.instagram.com/p/C0acme52/c/{ident}/",
                   author="kai_sells", title=LAUNCH, text=text, created_at=T0, thread_id="17800000000000001",
                   parent_id="17800000000000001", kind="comment", brand_replied=False, site="instagram.com")
    return base.replace(**changes)


def alert_of(mention: Mention, kind: str = "alert") -> Alert:
    match = Match(mention_key=mention.key, rule_id="complaint", pack="acme", labels=("complaint",), severity="high")
    return Alert(key=f"{mention.key}#support", cluster=mention.key, destination="support", monitor="instagram-acme",
                 mentions=(mention,), matches=(match,), kind=kind)


# -- item 11: one headline, the writer's own words ------------------------------------------------------


def test_a_comment_is_headlined_by_its_own_words_with_the_thread_as_context() -> None:
    subject = fmt.subject(comment(), 200)
    assert subject == f"{COMPLAINT} (on: {LAUNCH})"
    assert fmt.title_line(comment(), 200) == ""
    assert fmt.context_line(comment(), 200) == f"on: {LAUNCH}"


def test_the_headline_is_the_first_sentence_or_line_cut_at_a_word() -> None:
    text = ("Acme keeps logging me out every few minutes since Tuesday. I tried clearing the cache, reinstalling, "
            "and another browser.\nStill broken.")
    assert fmt.subject(comment(text=text), 200).startswith("Acme keeps logging me out every few minutes since Tuesday. (on: Meet")
    first_line = fmt.subject(comment(text="Acme export is broken again\nwe lost a day of work"), 200)
    assert first_line.startswith("Acme export is broken again (on: ")
    greeting = fmt.opening("Hi team!\nThe Acme app crashes on start. It did not before.", 120)
    assert greeting == "Hi team! The Acme app crashes on start."  # a greeting alone says nothing
    rambling = fmt.opening("acme " + "sync keeps failing and nobody from support got back to us " * 5, 120)
    assert len(rambling) <= 120 and rambling.endswith("…") and rambling[:-1] == rambling[:-1].rstrip()
    assert ("acme " + "sync keeps failing and nobody from support got back to us " * 5).startswith(rambling[:-1])
    assert fmt.opening("アプリがクラッシュします。更新してから毎回です。助けてください。", 120) == "アプリがクラッシュします。更新してから毎回です。"


def test_the_thread_gives_way_when_room_is_short_and_stands_in_for_a_wordless_comment() -> None:
    assert fmt.subject(comment(), len(COMPLAINT) + 12) == COMPLAINT  # no room worth a context
    squeezed = fmt.subject(comment(), len(COMPLAINT) + 40)
    assert squeezed.startswith(f"{COMPLAINT} (on: Meet Acme") and squeezed.endswith("…)") and len(squeezed) <= len(COMPLAINT) + 40
    assert fmt.subject(comment(text="📷"), 200) == "📷 (on: Meet Acme CRM 5.2 ✨ offline mode is here. #crm #sales)"
    assert fmt.subject(comment(text=""), 200) == f"on: {LAUNCH}"


def test_posts_reviews_and_earfuls_own_notices_keep_their_titles() -> None:
    post = comment(kind="post", parent_id=None, title="Acme CRM 5.2 is broken", text="Since the update nothing syncs.")
    assert fmt.subject(post, 200) == "Acme CRM 5.2 is broken" and fmt.title_line(post, 200) == "Acme CRM 5.2 is broken"
    tweet = comment(kind="post", parent_id=None, title="", text="@acme your app is broken. Again.")
    assert fmt.subject(tweet, 200) == "@acme your app is broken. Again."
    review = comment(kind="review", parent_id=None, title="Support never answers", text="Three weeks, no reply.")
    assert fmt.subject(review, 200) == "Support never answers"
    notice = Mention(source="earful", external_id="health:ig:1:unwatched", kind="message", title="Channel unwatched: ig (instagram)",
                     text="the last 3 runs failed")
    assert fmt.subject(notice, 200) == "Channel unwatched: ig (instagram)" and fmt.context_line(notice, 200) == ""


def test_group_messages_and_thread_replies_of_other_sources_read_the_same_way() -> None:
    telegram = Mention(source="telegram", external_id="-100123:77", kind="message", title="Acme CRM Users",
                       text="does anyone know why Acme sync stopped?\nsince 9am", site="t.me")
    assert fmt.subject(telegram, 200) == "does anyone know why Acme sync stopped? (on: Acme CRM Users)"
    hn = Mention(source="hackernews", external_id="41000002", kind="comment", title="Acme raises $40M Series B",
                 text="Acme's API has been down for hours and the status page says all green. Classic.", parent_id="41000001")
    assert fmt.subject(hn, 200) == ("Acme's API has been down for hours and the status page says all green. "
                                    "(on: Acme raises $40M Series B)")


def test_slack_fallback_text_and_blocks_lead_with_the_complaint() -> None:
    alert = alert_of(comment())
    text = build_text(alert)
    assert text.startswith("🟠 High · complaint · Instagram — kai_sells on Instagram · instagram.com: The Acme app keeps crashing")
    assert text.index(COMPLAINT) < text.index("Meet Acme CRM 5.2")
    quote = next(b for b in (block.to_dict() for block in build_blocks(alert)) if b.get("text", {}).get("text", "").startswith("on: "))
    assert quote["text"]["text"] == f"on: {LAUNCH}\n>{COMPLAINT}"  # the launch post is context, not the bold title


def test_every_ticket_subject_leads_with_the_complaint() -> None:
    alert = alert_of(comment())
    for limit in (255, 150):  # Jira/GitHub summaries, Zendesk subjects and email subjects all come from summary_line
        summary = tk.summary_line(alert, limit)
        assert summary.startswith(f"High · complaint · Instagram: {COMPLAINT}") and len(summary) <= limit
    ticket = tk.ticket_text(alert)
    assert (ticket.title, ticket.context) == ("", f"on: {LAUNCH}")
    assert f"on: {LAUNCH}\n> {COMPLAINT}" in tk.render_text(ticket)
    assert f"<p><em>on: {LAUNCH}</em></p>" in tk.render_html(ticket)
    assert "<strong>Meet" not in tk.render_html(ticket) and "**Meet" not in tk.render_markdown(ticket)
    email = EmailDestination("mail", EmailOptions(type="email", host="127.0.0.1", sender="earful@acme.example", to=["support@acme.example"]))
    assert email.subject(alert).startswith(f"[earful] High · complaint · Instagram: {COMPLAINT}")


def test_digest_top_items_and_unanswered_list_show_the_complaint(tmp_path: Path) -> None:
    config = write_deployment(tmp_path, {"ig": {"connector": "rss", "url": "https://ig.example/feed"}},
                              {"rules": [{"id": "complaint", "query": "acme broken", "labels": ["complaint"], "severity": "high"}]}).config
    store = Store(config.state_path)
    try:
        mention = comment()
        match = Match(mention_key=mention.key, rule_id="complaint", pack="acme", labels=("complaint",), severity="high")
        store.ingest("ig", [(mention, [match], [])], {}, T0)
        digest = dg.build(config, store, T0 + timedelta(days=1), "week", top=5)
    finally:
        store.close()
    assert [t.mention.key for t in digest.top_items] == [mention.key]
    text = render.text(digest)
    assert f"1. {COMPLAINT} (on: Meet Acme CRM 5.2" in text
    assert "1. Meet Acme" not in text


# -- item 12: no ticket for what the brand had already answered -----------------------------------------


def test_the_header_says_who_had_already_answered() -> None:
    answered = comment(brand_replied=True, raw={"reply_by": "acmecrm", "reply_at": "2026-11-23T10:05:00+00:00"})
    assert fmt.headline(alert_of(answered)) == "🟠 High · complaint · Instagram · already answered by acmecrm"
    assert tk.plain_headline(alert_of(answered)) == "High · complaint · Instagram · already answered by acmecrm"
    assert fmt.headline(alert_of(comment(brand_replied=True))) == "🟠 High · complaint · Instagram · already answered"
    assert "answered" not in fmt.headline(alert_of(comment(brand_replied=None)))  # unknown is never "answered"
    assert "answered" not in fmt.headline(alert_of(comment(brand_replied=False)))


def test_the_route_is_decided_inside_the_transaction_that_enqueues(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    decided: list[tuple[str, bool]] = []

    def route(mention: Mention, destinations: Any) -> list[str]:
        decided.append((mention.key, store.db.conn.in_transaction))
        return [d for d in destinations if d != "tickets"] if mention.brand_replied else list(destinations)

    try:
        answered, open_one = comment("1", brand_replied=True), comment("2", text="Acme billing charged us twice this month")
        records = store.ingest("ig", [(answered, [], ["support", "tickets"]), (open_one, [], ["support", "tickets"])],
                               {"n": 1}, T0, route=route)
        assert decided == [(answered.key, True), (open_one.key, True)]
        assert [r.alerts for r in records] == [["support"], ["support", "tickets"]]
        assert sorted(r.key for r in store.outbox_rows()) == sorted(
            [f"{answered.key}#support", f"{open_one.key}#support", f"{open_one.key}#tickets"])

        def exploding() -> Iterator[tuple[Mention, list[Match], list[str]]]:
            yield comment("3", brand_replied=True), [], ["support", "tickets"]
            raise RuntimeError("crash mid-batch")

        with pytest.raises(RuntimeError):
            store.ingest("ig", exploding(), {"n": 2}, T0, route=route)
        assert len(store.outbox_rows()) == 3 and store.item("instagram:3") is None and store.cursor("ig") == {"n": 1}
    finally:
        store.close()


def test_only_ticket_systems_turn_answered_items_away(tmp_path: Path) -> None:
    destinations = {"support": CONSOLE, "jira": {"type": "jira", "base_url": "http://127.0.0.1:9", "project": "SUP", "email": JIRA_EMAIL,
                                                  "api_token": "${EARFUL_TEST_JIRA_TOKEN}"}}
    rules = {"rules": [{"id": "complaint", "query": "acme broken", "labels": ["complaint"]}]}
    config = write_deployment(tmp_path, {"ig": {"connector": "rss", "url": "https://ig.example/feed"}}, rules,
                              destinations=destinations, env={"EARFUL_TEST_JIRA_TOKEN": JIRA_TOKEN}).config
    route = Router(config)
    assert route(comment(brand_replied=True), ["support", "jira", "gone"]) == ["support", "gone"]  # unknown names: delivery reports them
    assert route(comment(brand_replied=None), ["support", "jira"]) == ["support", "jira"]
    assert route(comment(brand_replied=False), ["support", "jira"]) == ["support", "jira"]


# -- end to end: the real Instagram connector, fake Graph API, Slack, Jira and Zendesk -----------------------


@pytest.fixture
def instagram(tmp_path: Path, slack: Any) -> Iterator[tuple[Deployment, JiraServer, ZendeskServer]]:
    source = instagram_demo_source(time.time())
    rules = (resources.files("earful.sandbox") / "demo_data" / "acme.yaml").read_text()
    with source.server, JiraServer() as jira, ZendeskServer() as zendesk:
        monitor = {k: v.replace("{url}", source.server.url) if isinstance(v, str) else v for k, v in source.monitor.items()}
        destinations = {
            "support": slack_destination(slack, max_retries=0), "marketing": CONSOLE,
            "jira": {"type": "jira", "base_url": jira.url, "project": "SUP", "email": JIRA_EMAIL, "api_token": "${EARFUL_TEST_JIRA_TOKEN}"},
            "helpdesk": {"type": "zendesk", "base_url": zendesk.url, "email": ZENDESK_EMAIL, "api_token": "${EARFUL_TEST_ZENDESK_TOKEN}"},
        }
        env = {**source.env, **SLACK_ENV, "EARFUL_TEST_JIRA_TOKEN": JIRA_TOKEN, "EARFUL_TEST_ZENDESK_TOKEN": ZENDESK_TOKEN}
        yield write_deployment(tmp_path, {source.name: {**monitor, "notify": ["support", "jira", "helpdesk"]}}, rules,
                               destinations=destinations, env=env), jira, zendesk


def test_instagram_comments_reach_slack_and_tickets_in_their_own_words(instagram: Any, slack: Any) -> None:
    deployed, jira, zendesk = instagram
    report = deployed.tick()
    assert not report.failed and not report.delivery.failed, report.delivery.failed

    summaries = [issue["fields"]["summary"] for issue in jira.issues()]
    subjects = [ticket["subject"] for ticket in zendesk.tickets()]
    crash = next(s for s in summaries if "crashing" in s)
    assert crash.startswith(f"High · complaint · Instagram: {COMPLAINT} (on: Meet Acme CRM 5.2")
    assert any(s.startswith(f"High · complaint · Instagram: {COMPLAINT}") for s in subjects)
    assert not [s for s in summaries + subjects if s.split(": ", 1)[1].startswith("Meet Acme")]

    texts = [m["text"] for m in slack.messages(CHANNEL)]
    crash_text = next(t for t in texts if "crashing" in t)
    assert crash_text.index(COMPLAINT) < crash_text.index("Meet Acme CRM 5.2")


def test_an_item_answered_before_earful_saw_it_alerts_as_answered_and_opens_no_ticket(instagram: Any, slack: Any) -> None:
    deployed, jira, zendesk = instagram
    deployed.tick()
    with deployed.store() as store:
        items = {m.key: m for m in store.all_mentions()}
        rows = store.outbox_rows()
    answered = {key for key, m in items.items() if m.brand_replied is True}
    dark_mode = next(key for key in answered if "dark mode" in items[key].text)
    ticketed = {r.cluster for r in rows if r.destination == "jira"}
    alerted = {r.cluster for r in rows if r.destination == "support"}
    assert ticketed == {r.cluster for r in rows if r.destination == "helpdesk"}
    assert dark_mode in alerted and ticketed and not ticketed & answered
    assert alerted - ticketed == answered & alerted  # every unanswered alert has its ticket, no answered one has
    assert len(jira.issues()) == len(zendesk.tickets()) == len(ticketed)
    assert not [i for i in jira.issues() if "dark mode" in i["fields"]["summary"]]

    message = next(m for m in slack.messages(CHANNEL) if "dark mode" in m["text"])
    header = message["blocks"][0]["text"]["text"]
    assert header == "🟡 Medium · question · Instagram · already answered by acmecrm"
    assert message["text"].startswith(header)

    deployed.tick()  # exactly once: the next run neither re-sends nor opens the ticket late
    assert len(slack.messages(CHANNEL)) == len(alerted) and len(jira.issues()) == len(zendesk.tickets()) == len(ticketed)


def test_a_dry_run_routes_the_same_way(instagram: Any) -> None:
    deployed, jira, _ = instagram
    report = deployed.tick(dry_run=True)
    [outcome] = report.monitors
    routes = {mention.text: destinations for mention, _, destinations in outcome.would_alert}
    dark = next(d for text, d in routes.items() if "dark mode" in text)
    crash = next(d for text, d in routes.items() if "crashing" in text)
    assert dark == ["support"] and crash == ["support", "jira", "helpdesk"]
    assert jira.issues() == []
