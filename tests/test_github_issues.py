"""The github destination against the fake GitHub issues API (sandbox/github.py)."""

from __future__ import annotations

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
from earful.alerts.github import (
    API_VERSION,
    GitHubDestination,
    GitHubOptions,
    key_marker,
)
from earful.alerts.tickets import ZWSP
from earful.core import Alert, Mention
from earful.sandbox.github import (
    ABUSE_MESSAGE,
    DEFAULT_REPOSITORY,
    DEFAULT_TOKEN,
    GitHubServer,
)
from earful.sandbox.server import Response

from .sample_alerts import BREACH, NOTE, alert_to, mention


def alert(*mentions: Mention, created_at: datetime | None = None, **details: Any) -> Alert:
    return alert_to("issues", *mentions, created_at=created_at or datetime.now(timezone.utc), **details)


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    with GitHubServer() as server:
        yield server  # type: ignore[misc]


def destination(server: GitHubServer, **options: Any) -> GitHubDestination:
    settings: dict[str, Any] = {"base_url": server.url, "repository": DEFAULT_REPOSITORY, "token": DEFAULT_TOKEN, "timeout": 5, **options}
    return GitHubDestination("issues", GitHubOptions(**settings))


def since() -> datetime:
    return datetime.now(timezone.utc) - timedelta(minutes=10)


# -- create ----------------------------------------------------------------------------------


