"""The zendesk destination against the fake Zendesk (sandbox/zendesk.py)."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful import alerts
from earful.alerts.base import DeliveryError
from earful.alerts.zendesk import ESCALATED_TAG, ZendeskDestination, ZendeskOptions
from earful.core import Alert, Mention
from earful.sandbox.server import FakeServer, Response
from earful.sandbox.zendesk import (
    DEFAULT_API_TOKEN,
    DEFAULT_EMAIL,
    DEMO_ENV,
    ZendeskServer,
    demo_helpdesk,
)

from .sample_alerts import BREACH, NOTE, T0, alert_to, mention


def alert(*mentions: Mention, **details: Any) -> Alert:
    return alert_to("helpdesk", *mentions, **details)


@pytest.fixture
def zendesk() -> Iterator[ZendeskServer]:
    with ZendeskServer() as server:
        yield server  # type: ignore[misc]


def destination(server: ZendeskServer, **options: Any) -> ZendeskDestination:
    settings: dict[str, Any] = {"base_url": server.url, "email": DEFAULT_EMAIL, "api_token": DEFAULT_API_TOKEN, "timeout": 5, **options}
    return ZendeskDestination("helpdesk", ZendeskOptions(**settings))


def bodies(server: FakeServer, method: str, pattern: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in server.requests if r.method == method and re.fullmatch(pattern, r.path)]


# -- create -------------------------------------------------------------------------------


def test_registry_can_load_zendesk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(alerts.DESTINATIONS, "zendesk", "earful.alerts.zendesk")
    assert alerts.load("zendesk") is ZendeskDestination


def test_create_request_shape(zendesk: ZendeskServer) -> None:
    cluster = (mention(1), mention(2, source="x", url="https://x.com/someone/status/2", site="", author="someone"))
    sink = destination(zendesk, tags=["social media"], requester={"email": "social@acme.example", "name": "Social listening"},
                       group_id=360001, ticket_type="question")
    ticket_id = sink.deliver(alert(*cluster, labels=("complaint", "Billing Issue")))

    assert ticket_id == "4014"
    [create] = bodies(zendesk, "POST", "/api/v2/tickets.json")
    ticket = create["ticket"]
    html_body = ticket["comment"].pop("html_body")
    assert ticket == {
        "subject": "High · complaint, Billing Issue · Reddit: Acme support never responds",
        "comment": {"public": False},
        "external_id": "reddit:t3_1#helpdesk",
        "tags": ["social_media", "earful", "complaint", "billing_issue"],
        "priority": "high",
        "requester": {"email": "social@acme.example", "name": "Social listening"},
        "group_id": 360001,
        "type": "question",
    }
    for expected in ("<strong>Acme support never responds</strong>", "<blockquote>I asked three times", "Reddit · r/crm</a>",
                     '<a href="https://www.reddit.com/r/crm/comments/1/acme/">', "customer1", "Severity:</strong> High",
                     "acme/complaint", "reddit-acme", "Seen in 2 places", '<a href="https://x.com/someone/status/2">X</a>',
                     "item key reddit:t3_1#helpdesk"):
        assert expected in html_body, expected
    # the look-up came first, by external_id, and the request was authenticated as email/token
    first = zendesk.requests[0]
    assert first.method == "GET" and first.path == "/api/v2/tickets.json" and first.query == {"external_id": ["reddit:t3_1#helpdesk"]}
    token = base64.b64encode(f"{DEFAULT_EMAIL}/token:{DEFAULT_API_TOKEN}".encode()).decode()
    assert all(r.headers["authorization"] == f"Basic {token}" for r in zendesk.requests)
    [stored] = zendesk.tickets()
    assert stored["is_public"] is False and stored["status"] == "new" and stored["priority"] == "high"


def test_html_escapes_hostile_text_and_plain_text_option(zendesk: ZendeskServer) -> None:
    evil = mention(title='<img src=x onerror="alert(1)">', text="<script>steal()</script> & \"quotes\"", url="javascript:alert(1)",
                   author="<b>bob</b>")
    destination(zendesk).deliver(alert(evil))
    destination(zendesk, html=False).deliver(alert(mention(2, text="plain <b>text</b>")))
    rich, plain = (b["ticket"]["comment"] for b in bodies(zendesk, "POST", "/api/v2/tickets.json"))
    assert "<script>" not in rich["html_body"] and "<img" not in rich["html_body"] and "<b>bob" not in rich["html_body"]
    assert "&lt;script&gt;steal()&lt;/script&gt; &amp; &quot;quotes&quot;" in rich["html_body"]
    assert "javascript:" not in rich["html_body"].split("href=")[-1] and 'href="javascript' not in rich["html_body"]
    assert "html_body" not in plain and "plain <b>text</b>" in plain["body"]


def test_severity_maps_to_priority(zendesk: ZendeskServer) -> None:
    sink = destination(zendesk, priorities={"critical": "urgent", "high": "high", "medium": "normal", "low": "low"})
    for n, severity in enumerate(["low", "medium", "high", "critical"], 1):
        sink.deliver(alert(mention(n), severity=severity))
    assert [t["priority"] for t in zendesk.tickets()] == ["low", "normal", "high", "urgent"]


# -- exactly once ----------------------------------------------------------------------------


def test_reconcile_after_a_crash_between_create_and_mark(zendesk: ZendeskServer) -> None:
    since = datetime.now(timezone.utc) - timedelta(minutes=10)
    ticket_id = destination(zendesk).deliver(alert())  # the process dies before the outbox marks the row

    fresh = destination(zendesk)
    assert fresh.find_delivered(alert(), since) == ticket_id
    assert fresh.find_delivered(alert(mention(2)), since) is None
    assert len(zendesk.tickets()) == 1


def test_deliver_itself_never_duplicates(zendesk: ZendeskServer) -> None:
    sink = destination(zendesk)
    first = sink.deliver(alert())
    assert destination(zendesk).deliver(alert()) == first  # a resend without the outbox's in-doubt path
    assert len(zendesk.tickets()) == 1
    assert len(bodies(zendesk, "POST", "/api/v2/tickets.json")) == 1


def test_lookup_does_not_depend_on_the_search_index() -> None:
    with ZendeskServer(index_delay=3600) as server:  # search would not see a fresh ticket for an hour
        sink = destination(server)
        first = sink.deliver(alert())
        assert sink.deliver(alert()) == first
        assert len(server.tickets()) == 1
        found = sink._http().json("GET", "/api/v2/search.json", params={"query": f'type:ticket external_id:"{alert().key}"'})
        assert found["count"] == 0  # ... exactly what the external_id list does not suffer from


def test_a_create_that_timed_out_is_found_instead_of_repeated(zendesk: ZendeskServer) -> None:
    late = zendesk.hold_next(lambda r: r.method == "POST")  # creates, answers too late
    sink = destination(zendesk, timeout=0.5)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    assert not raised.value.permanent
    late.release()
    assert sink.deliver(alert()) == "4014"
    assert len(zendesk.tickets()) == 1


# -- lifecycle -----------------------------------------------------------------------------


def test_answer_adds_one_internal_note_and_solves(zendesk: ZendeskServer) -> None:
    sink = destination(zendesk, solve_on_answer=True)
    ticket_id = sink.deliver(alert())
    assert sink.update(ticket_id, alert(), NOTE) == ticket_id
    sink.update(ticket_id, alert(), NOTE)  # a retry: nothing twice

    ticket = zendesk.ticket(ticket_id)
    assert ticket["status"] == "solved"
    first, note = ticket["comments"]
    assert note["public"] is False and NOTE in note["plain_body"] and "https://www.reddit.com/r/crm/comments/1/acme/" in note["html_body"]
    updates = bodies(zendesk, "PUT", r"/api/v2/tickets/\d+\.json")
    assert len(updates) == 1
    assert updates[0]["ticket"]["status"] == "solved" and updates[0]["ticket"]["comment"]["public"] is False
    assert [t for t in ticket["tags"] if t.startswith("earful-update-")]


def test_answer_without_solve_keeps_the_status(zendesk: ZendeskServer) -> None:
    sink = destination(zendesk)
    ticket_id = sink.deliver(alert())
    sink.update(ticket_id, alert(), NOTE)
    ticket = zendesk.ticket(ticket_id)
    assert ticket["status"] == "new" and len(ticket["comments"]) == 2


def test_updates_to_a_closed_ticket_are_skipped(zendesk: ZendeskServer) -> None:
    sink = destination(zendesk, solve_on_answer=True)
    ticket_id = sink.deliver(alert())
    zendesk.set_status(ticket_id, "closed")
    assert sink.update(ticket_id, alert(), NOTE) == ticket_id
    assert len(zendesk.ticket(ticket_id)["comments"]) == 1
    assert not bodies(zendesk, "PUT", r"/api/v2/tickets/\d+\.json")


def test_breach_raises_the_priority_exactly_once(zendesk: ZendeskServer) -> None:
    sink = destination(zendesk)
    ticket_id = sink.deliver(alert(severity="medium"))
    breach = alert(severity="medium", kind="escalation", note=BREACH, thread=ticket_id)
    assert destination(zendesk).find_delivered(breach, T0) is None
    assert sink.deliver(breach) == ticket_id
    assert sink.deliver(breach) == ticket_id
    assert destination(zendesk).find_delivered(breach, T0) == ticket_id

    ticket = zendesk.ticket(ticket_id)
    assert ticket["priority"] == "high"  # normal -> high: one step
    assert ESCALATED_TAG in ticket["tags"]
    notes = [c for c in ticket["comments"][1:]]
    assert len(notes) == 1 and notes[0]["public"] is False
    assert BREACH in notes[0]["plain_body"] and "Priority raised from normal to high" in notes[0]["plain_body"]
    [update] = bodies(zendesk, "PUT", r"/api/v2/tickets/\d+\.json")
    assert set(update["ticket"]) == {"comment", "additional_tags", "priority"}  # one atomic change
    assert len(zendesk.tickets()) == 1


def test_escalation_without_a_thread_is_a_new_urgent_ticket(zendesk: ZendeskServer) -> None:
    ticket_id = destination(zendesk).deliver(alert(severity="low", kind="escalation", note=BREACH))
    ticket = zendesk.ticket(ticket_id)
    assert ticket["priority"] == "urgent" and ESCALATED_TAG in ticket["tags"]
    assert ticket["subject"].startswith("SLA breached · Low")
    assert BREACH in ticket["description"]
    assert ticket["external_id"] == "reddit:t3_1#escalation#helpdesk"


# -- errors -----------------------------------------------------------------------------------


def test_rate_limit_is_retried_after_retry_after(zendesk: ZendeskServer) -> None:
    sink = destination(zendesk)
    zendesk.rate_limit_next(1, retry_after=9)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    assert raised.value.retry_after == 9 and not raised.value.permanent and "429" in str(raised.value)
    assert zendesk.tickets() == []
    assert sink.deliver(alert()) == "4014"


def test_bad_credentials_are_permanent_and_never_leak(zendesk: ZendeskServer) -> None:
    secret = "zd-super-secret-api-token"
    sink = destination(zendesk, api_token=secret)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    message = str(raised.value)
    assert raised.value.permanent and "401" in message and "Couldn't authenticate you" in message and DEFAULT_EMAIL in message
    basic = base64.b64encode(f"{DEFAULT_EMAIL}/token:{secret}".encode()).decode()
    for text in (message, repr(raised.value), repr(sink.options), str(sink.options.model_dump())):
        assert secret not in text and basic not in text


def test_oauth_bearer_token() -> None:
    with ZendeskServer(oauth_token="oauth-0123") as server:
        sink = destination(server, email=None, api_token=None, token="oauth-0123")
        assert sink.deliver(alert()) == "4014"
        assert all(r.headers["authorization"] == "Bearer oauth-0123" for r in server.requests)


def test_validation_errors_are_permanent_with_details(zendesk: ZendeskServer) -> None:
    zendesk.fail_next(Response.json({"tickets": []}),
                      Response.json({"error": "RecordInvalid", "description": "Record validation errors",
                                     "details": {"requester": [{"description": "Requester: Email is invalid", "error": "InvalidValue"}]}}, 422))
    with pytest.raises(DeliveryError) as raised:
        destination(zendesk).deliver(alert())
    assert raised.value.permanent and "Requester: Email is invalid" in str(raised.value)


def test_missing_ticket_is_permanent(zendesk: ZendeskServer) -> None:
    with pytest.raises(DeliveryError) as raised:
        destination(zendesk).update("999999", alert(), NOTE)
    assert raised.value.permanent and "RecordNotFound" in str(raised.value)


def test_server_errors_and_refused_connections_are_transient(zendesk: ZendeskServer) -> None:
    zendesk.fail_next(Response.json({"error": "ServiceUnavailable"}, 503, {"Retry-After": "30"}))
    with pytest.raises(DeliveryError) as raised:
        destination(zendesk).deliver(alert())
    assert raised.value.retry_after == 30 and not raised.value.permanent
    zendesk.fail_next(Response(500, "oops"))
    with pytest.raises(DeliveryError) as raised:
        destination(zendesk).deliver(alert())
    assert raised.value.retry_after is None and not raised.value.permanent

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DeliveryError) as raised:
        destination(zendesk, base_url=f"http://127.0.0.1:{port}", timeout=2).deliver(alert())
    assert not raised.value.permanent and DEFAULT_API_TOKEN not in str(raised.value)


# -- options, demo, start-up ---------------------------------------------------------------------


def test_options_validate_without_quoting_secrets() -> None:
    options = ZendeskOptions(subdomain="Acme", email="bot@acme.example", api_token="zd-secret-1")
    assert options.subdomain == "acme" and ZendeskDestination("z", options).base == "https://acme.zendesk.com"
    assert ZendeskOptions(base_url="https://help.acme.example/api/v2/", token="t").base_url == "https://help.acme.example"
    base = {"subdomain": "acme", "email": "bot@acme.example", "api_token": "zd-secret-1"}
    bad = [{"subdomain": None}, {"base_url": "https://x.example"}, {"api_token": None}, {"token": "zd-secret-2"},
           {"priorities": {"high": "asap"}}, {"requester": {"email": "nobody"}}, {"subdomian": "acme"}, {"subdomain": "not a name"}]
    for change in bad:
        with pytest.raises(ValidationError) as raised:
            ZendeskOptions(**{**base, **change})
        assert "zd-secret-1" not in str(raised.value) and "zd-secret-2" not in str(raised.value), change


def test_demo_helpdesk_is_a_working_destination(monkeypatch: pytest.MonkeyPatch) -> None:
    server, mapping = demo_helpdesk()
    assert mapping["api_token"] == "${EARFUL_DEMO_ZENDESK_TOKEN}" and mapping["base_url"] == "{url}"
    assert server.demo_env == DEMO_ENV
    with server:
        settings = {k: v.replace("{url}", server.url) if isinstance(v, str) else v for k, v in mapping.items()}
        settings["api_token"] = DEMO_ENV["EARFUL_DEMO_ZENDESK_TOKEN"]
        sink = ZendeskDestination("helpdesk", ZendeskOptions(**settings))
        ticket_id = sink.deliver(alert())
        sink.update(ticket_id, alert(), NOTE)
        [ticket] = server.tickets()  # what the demo prints
        assert ticket["status"] == "solved" and "earful-demo" in ticket["tags"] and len(ticket["comments"]) == 2


def test_importing_the_module_does_not_import_requests() -> None:
    code = "import sys, earful.alerts.zendesk; print('requests' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
