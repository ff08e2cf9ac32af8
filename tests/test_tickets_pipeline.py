"""The whole pipeline into ticket systems, e-mail and webhooks: each item once, even after SIGKILL.

cron.yaml -> rss monitor (fake feed) -> rules -> state.db -> fake Jira, Zendesk
and GitHub, a real SMTP server (aiosmtpd) and the sandbox's webhook receiver
(and the fake Slack), run as the real `earful run` command in a subprocess
that kills itself with SIGKILL between a send and the outbox update
(EARFUL_FAULT=during_delivery), then run again. The subprocess loads the
destinations through the registry in earful/alerts/__init__.py (`type: jira`
etc.).

Two kinds of receiver, one guarantee. Slack and the ticket systems are asked
after a crash whether the delivery in doubt arrived (`find_delivered`), so
it is never sent twice. SMTP and webhooks cannot be asked: the row is sent
again, as the same message (its Message-ID, its Idempotency-Key, both
derived from the item key), and the receiving side keeps one. "Lost" and
"duplicate" are counted on what each receiver keeps; the copies a resend
puts on the wire are counted apart.

Escalations need a source that can see replies and a clock that passes a
deadline, which `earful run` on an RSS feed cannot give: those crash tests
drive the real runner (`run(config, now=...)`) in a subprocess with the
scripted connector of tests/fake_connector.py. The lifecycle test at the end
runs in-process on a fake clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from earful import alerts, connectors
from earful.core import Mention
from earful.monitors.config import load_config
from earful.monitors.runner import run
from earful.monitors.store import Store
from earful.sandbox.feeds import FeedServer
from earful.sandbox.github import DEFAULT_REPOSITORY, GitHubServer
from earful.sandbox.github import DEFAULT_TOKEN as GITHUB_TOKEN
from earful.sandbox.jira import DEFAULT_API_TOKEN as JIRA_TOKEN
from earful.sandbox.jira import DEFAULT_EMAIL as JIRA_EMAIL
from earful.sandbox.jira import JiraServer
from earful.sandbox.server import Request, Response
from earful.sandbox.webhook import DEFAULT_SECRET, WebhookReceiver
from earful.sandbox.zendesk import DEFAULT_API_TOKEN as ZENDESK_TOKEN
from earful.sandbox.zendesk import DEFAULT_EMAIL as ZENDESK_EMAIL
from earful.sandbox.zendesk import ZendeskServer

from .deploy import write_deployment
from .fake_connector import SOURCES, Script
from .support import (
    CHANNEL,
    MATCHING,
    POSTS,
    RULES,
    SLA_RULES,
    SLACK_ENV,
    atom,
    earful,
    slack_destination,
)

SYSTEMS = ("jira", "zendesk", "github")
RECONCILING = ("slack", *SYSTEMS)  # asked after a crash whether the delivery in doubt arrived: never sent twice
RESENDING = ("email", "webhook")  # cannot be asked: sent again as the same message, which the receiver keeps once
ENV = {"EARFUL_TEST_JIRA_TOKEN": JIRA_TOKEN, "EARFUL_TEST_ZENDESK_TOKEN": ZENDESK_TOKEN, "EARFUL_TEST_GITHUB_TOKEN": GITHUB_TOKEN,
       "EARFUL_TEST_HOOK_SECRET": DEFAULT_SECRET, **SLACK_ENV}


@pytest.fixture
def systems() -> Iterator[dict[str, Any]]:
    with FeedServer() as feeds, JiraServer() as jira, ZendeskServer() as zendesk, GitHubServer() as github:
        yield {"feeds": feeds, "jira": jira, "zendesk": zendesk, "github": github}


class CountingReceiver(WebhookReceiver):
    """The sandbox's webhook receiver, also counting every delivery it acknowledged, the copies it dropped included."""

    def __init__(self) -> None:
        super().__init__()
        self.acknowledged = 0
        self._count = threading.Lock()

    def handle(self, request: Request) -> Response:
        response = super().handle(request)
        if response.status in (200, 202):
            with self._count:
                self.acknowledged += 1
        return response