def test_registry_can_load_github(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(alerts.DESTINATIONS, "github", "earful.alerts.github")
    assert alerts.load("github") is GitHubDestination


def test_create_request_shape(github: GitHubServer) -> None:
    cluster = (mention(1), mention(2, source="hackernews", url="https://news.ycombinator.com/item?id=2", site="", author="pg"))
    remote_id = destination(github, labels=["support"], assignees=["octocat"]).deliver(alert(*cluster))

    assert remote_id == "acme/support#1"
    create = next(r for r in github.requests if r.method == "POST")
    assert create.path == "/repos/acme/support/issues"
    assert create.headers["authorization"] == f"Bearer {DEFAULT_TOKEN}"
    assert create.headers["x-github-api-version"] == API_VERSION and create.headers["accept"] == "application/vnd.github+json"
    body = json.loads(create.body)
    text = body.pop("body")
    assert body == {"title": "High · complaint, question · Reddit: Acme support never responds",
                    "labels": ["support", "earful", "complaint", "question"], "assignees": ["octocat"]}
    assert text.endswith("\n\n<!-- earful:key=reddit:t3_1#issues -->")
    for expected in ("**Acme support never responds**", "> I asked three times on Facebook and nobody answered\\. Is Acme still alive?"
                     if False else "> I asked three times on Facebook and nobody answered. Is Acme still alive?",
                     "- **Source:** [Reddit · r/crm](https://www.reddit.com/r/crm/comments/1/acme/)", "- **Author:** customer1",
                     "- **Severity:** High", "- **Matched rules:** acme/complaint", "- **Monitor:** reddit-acme", "**Seen in 2 places**",
                     "[Hacker News](https://news.ycombinator.com/item?id=2) — pg"):
        assert expected in text, expected
    [issue] = github.issues()
    assert [label["name"] for label in issue["labels"]] == ["support", "earful", "complaint", "question"]
    # the list request that looked for an earlier delivery came first
    first = github.requests[0]
    assert first.method == "GET" and first.path == "/repos/acme/support/issues"
    assert {k: v[0] for k, v in first.query.items() if k != "since"} == {"state": "all", "sort": "created", "direction": "desc", "per_page": "100"}


def test_customer_text_cannot_ping_reference_or_format(github: GitHubServer) -> None:
    evil = mention(title="# @acme/oncall see #1 <img src=x onerror=alert(1)>",
                   text="- [click](javascript:alert(1)) ![pixel](https://evil.example/p.png) **bold** @torvalds fixes #42 | a | b |",
                   author="@mallory", url="javascript:alert(1)")
    destination(github).deliver(alert(evil))
    [issue] = github.issues()
    body = issue["body"]
    assert f"@{ZWSP}acme/oncall" in body and f"@{ZWSP}torvalds" in body and f"@{ZWSP}mallory" in body
    assert f"#{ZWSP}1" in body and f"#{ZWSP}42" in body
    assert "\\<img" in body and not re.search(r"(?<!\\)<img", body)
    assert "![pixel]" not in body and "\\!\\[pixel\\]" in body
    assert not re.search(r"(?<!\\)\]\(javascript:", body)  # "[click](javascript:...)" cannot become a link
    assert "**bold**" not in body and "\\*\\*bold\\*\\*" in body
    assert issue["title"].startswith(f"High · complaint, question · Reddit: # @{ZWSP}acme/oncall see #{ZWSP}1")


def test_labels_are_dropped_without_push_access_yet_reconciliation_works() -> None:
    with GitHubServer(push_access=False) as server:  # GitHub silently drops labels for such tokens
        sink = destination(server)
        remote_id = sink.deliver(alert())
        [issue] = server.issues()
        assert issue["labels"] == []
        assert destination(server).find_delivered(alert(), since()) == remote_id


# -- exactly once ------------------------------------------------------------------------------


def test_reconcile_after_a_crash_between_create_and_mark(github: GitHubServer) -> None:
    remote_id = destination(github).deliver(alert())  # the process dies before the outbox marks the row
    fresh = destination(github)
    assert fresh.find_delivered(alert(), since()) == remote_id
    assert fresh.deliver(alert()) == remote_id
    assert fresh.find_delivered(alert(mention(2)), since()) is None
    assert len(github.issues()) == 1


def test_find_delivered_pages_and_skips_pull_requests(github: GitHubServer) -> None:
    target = alert()
    remote_id = destination(github).deliver(target)
    github.add_pull_request(DEFAULT_REPOSITORY, "PR quoting the marker", body=key_marker(target.key))
    sink = destination(github)
    for n in range(2, 232):  # newer issues in front of it
        sink._http().request("POST", "/repos/acme/support/issues", json_body=sink.issue(alert(mention(n))))
    assert sink.find_delivered(target, since()) == remote_id
    lists = [r for r in github.requests if r.method == "GET" and r.path.endswith("/issues")]
    assert len(lists[-3:]) == 3 and lists[-1].query["page"] == ["3"]  # 232 issues and a PR, 100 a page, newest first


def test_find_delivered_stops_at_issues_older_than_since(github: GitHubServer) -> None:
    sink = destination(github)
    for n in range(1, 150):
        sink._http().request("POST", "/repos/acme/support/issues", json_body=sink.issue(alert(mention(n))))
    before = len(github.requests)
    assert sink.find_delivered(alert(mention(999)), datetime.now(timezone.utc) + timedelta(minutes=30)) is None
    assert len(github.requests) - before == 1  # an empty window: one page, not every page


def test_one_scan_per_run_however_many_issues_it_opens(github: GitHubServer) -> None:
    sink = destination(github)
    for n in range(1, 40):
        sink.deliver(alert(mention(n)))
    assert len([r for r in github.requests if r.method == "GET"]) == 1
    assert sink.deliver(alert(mention(5))) == "acme/support#5"  # what it opened itself it knows without asking
    assert len(github.issues()) == 39


def test_a_create_that_timed_out_is_found_instead_of_repeated(github: GitHubServer) -> None:
    late = github.hold_next(lambda r: r.method == "POST")  # creates, answers too late
    sink = destination(github, timeout=0.5)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    assert not raised.value.permanent
    late.release()
    assert sink.deliver(alert()) == "acme/support#1"
    assert len(github.issues()) == 1


# -- lifecycle -------------------------------------------------------------------------------------


def test_answer_adds_one_comment_and_closes(github: GitHubServer) -> None:
    sink = destination(github, close_on_answer=True)
    remote_id = sink.deliver(alert())
    assert sink.update(remote_id, alert(), NOTE) == remote_id
    sink.update(remote_id, alert(), NOTE)

    [comment] = github.comments(DEFAULT_REPOSITORY, 1)
    assert "answered by acme\\_support after 37m" in comment and "<!-- earful:update=" in comment
    assert "Original post: [https://www.reddit.com/r/crm/comments/1/acme/](https://www.reddit.com/r/crm/comments/1/acme/)" in comment
    assert "item key `reddit:t3_1#issues`" in comment
    [issue] = github.issues()
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"


def test_answer_without_close_keeps_it_open(github: GitHubServer) -> None:
    sink = destination(github)
    remote_id = sink.deliver(alert())
    sink.update(remote_id, alert(), NOTE)
    assert github.issues()[0]["state"] == "open" and len(github.comments(DEFAULT_REPOSITORY, 1)) == 1


def test_breach_labels_and_comments_exactly_once(github: GitHubServer) -> None:
    sink = destination(github)
    remote_id = sink.deliver(alert())
    breach = alert(kind="escalation", note=BREACH, thread=remote_id)
    assert sink.find_delivered(breach, since()) is None
    assert sink.deliver(breach) == remote_id
    assert sink.deliver(breach) == remote_id
    assert destination(github).find_delivered(breach, since()) == remote_id

    [issue] = github.issues()
    assert "sla-breached" in [label["name"] for label in issue["labels"]]
    [comment] = github.comments(DEFAULT_REPOSITORY, 1)
    assert BREACH in comment and "Labelled sla-breached" in comment
    label_posts = [json.loads(r.body) for r in github.requests if r.path.endswith("/labels")]
    assert label_posts == [{"labels": ["sla-breached"]}]


def test_escalation_without_a_thread_is_a_new_labelled_issue(github: GitHubServer) -> None:
    remote_id = destination(github, escalation_labels=["urgent", "sla-breached"]).deliver(alert(kind="escalation", note=BREACH))
    [issue] = github.issues()
    assert remote_id == "acme/support#1" and issue["title"].startswith("SLA breached · High")
    assert {"urgent", "sla-breached"} <= {label["name"] for label in issue["labels"]}
    assert BREACH in issue["body"]


# -- errors --------------------------------------------------------------------------------------------


def test_secondary_rate_limit_403_is_deferred_not_permanent(github: GitHubServer) -> None:
    github.secondary_rate_limit_next(1, retry_after=60)
    with pytest.raises(DeliveryError) as raised:
        destination(github).deliver(alert())
    assert raised.value.retry_after == 60 and not raised.value.permanent
    assert ABUSE_MESSAGE in str(raised.value)


def test_primary_rate_limit_waits_until_reset(github: GitHubServer) -> None:
    github.primary_rate_limit_next(1, reset_in=120)
    with pytest.raises(DeliveryError) as raised:
        destination(github).deliver(alert())
    assert 100 <= (raised.value.retry_after or 0) <= 121 and not raised.value.permanent


def test_429_with_retry_after(github: GitHubServer) -> None:
    sink = destination(github)
    github.rate_limit_next(1, retry_after=5)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    assert raised.value.retry_after == 5 and not raised.value.permanent
    assert sink.deliver(alert()) == "acme/support#1"


def test_missing_permission_403_is_permanent() -> None:
    with GitHubServer(push_access=False) as server:
        sink = destination(server)
        remote_id = sink.deliver(alert())
        with pytest.raises(DeliveryError) as raised:
            sink.deliver(alert(kind="escalation", note=BREACH, thread=remote_id))
        assert raised.value.permanent and "403" in str(raised.value) and "Issues: read and write" in str(raised.value)


def test_bad_credentials_are_permanent_and_never_leak(github: GitHubServer) -> None:
    secret = "ghp_super_secret_token_value"
    sink = destination(github, token=secret)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    message = str(raised.value)
    assert raised.value.permanent and "401" in message and "Bad credentials" in message and "acme/support" in message
    for text in (message, repr(raised.value), repr(sink.options), str(sink.options.model_dump())):
        assert secret not in text


def test_unknown_repository_and_disabled_issues_are_permanent() -> None:
    with GitHubServer() as server:
        with pytest.raises(DeliveryError) as raised:
            destination(server, repository="acme/nope").deliver(alert())
        assert raised.value.permanent and "404" in str(raised.value)
    with GitHubServer(issues_enabled=False) as server:
        with pytest.raises(DeliveryError) as raised:
            destination(server).deliver(alert())
        assert raised.value.permanent and "410" in str(raised.value) and "disabled" in str(raised.value)


def test_validation_errors_are_permanent_with_details(github: GitHubServer) -> None:
    github.fail_next(Response.json([]), Response.json({"message": "Validation Failed", "errors": [
        {"resource": "Issue", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)"}]}, 422))
    with pytest.raises(DeliveryError) as raised:
        destination(github).deliver(alert())
    assert raised.value.permanent and "body: body is too long" in str(raised.value)


def test_server_errors_and_refused_connections_are_transient(github: GitHubServer) -> None:
    github.fail_next(Response(502, "<html>Unicorn!</html>", {"Content-Type": "text/html"}))
    with pytest.raises(DeliveryError) as raised:
        destination(github).deliver(alert())
    assert not raised.value.permanent and "502" in str(raised.value)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DeliveryError) as raised:
        destination(github, base_url=f"http://127.0.0.1:{port}", timeout=2).deliver(alert())
    assert not raised.value.permanent and DEFAULT_TOKEN not in str(raised.value)


# -- options, start-up -------------------------------------------------------------------------------------


def test_options_validate_without_quoting_secrets() -> None:
    options = GitHubOptions(repository="https://github.com/acme/support/", token="ghp-secret-1")
    assert options.repository == "acme/support" and options.escalation_labels == ("sla-breached",)
    for change in ({"repository": "acme"}, {"labels": ["a,b"]}, {"token": ""}, {"base_url": "ftp://x"}, {"repo": "acme/support"}):
        with pytest.raises(ValidationError) as raised:
            GitHubOptions(**{"repository": "acme/support", "token": "ghp-secret-1", **change})
        assert "ghp-secret-1" not in str(raised.value), change


def test_importing_the_module_does_not_import_requests() -> None:
    code = "import sys, earful.alerts.github; print('requests' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
