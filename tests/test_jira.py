"""The jira destination against the fake Jira Cloud (sandbox/jira.py).

Every test speaks HTTP to a local JiraServer, which validates requests the
way Jira Cloud does (ADF descriptions, labels, priorities, screens, JQL,
`nextPageToken`), so a request Jira would reject fails here too.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful import alerts
from earful.alerts.base import DeliveryError
from earful.alerts.jira import ESCALATED_LABEL, JiraDestination, JiraOptions, adf_text
from earful.alerts.tickets import item_hash
from earful.core import Alert, Mention
from earful.sandbox.jira import (
    DEFAULT_API_TOKEN,
    DEFAULT_EMAIL,
    REMOVED_SEARCH,
    JiraServer,
    adf_problems,
)
from earful.sandbox.server import Request, Response

from .sample_alerts import BREACH, NOTE, T0, alert_to, mention


def alert(*mentions: Mention, **details: Any) -> Alert:
    return alert_to("tickets", *mentions, **details)


@pytest.fixture
def jira() -> Iterator[JiraServer]:
    with JiraServer() as server:
        yield server  # type: ignore[misc]


def destination(server: JiraServer, **options: Any) -> JiraDestination:
    settings: dict[str, Any] = {"base_url": server.url, "project": "SUP", "email": DEFAULT_EMAIL, "api_token": DEFAULT_API_TOKEN,
                                "timeout": 5, **options}
    return JiraDestination("tickets", JiraOptions(**settings))


def posted(server: JiraServer, path: str, method: str = "POST") -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in server.requests if r.path == path and r.method == method]


class FailingRoute(JiraServer):
    """A Jira whose requests matching (method, path suffix) fail with `response`, `times` times."""

    def __init__(self, method: str, suffix: str, response: Response, times: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.rule = (method, suffix, response)
        self.left = times

    def handle(self, request: Request) -> Response:
        method, suffix, response = self.rule
        if self.left and request.method == method and request.path.endswith(suffix):
            self.left -= 1
            return response
        return super().handle(request)


# -- create ----------------------------------------------------------------------------


def test_registry_can_load_jira(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(alerts.DESTINATIONS, "jira", "earful.alerts.jira")
    assert alerts.load("jira") is JiraDestination


def test_create_request_shape(jira: JiraServer) -> None:
    cluster = (mention(1), mention(2, source="hackernews", url="https://news.ycombinator.com/item?id=2", site="", author="pg"))
    sink = destination(jira, labels=["from-earful"], custom_fields={"customfield_10050": "{url}", "customfield_10051": {"value": "{severity}"}})
    key = sink.deliver(alert(*cluster))

    assert key == "SUP-1"
    [create] = posted(jira, "/rest/api/3/issue")
    fields = create["fields"]
    label = f"earful-{item_hash('reddit:t3_1#tickets')}"
    assert {k: v for k, v in fields.items() if k != "description"} == {
        "project": {"key": "SUP"},
        "issuetype": {"name": "Task"},
        "summary": "High · complaint, question · Reddit: Acme support never responds",
        "labels": ["from-earful", "earful", "complaint", "question", label],
        "priority": {"name": "High"},
        "customfield_10050": "https://www.reddit.com/r/crm/comments/1/acme/",
        "customfield_10051": {"value": "high"},
    }
    description = fields["description"]
    assert adf_problems(description) == []
    assert [node["type"] for node in description["content"]] == ["paragraph", "blockquote", "bulletList", "paragraph", "bulletList", "paragraph"]
    text = adf_text(description)
    for expected in ("Acme support never responds", "Is Acme still alive?", "Source: Reddit · r/crm", "Author: customer1", "Kind: post",
                     "Posted: 2026-11-20 10:00 UTC", "Severity: High", "Labels: complaint, question", "Matched rules: acme/complaint",
                     "Monitor: reddit-acme", "Seen in 2 places", "Hacker News", "pg", "item key reddit:t3_1#tickets"):
        assert expected in text, expected
    links = [m["attrs"]["href"] for m in _marks(description) if m["type"] == "link"]
    assert links == ["https://www.reddit.com/r/crm/comments/1/acme/", "https://www.reddit.com/r/crm/comments/1/acme/",
                     "https://news.ycombinator.com/item?id=2"]
    # the item key is stored as an entity property too, and the request was authenticated as the account
    [stored] = jira.issues()
    assert stored["properties"]["earful"] == {"key": "reddit:t3_1#tickets", "cluster": "reddit:t3_1", "monitor": "reddit-acme",
                                              "destination": "tickets", "kind": "alert"}
    create_request = next(r for r in jira.requests if r.path == "/rest/api/3/issue")
    assert create_request.headers["authorization"] == "Basic " + base64.b64encode(f"{DEFAULT_EMAIL}:{DEFAULT_API_TOKEN}".encode()).decode()
    assert create_request.headers["content-type"].startswith("application/json")


def _marks(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield from node.get("marks") or ()
        for child in node.get("content") or ():
            yield from _marks(child)


def test_hostile_text_is_data_and_bad_links_are_not_linked(jira: JiraServer) -> None:
    evil = mention(title="x\n\n*Severity:* low [click](javascript:alert(1))", text="\x1b[2J\u202eevil", url="javascript:alert(1)",
                   author="<script>alert(1)</script>")
    destination(jira).deliver(alert(evil))
    [issue] = jira.issues()
    description = issue["fields"]["description"]
    assert adf_problems(description) == []
    assert not [m for m in _marks(description) if m["type"] == "link"]
    text = adf_text(description)
    assert "\x1b" not in text and "\u202e" not in text
    assert "<script>alert(1)</script>" in text  # ADF text is data: shown literally, never markup
    assert "\n" not in issue["fields"]["summary"]


def test_long_text_fits_jira_limits(jira: JiraServer) -> None:
    long = mention(title="acme " * 200, text="word " * 5000)
    places = [long, *(mention(n, url=f"https://www.reddit.com/r/crm/comments/{n}/x/") for n in range(2, 120))]
    destination(jira).deliver(alert(*places))
    [issue] = jira.issues()  # the fake refuses summaries over 255 characters and invalid ADF
    assert len(issue["fields"]["summary"]) <= 255 and issue["fields"]["summary"].endswith("…")
    text = adf_text(issue["fields"]["description"])
    assert "Seen in 119 places" in text and "…and 69 more" in text
    assert len(json.dumps(issue["fields"]["description"])) < 32767


def test_priority_follows_severity_and_can_be_left_to_jira(jira: JiraServer) -> None:
    destination(jira).deliver(alert(mention(1), severity="critical"))
    destination(jira).deliver(alert(mention(2), severity="low"))
    destination(jira, priorities=None).deliver(alert(mention(3), severity="critical"))
    creates = posted(jira, "/rest/api/3/issue")
    assert [c["fields"].get("priority") for c in creates] == [{"name": "Highest"}, {"name": "Low"}, None]
    assert [i["fields"]["priority"]["name"] for i in jira.issues()] == ["Highest", "Low", "Medium"]


# -- exactly once ------------------------------------------------------------------------


def test_reconcile_after_a_crash_between_create_and_mark(jira: JiraServer) -> None:
    since = datetime.now(timezone.utc) - timedelta(minutes=10)
    key = destination(jira).deliver(alert())  # ... and the process dies before the outbox marks the row

    fresh = destination(jira)  # the next run
    assert fresh.find_delivered(alert(), since) == key
    assert fresh.deliver(alert()) == key  # even a plain resend finds it
    assert len(jira.issues()) == 1
    assert fresh.find_delivered(alert(mention(2)), since) is None
    searches = [r for r in jira.requests if "search" in r.path]
    assert searches and all(r.path == "/rest/api/3/search/jql" for r in searches)
    jql = json.loads(searches[0].body)["jql"]
    assert jql == f'project = "SUP" AND labels = "earful-{item_hash("reddit:t3_1#tickets")}" ORDER BY created ASC'


def test_find_delivered_pages_with_next_page_token(jira: JiraServer) -> None:
    target = alert()
    label = f"earful-{item_hash(target.key)}"
    sink = destination(jira)
    for n in range(60):  # issues with the same label but another key (think: someone copied the label)
        key = sink._http().json("POST", "/rest/api/3/issue", json_body={"fields": {
            "project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": f"copy {n}", "labels": [label]}})["key"]
        sink._http().request("PUT", f"/rest/api/3/issue/{key}/properties/earful", json_body={"key": f"other-{n}"})
    real = sink.deliver(target)
    assert real == "SUP-61"

    assert destination(jira).find_delivered(target, T0) == real
    pages = [json.loads(r.body) for r in jira.requests if r.path == "/rest/api/3/search/jql"][-2:]
    assert "nextPageToken" not in pages[0] and pages[1]["nextPageToken"]
    assert pages[0]["properties"] == ["earful"]


def test_an_issue_left_without_its_property_is_found_and_marked(jira: JiraServer) -> None:
    target = alert()
    sink = destination(jira)
    sink._http().json("POST", "/rest/api/3/issue", json_body={"fields": {  # created, then killed before the property
        "project": {"key": "SUP"}, "issuetype": {"name": "Task"}, "summary": "s", "labels": [sink.label_for(target)]}})
    assert sink.find_delivered(target, T0) == "SUP-1"
    assert jira.issue("SUP-1")["properties"]["earful"]["key"] == target.key


def test_a_failing_property_write_never_causes_a_second_issue() -> None:
    with FailingRoute("PUT", "/properties/earful", Response.json({"errorMessages": ["oops"], "errors": {}}, 503), times=5) as server:
        sink = destination(server)
        key = sink.deliver(alert())  # the issue exists: no DeliveryError, or the outbox would create another
        assert key == "SUP-1"
        assert sink.deliver(alert()) == "SUP-1"
        assert len(server.issues()) == 1


def test_a_create_that_timed_out_is_found_instead_of_repeated(jira: JiraServer) -> None:
    late = jira.hold_next(lambda r: r.path == "/rest/api/3/issue" and r.method == "POST")  # creates, answers too late
    sink = destination(jira, timeout=0.5)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    assert not raised.value.permanent and "timed out" in str(raised.value)
    late.release()  # the server finishes its (slow) answer
    assert sink.deliver(alert()) == "SUP-1"  # the outbox's ordinary retry
    assert len(jira.issues()) == 1


# -- lifecycle -----------------------------------------------------------------------------


def test_answer_adds_one_comment_and_resolves(jira: JiraServer) -> None:
    sink = destination(jira, resolve_on_answer="Done")
    key = sink.deliver(alert())
    assert sink.update(key, alert(), NOTE) == key
    assert sink.update(key, alert(), NOTE) == key  # retried (another destination failed): nothing twice

    [comment] = jira.comment_texts(key)
    assert NOTE in comment and "Original post: https://www.reddit.com/r/crm/comments/1/acme/" in comment
    issue = jira.issue(key)
    assert issue["fields"]["status"]["name"] == "Done" and issue["fields"]["resolution"]["name"] == "Done"
    assert len([r for r in jira.requests if r.path.endswith("/transitions") and r.method == "POST"]) == 1
    assert adf_problems(issue["comments"][0]["body"]) == []


def test_answer_without_resolve_leaves_the_status(jira: JiraServer) -> None:
    sink = destination(jira)
    key = sink.deliver(alert())
    sink.update(key, alert(), NOTE)
    assert jira.issue(key)["fields"]["status"]["name"] == "To Do"
    assert not [r for r in jira.requests if "transitions" in r.path]


def test_resolve_by_target_status_name_and_when_already_done(jira: JiraServer) -> None:
    sink = destination(jira, resolve_on_answer="done")  # case-insensitive, and the target status name works too
    first, second = sink.deliver(alert(mention(1))), sink.deliver(alert(mention(2)))
    jira.set_status(second, "Done")  # a person resolved it already
    sink.update(first, alert(mention(1)), NOTE)
    sink.update(second, alert(mention(2)), NOTE)
    assert jira.issue(first)["fields"]["status"]["name"] == "Done"
    assert jira.issue(second)["fields"]["status"]["name"] == "Done"


def test_unknown_transition_is_permanent_and_says_what_exists(jira: JiraServer) -> None:
    sink = destination(jira, resolve_on_answer="Shipped")
    key = sink.deliver(alert())
    with pytest.raises(DeliveryError) as raised:
        sink.update(key, alert(), NOTE)
    assert raised.value.permanent
    assert "'Shipped'" in str(raised.value) and "'Start progress'" in str(raised.value) and "'Done'" in str(raised.value)
    assert len(jira.comment_texts(key)) == 1


def test_breach_raises_the_priority_exactly_once(jira: JiraServer) -> None:
    sink = destination(jira)
    key = sink.deliver(alert(severity="high"))
    breach = alert(severity="high", kind="escalation", note=BREACH, thread=key)
    assert sink.deliver(breach) == key
    assert sink.deliver(breach) == key  # re-delivered (say the outbox row was in doubt)
    assert destination(jira).find_delivered(breach, T0) == key

    issue = jira.issue(key)
    assert issue["fields"]["priority"]["name"] == "Highest"
    assert ESCALATED_LABEL in issue["fields"]["labels"]
    [comment] = jira.comment_texts(key)
    assert BREACH in comment and "Priority raised from High to Highest" in comment
    edits = posted(jira, f"/rest/api/3/issue/{key}", "PUT")
    assert edits == [{"update": {"labels": [{"add": ESCALATED_LABEL}]}, "fields": {"priority": {"name": "Highest"}}}]
    assert len(jira.issues()) == 1


def test_breach_raises_one_step_only(jira: JiraServer) -> None:
    sink = destination(jira)
    key = sink.deliver(alert(severity="low"))
    sink.deliver(alert(severity="low", kind="escalation", note=BREACH, thread=key))
    assert jira.issue(key)["fields"]["priority"]["name"] == "Medium"


def test_breach_interrupted_between_raise_and_comment_raises_once() -> None:
    failing = Response.json({"errorMessages": ["Internal server error"], "errors": {}}, 500)
    with FailingRoute("POST", "/comment", failing) as server:
        sink = destination(server)
        key = sink.deliver(alert(severity="medium"))
        breach = alert(severity="medium", kind="escalation", note=BREACH, thread=key)
        with pytest.raises(DeliveryError) as raised:
            sink.deliver(breach)
        assert not raised.value.permanent
        assert server.issue(key)["fields"]["priority"]["name"] == "High"
        assert sink.find_delivered(breach, T0) is None  # half done: the outbox must deliver again
        assert sink.deliver(breach) == key
        assert server.issue(key)["fields"]["priority"]["name"] == "High"  # not Highest: raised once
        assert len(server.comment_texts(key)) == 1


def test_escalation_without_a_thread_is_a_new_highest_issue(jira: JiraServer) -> None:
    key = destination(jira).deliver(alert(severity="medium", kind="escalation", note=BREACH))
    issue = jira.issue(key)
    assert issue["fields"]["priority"]["name"] == "Highest"
    assert issue["fields"]["summary"].startswith("SLA breached · Medium")
    assert ESCALATED_LABEL in issue["fields"]["labels"]
    assert BREACH in adf_text(issue["fields"]["description"])


# -- errors ---------------------------------------------------------------------------------


def test_rate_limit_is_retried_after_retry_after(jira: JiraServer) -> None:
    sink = destination(jira)
    jira.rate_limit_next(1, retry_after=7)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    assert raised.value.retry_after == 7 and not raised.value.permanent
    assert jira.issues() == []
    assert sink.deliver(alert()) == "SUP-1"


def test_bad_credentials_are_permanent_and_never_leak(jira: JiraServer) -> None:
    secret = "ATATT3x-super-secret-token-value"
    sink = destination(jira, api_token=secret)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    message = str(raised.value)
    assert raised.value.permanent
    assert "401" in message and DEFAULT_EMAIL in message and "'tickets'" in message and "api_token" in message
    basic = base64.b64encode(f"{DEFAULT_EMAIL}:{secret}".encode()).decode()
    for text in (message, repr(raised.value), repr(sink.options), str(sink.options.model_dump())):
        assert secret not in text and basic not in text


def test_bearer_token_auth() -> None:
    with JiraServer(bearer_token="pat-0123456789") as server:
        assert destination(server, email=None, api_token=None, token="pat-0123456789").deliver(alert()) == "SUP-1"
        assert next(r for r in server.requests if r.method == "POST").headers["authorization"] == "Bearer pat-0123456789"


def test_field_errors_are_permanent_and_named(jira: JiraServer) -> None:
    with pytest.raises(DeliveryError) as raised:
        destination(jira, issue_type="Epic", custom_fields={"customfield_99999": "{source}"}).deliver(alert())
    message = str(raised.value)
    assert raised.value.permanent and "HTTP 400" in message
    assert "issuetype: Specify a valid issue type" in message
    assert "customfield_99999: Field 'customfield_99999' cannot be set. It is not on the appropriate screen, or unknown." in message


def test_unknown_project_is_permanent(jira: JiraServer) -> None:
    with pytest.raises(DeliveryError) as raised:
        destination(jira, project="NOPE").deliver(alert())
    assert raised.value.permanent and "The value 'NOPE' does not exist for the field 'project'" in str(raised.value)


def test_missing_issue_is_permanent(jira: JiraServer) -> None:
    with pytest.raises(DeliveryError) as raised:
        destination(jira).update("SUP-404", alert(), NOTE)
    assert raised.value.permanent and "404" in str(raised.value) and "does not exist" in str(raised.value)


def test_server_errors_and_refused_connections_are_transient(jira: JiraServer) -> None:
    jira.fail_next(Response(502, "<html>Bad gateway</html>", {"Content-Type": "text/html"}))
    with pytest.raises(DeliveryError) as raised:
        destination(jira).deliver(alert())
    assert not raised.value.permanent and "502" in str(raised.value)
    jira.fail_next(Response.json({"errorMessages": ["down for maintenance"]}, 503, {"Retry-After": "120"}))
    with pytest.raises(DeliveryError) as raised:
        destination(jira).deliver(alert())
    assert raised.value.retry_after == 120 and not raised.value.permanent

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = JiraDestination("tickets", JiraOptions(base_url=f"http://127.0.0.1:{port}", project="SUP", email=DEFAULT_EMAIL,
                                                    api_token=DEFAULT_API_TOKEN, timeout=2))
    with pytest.raises(DeliveryError) as raised:
        closed.deliver(alert())
    assert not raised.value.permanent and DEFAULT_API_TOKEN not in str(raised.value)


def test_the_fake_has_retired_the_old_search_like_jira_cloud(jira: JiraServer) -> None:
    api = destination(jira)._http()
    with pytest.raises(DeliveryError) as raised:
        api.request("GET", "/rest/api/3/search", params={"jql": "project = SUP"})
    assert "410" in str(raised.value) and REMOVED_SEARCH[:40] in str(raised.value) and raised.value.permanent
    unbounded = api.request("POST", "/rest/api/3/search/jql", json_body={"jql": ""}, expect=(400,)).json()
    assert "Unbounded JQL" in unbounded["errorMessages"][0]


# -- options and start-up ---------------------------------------------------------------------


def test_options_validate_without_quoting_secrets() -> None:
    base = {"base_url": "https://acme.atlassian.net/", "project": "sup", "email": "bot@acme.example", "api_token": "tok-secret-1"}
    options = JiraOptions(**base)
    assert options.base_url == "https://acme.atlassian.net" and options.project == "SUP" and options.issue_type == "Task"
    assert options.priorities == {"critical": "Highest", "high": "High", "medium": "Medium", "low": "Low"}
    bad = [
        {"api_token": None},
        {"token": "tok-secret-2"},
        {"project": "two words"},
        {"labels": ["has space"]},
        {"custom_fields": {"customfield_1": "{password}"}},
        {"custom_fields": {"customfield_1": "{url.__class__}"}},
        {"custom_fields": {"summary": "{url}"}},
        {"base_url": "ftp://acme"},
        {"priorities": {"urgent": "Highest"}},
        {"projct": "SUP"},
    ]
    for change in bad:
        with pytest.raises(ValidationError) as raised:
            JiraOptions(**{**base, **change})
        assert "tok-secret-1" not in str(raised.value) and "tok-secret-2" not in str(raised.value), change


def test_importing_the_module_does_not_import_requests() -> None:
    code = "import sys, earful.alerts.jira; print('requests' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