@pytest.fixture
def receivers(request: pytest.FixtureRequest, systems: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`systems` plus the fake Slack, the webhook receiver and, where aiosmtpd is installed, an SMTP server."""
    with CountingReceiver() as hooks:
        servers = {**systems, "slack": request.getfixturevalue("slack"), "webhook": hooks}
        try:
            from .test_email import LocalController, Mailbox
        except pytest.skip.Exception:  # test_email skips itself without aiosmtpd: so do the e-mail cases here
            yield servers
            return
        mailbox = Mailbox()
        controller = LocalController(mailbox, hostname="127.0.0.1", port=0)
        controller.start()
        try:
            yield {**servers, "email": (controller, mailbox)}
        finally:
            controller.stop()


def destination(servers: dict[str, Any], kind: str) -> dict[str, Any]:
    """The cron.yaml entry of destination `kind` (named as its kind), pointed at its fake."""
    if kind in SYSTEMS:
        return ticket_destinations(servers)[kind]
    if kind == "slack":
        return slack_destination(servers["slack"], max_retries=0)
    if kind == "webhook":
        return {"type": "webhook", "url": servers["webhook"].hook_url, "secret": "${EARFUL_TEST_HOOK_SECRET}"}
    if "email" not in servers:
        pytest.skip("aiosmtpd is not installed: no SMTP server for the e-mail destination")
    controller, _ = servers["email"]
    return {"type": "email", "base_url": f"smtp://127.0.0.1:{controller.port}", "security": "none",
            "sender": "earful <alerts@acme.example>", "to": ["support@acme.example"]}


def received(servers: dict[str, Any], kind: str) -> list[str]:
    """The item keys the receiving side keeps, one entry per ticket, message, event or distinct e-mail."""
    if kind in SYSTEMS:
        return tickets(servers, kind)
    if kind == "slack":
        return servers["slack"].posted_keys(CHANNEL)
    if kind == "webhook":
        return [event.key for event in servers["webhook"].events()]
    kept = {r.message["Message-ID"]: r.message["X-Earful-Key"] for r in servers["email"][1].received}  # a mail store keeps one per Message-ID
    return list(kept.values())


def copies_sent(servers: dict[str, Any], kind: str) -> int:
    """Every copy that reached the receiver, the ones it dropped as already known included."""
    if kind == "webhook":
        return servers["webhook"].acknowledged
    if kind == "email":
        return len(servers["email"][1].received)
    return len(received(servers, kind))  # a second send would be a second ticket or message


def ticket_destinations(servers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "jira": {"type": "jira", "base_url": servers["jira"].url, "project": "SUP", "email": JIRA_EMAIL,
                 "api_token": "${EARFUL_TEST_JIRA_TOKEN}", "resolve_on_answer": "Done"},
        "zendesk": {"type": "zendesk", "base_url": servers["zendesk"].url, "email": ZENDESK_EMAIL,
                    "api_token": "${EARFUL_TEST_ZENDESK_TOKEN}", "solve_on_answer": True},
        "github": {"type": "github", "base_url": servers["github"].url, "repository": DEFAULT_REPOSITORY,
                   "token": "${EARFUL_TEST_GITHUB_TOKEN}", "close_on_answer": True},
    }


def deployment(tmp_path: Path, servers: dict[str, Any], notify: tuple[str, ...]) -> Path:
    servers["feeds"].set_feed("/latest.atom", atom(POSTS))
    return write_deployment(tmp_path, {
        "forum": {"connector": "rss", "schedule": "*/5 * * * *", "url": "https://forum.example/latest.atom",
                  "base_url": servers["feeds"].url, "notify": notify},
    }, RULES, destinations={kind: destination(servers, kind) for kind in (*SYSTEMS, *notify)}, env=ENV).path


def tickets(servers: dict[str, Any], system: str) -> list[str]:
    """The item keys of the tickets in one system, one entry per ticket."""
    if system == "jira":
        return [i["properties"].get("earful", {}).get("key") or i["fields"]["summary"] for i in servers["jira"].issues()]
    if system == "zendesk":
        return [t["external_id"] for t in servers["zendesk"].tickets()]
    bodies = [i["body"] for i in servers["github"].issues()]
    return [b.rsplit("<!-- earful:key=", 1)[1].split(" -->")[0] for b in bodies]


def assert_exactly_once(servers: dict[str, Any], system: str, config_path: Path) -> None:
    keys = received(servers, system)
    assert len(keys) == len(set(keys)) == len(MATCHING), f"{system}: {keys}"
    assert {k.split("#")[0].rsplit(":", 1)[0] for k in keys} == {"rss"}
    store = Store(config_path.parent / "state.db")
    rows = [r for r in store.outbox_rows() if r.destination == system]
    store.close()
    assert {r.status for r in rows} == {"delivered"}, [(r.key, r.status, r.last_error) for r in rows]
    assert sorted(r.key for r in rows) == sorted(keys)
    assert all(r.kind == "alert" for r in rows), "items found past their SLA are not escalated (see replies.tracker)"


def issue_of(servers: dict[str, Any], system: str, key: str) -> dict[str, Any]:
    """The ticket of item `key` in `system`, with what it needs for assertions."""
    if system == "jira":
        issue = next(i for i in servers["jira"].issues() if i["properties"]["earful"]["key"] == key)
        return {"priority": issue["fields"]["priority"]["name"], "comments": servers["jira"].comment_texts(issue["key"]),
                "flags": issue["fields"]["labels"], "status": issue["fields"]["status"]["name"]}
    if system == "zendesk":
        ticket = next(t for t in servers["zendesk"].tickets() if t["external_id"] == key)
        return {"priority": ticket["priority"], "comments": [c["plain_body"] for c in ticket["comments"][1:]], "flags": ticket["tags"],
                "status": ticket["status"]}
    issue = next(i for i in servers["github"].issues() if f"earful:key={key} " in i["body"])
    return {"priority": None, "comments": servers["github"].comments(DEFAULT_REPOSITORY, issue["number"]),
            "flags": [label["name"] for label in issue["labels"]], "status": issue["state"]}


# -- SIGKILL between ticket creation and the outbox update -----------------------------------------


@pytest.mark.parametrize("fault", ["during_delivery", "during_delivery:2", "during_delivery:4"])  # first, second, last item
@pytest.mark.parametrize("system", (*SYSTEMS, *RESENDING))
def test_sigkill_between_send_and_mark_then_rerun_delivers_each_item_once(tmp_path: Path, receivers: dict[str, Any], system: str,
                                                                          fault: str) -> None:
    config = deployment(tmp_path, receivers, (system,))
    crashed = earful("run", "--config", str(config), env={"EARFUL_FAULT": fault})
    assert crashed.returncode == -9, crashed.stderr
    number = int(fault.partition(":")[2] or 1)
    assert len(received(receivers, system)) == number, "the fault fired right after the receiver accepted a delivery"

    again = earful("run", "--config", str(config))
    assert again.returncode == 0, again.stderr
    if system in RESENDING:
        assert copies_sent(receivers, system) == len(MATCHING) + 1, "the delivery in doubt was sent again, as the same message"
    else:
        assert f"found 1 alert(s) already in {system}" in again.stdout, again.stdout
    assert_exactly_once(receivers, system, config)


@pytest.mark.parametrize("group", [RECONCILING, RESENDING], ids=["reconciling", "resending"])
def test_killed_after_every_single_delivery_into_every_destination(tmp_path: Path, receivers: dict[str, Any],
                                                                  group: tuple[str, ...]) -> None:
    """Each run settles the row its predecessor left in doubt, delivers one more, and dies.

    A resent copy passes the crash point too, so after the first run the
    resending group dies at the second send: the one new delivery.
    """
    config = deployment(tmp_path, receivers, group)
    crashes = 0
    for attempt in range(40):
        fault = "during_delivery" if group == RECONCILING or attempt == 0 else "during_delivery:2"
        result = earful("run", "--config", str(config), env={"EARFUL_FAULT": fault})
        if result.returncode == 0:
            break
        assert result.returncode == -9, result.stderr
        crashes += 1
    else:
        pytest.fail("earful never finished")
    assert crashes == len(MATCHING) * len(group), "every single delivery was interrupted once"
    for system in group:
        assert_exactly_once(receivers, system, config)
    assert earful("run", "--all", "--config", str(config)).returncode == 0  # and nothing more, ever
    for system in group:
        keys = received(receivers, system)
        assert len(keys) == len(set(keys)) == len(MATCHING)
        print(f"{system}: {len(MATCHING)} items, {len(MATCHING)} kills between send and mark, "
              f"{len(MATCHING) - len(set(keys))} lost, {len(keys) - len(set(keys))} duplicate(s), "
              f"{copies_sent(receivers, system) - len(keys)} resent copies dropped by the receiver")


def test_a_ticket_system_down_does_not_hold_up_the_others(tmp_path: Path, systems: dict[str, Any]) -> None:
    config = deployment(tmp_path, systems, SYSTEMS)
    systems["zendesk"].fail_next(Response.json({"error": "ServiceUnavailable", "description": "Maintenance"}, 503))
    result = earful("run", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert len(tickets(systems, "jira")) == len(tickets(systems, "github")) == len(MATCHING)
    assert tickets(systems, "zendesk") == []
    store = Store(config.parent / "state.db")
    pending = [r for r in store.outbox_rows("pending") if r.destination == "zendesk"]
    store.close()
    assert pending and "503" in (pending[0].last_error or "")


# -- escalations under SIGKILL: the real runner on a fixed clock, in a subprocess ----------------------

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def post(external_id: str, text: str) -> Mention:
    return Mention(source="fake", external_id=external_id, url=f"https://fake.example/{external_id}", author="customer", text=text,
                   created_at=T0)


DRIVER = """\
import sys
from datetime import datetime, timezone
sys.path.insert(0, {repo!r})
from earful import alerts, connectors
from earful.connectors.base import Mention
from earful.monitors.config import load_config
from earful.monitors.runner import run
from tests.fake_connector import SOURCES, Script

connectors.CONNECTORS["fake"] = "tests.fake_connector"
for name in ("jira", "zendesk", "github"):
    alerts.DESTINATIONS.setdefault(name, "earful.alerts." + name)
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
SOURCES["forum"] = Script(mentions=[
    Mention(source="fake", external_id="q1", url="https://fake.example/q1", author="customer", text="how do i export from acme?",
            created_at=T0),
    Mention(source="fake", external_id="c1", url="https://fake.example/c1", author="customer", text="acme is broken, I want a refund",
            created_at=T0),
])
report = run(load_config(sys.argv[1]), now=datetime.fromisoformat(sys.argv[2]))
print("reconciled", dict(report.delivery.reconciled), "delivered", dict(report.delivery.delivered), "failed", report.delivery.failed)
"""


def lifecycle_deployment(tmp_path: Path, servers: dict[str, Any], notify: tuple[str, ...],
                         more_destinations: dict[str, Any] | None = None) -> Path:
    return write_deployment(tmp_path, {"forum": {"connector": "fake", "schedule": "* * * * *", "notify": notify}}, SLA_RULES,
                            destinations={**ticket_destinations(servers), **(more_destinations or {})}, env=ENV).path


def drive(tmp_path: Path, config: Path, now: datetime, fault: str | None = None) -> subprocess.CompletedProcess:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(repo=str(Path(__file__).resolve().parent.parent)))
    env = {k: v for k, v in os.environ.items() if k != "EARFUL_FAULT"}
    if fault:
        env["EARFUL_FAULT"] = fault
    return subprocess.run([sys.executable, str(driver), str(config), now.isoformat()], capture_output=True, text=True, env=env, timeout=120)


def test_sigkill_between_escalating_and_marking_escalates_once(tmp_path: Path, systems: dict[str, Any]) -> None:
    config = lifecycle_deployment(tmp_path, systems, SYSTEMS)
    first = drive(tmp_path, config, T0 + timedelta(minutes=1))
    assert first.returncode == 0, first.stderr
    for system in SYSTEMS:
        assert len(tickets(systems, system)) == 2
        assert issue_of(systems, system, "fake:c1#" + system)["comments"] == []

    # past the complaint's 1h deadline: each run escalates one ticket and dies before the outbox knows
    outputs = []
    for minute in range(65, 80):
        result = drive(tmp_path, config, T0 + timedelta(minutes=minute), fault="during_delivery")
        outputs.append(result.stdout)
        if result.returncode == 0:
            break
        assert result.returncode == -9, result.stderr
    assert len(outputs) == len(SYSTEMS) + 1, outputs
    assert "reconciled {'github': 1}" in outputs[-1], outputs  # the last crash's row, found on GitHub

    expected_priority = {"jira": "Highest", "zendesk": "urgent", "github": None}
    for system in SYSTEMS:
        assert len(tickets(systems, system)) == 2, "an escalation never opens a second ticket"
        complaint = issue_of(systems, system, "fake:c1#" + system)
        assert complaint["priority"] == expected_priority[system], system
        [comment] = complaint["comments"]
        assert "SLA breached: no reply from the brand within 1h" in comment
        question = issue_of(systems, system, "fake:q1#" + system)
        assert question["comments"] == [] and question["priority"] in ("Medium", "normal", None)
    assert "sla-breached" in issue_of(systems, "github", "fake:c1#github")["flags"]
    store = Store(config.parent / "state.db")
    rows = store.outbox_rows()
    store.close()
    assert {r.status for r in rows} == {"delivered"} and sum(r.kind == "escalation" for r in rows) == len(SYSTEMS)


# -- the lifecycle, in process, on a fake clock --------------------------------------------------------

def test_answer_resolves_and_breach_escalates_once_in_every_system(tmp_path: Path, systems: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(connectors.CONNECTORS, "fake", "tests.fake_connector")
    for name in (*SYSTEMS, "webhook"):
        monkeypatch.setitem(alerts.DESTINATIONS, name, f"earful.alerts.{name}")
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EARFUL_TEST_HOOK_SECRET", DEFAULT_SECRET)
    SOURCES.clear()
    with WebhookReceiver() as hooks:
        hook = {"type": "webhook", "url": hooks.hook_url, "secret": "${EARFUL_TEST_HOOK_SECRET}"}
        lifecycle_deployment(tmp_path, systems, (*SYSTEMS, "hooks"), {"hooks": hook})
        config = load_config(tmp_path / "cron.yaml")
        clock = Clock(T0)
        SOURCES["forum"] = Script(mentions=[post("q1", "how do i export from acme?"), post("c1", "acme is broken, I want a refund")])
        SOURCES["forum"].answers["fake:q1"] = (T0 + timedelta(minutes=37), "acme_support")
        for minutes in range(0, 3 * 60, 5):
            clock.now = T0 + timedelta(minutes=minutes)
            report = run(config, clock=clock)
            assert not report.delivery.failed and not report.update_errors, (report.delivery.failed, report.update_errors)
        SOURCES.clear()

        jira, zendesk, github = systems["jira"], systems["zendesk"], systems["github"]
        answered_note = "answered by acme_support after 37m"

        # looked up by item key: the order in which the two were delivered is not what this test is about
        question, complaint = (next(i for i in jira.issues() if i["properties"]["earful"]["key"] == f"fake:{item}#jira")
                               for item in ("q1", "c1"))
        assert question["fields"]["status"]["name"] == "Done" and question["fields"]["priority"]["name"] == "Medium"
        assert [c for c in jira.comment_texts(question["key"]) if answered_note in c] and len(jira.comment_texts(question["key"])) == 1
        assert complaint["fields"]["priority"]["name"] == "Highest" and complaint["fields"]["status"]["name"] == "To Do"
        [breach] = jira.comment_texts(complaint["key"])
        assert "SLA breached: no reply from the brand within 1h" in breach

        [question_ticket], [complaint_ticket] = ([t for t in zendesk.tickets() if t["external_id"] == f"fake:{item}#zendesk"]
                                                 for item in ("q1", "c1"))
        assert question_ticket["status"] == "solved" and answered_note in question_ticket["comments"][-1]["plain_body"]
        assert complaint_ticket["priority"] == "urgent" and len(complaint_ticket["comments"]) == 2
        assert all(c["public"] is False for t in (question_ticket, complaint_ticket) for c in t["comments"])

        [question_issue], [complaint_issue] = ([i for i in github.issues() if f"earful:key=fake:{item}#github " in i["body"]]
                                               for item in ("q1", "c1"))
        assert question_issue["state"] == "closed"
        assert len(github.comments(DEFAULT_REPOSITORY, question_issue["number"])) == 1
        assert "sla-breached" in {label["name"] for label in complaint_issue["labels"]} and complaint_issue["state"] == "open"
        assert len(github.comments(DEFAULT_REPOSITORY, complaint_issue["number"])) == 1

        kinds = sorted(e.type for e in hooks.events())
        assert kinds == ["alert", "alert", "escalation", "update"]
        [update] = [e for e in hooks.events() if e.type == "update"]
        assert update.body["note"] == answered_note and update.body["in_reply_to"] == "fake:q1#hooks"
