"""A reply check that fails is reported like a failed fetch and never counts as "not answered".

The fake source of tests/fake_connector.py, with its `replies()` made to
raise for a while (a comments endpoint answering 502), on a fake clock:
the run reports the failure and fails, `earful status` shows it, a health
notice goes out after `health.failures` runs in a row and a recovery notice
when checks work again, and a question whose deadline passes while its
checks fail is escalated only once a check has worked and seen no answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from earful import connectors
from earful.core import Mention, utcnow
from earful.monitors.cli import main
from earful.monitors.runner import run
from earful.monitors.store import Store

from .deploy import write_deployment
from .fake_connector import SOURCES, FakeConnector, Script
from .support import CHANNEL, SLA_RULES, SLACK_ENV, slack_destination

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
ONCALL = "C0ONCALL001"
ERROR = "comments endpoint answered HTTP 502 Bad Gateway"


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`outage["on"] = True` makes every reply check raise; `outage["raised"]` counts them."""
    state: dict[str, Any] = {"on": False, "raised": 0}
    working = FakeConnector.replies

    def replies(self: FakeConnector, mention: Mention) -> Any:
        if state["on"]:
            state["raised"] += 1
            raise ConnectionError(ERROR)
        return working(self, mention)

    monkeypatch.setattr(FakeConnector, "replies", replies)
    monkeypatch.setitem(connectors.CONNECTORS, "fake", "tests.fake_connector")
    SOURCES.clear()
    yield state
    SOURCES.clear()


@pytest.fixture
def config(tmp_path, slack, outage):
    slack.add_channel("oncall", ONCALL)
    return write_deployment(tmp_path, {"forum": {"connector": "fake", "schedule": "* * * * *"}},
                            SLA_RULES + "    escalate: [oncall]\n", env=SLACK_ENV, destinations={
                                "support": slack_destination(slack, max_retries=0),
                                "oncall": slack_destination(slack, channel=ONCALL),
                            }).config


def complaint(at: datetime = T0) -> Mention:
    return Mention(source="fake", external_id="c1", url="https://fake.example/c1", author="customer",
                   text="acme is broken, I want a refund", created_at=at)  # reply_within: 1h, escalate: [oncall]


def the_query(config):
    store = Store(config.state_path)
    [query] = store.all_queries()
    store.close()
    return query


def monitor_state(config) -> dict[str, Any]:
    store = Store(config.state_path)
    state = store.monitor_state("forum")
    store.close()
    return state


def tick_until(config, clock: Clock, end: datetime, every: timedelta = timedelta(minutes=5), **hooks: Any) -> list:
    """Five-minute ticks up to `end`; `hooks` maps a moment to a callable run just before that tick."""
    reports = []
    while clock.now <= end:
        for at, hook in hooks.get("at", {}).items():
            if at == clock.now:
                hook()
        reports.append((clock.now, run(config, clock=clock)))
        clock.now += every
    return reports


def health_notices(slack, kind: str) -> list[str]:
    return [k for k in slack.posted_keys(CHANNEL) if k.startswith("earful:health:forum:") and f":{kind}#" in k]


def test_a_failed_check_is_reported_and_fails_the_run_but_is_never_a_verdict(config, slack, outage):
    SOURCES["forum"] = Script(mentions=[complaint()])
    clock = Clock(T0)
    assert not run(config, clock=clock).failed
    outage["on"] = True
    clock.now = T0 + timedelta(minutes=5)
    report = run(config, clock=clock)
    assert report.failed, "a failed reply check fails the run like a failed fetch (exit 1)"
    assert all(m.ok for m in report.monitors), "the fetch itself worked"
    [error] = report.replies.failures["forum"]
    assert "fake:c1" in error and ERROR in error
    query = the_query(config)
    assert query.status == "open" and query.answered_at is None
    assert query.next_check_at == T0 + timedelta(minutes=20), "before the deadline a failed look waits for the next step"
    state = monitor_state(config)
    assert state["reply_check_failures"] == 1 and ERROR in state["last_reply_check_error"]

    outage["on"] = False
    clock.now = T0 + timedelta(minutes=20)
    assert not run(config, clock=clock).failed
    assert monitor_state(config)["reply_check_failures"] == 0


def test_answered_while_checks_fail_past_the_deadline_never_escalates(config, slack, outage):
    """The issue's case: an answered question must not escalate because the checks that would see the answer failed."""
    SOURCES["forum"] = Script(mentions=[complaint()])
    SOURCES["forum"].answers["fake:c1"] = (T0 + timedelta(minutes=50), "acme_support")
    clock = Clock(T0)
    tick_until(config, clock, T0 + timedelta(hours=9), at={
        T0 + timedelta(minutes=30): lambda: outage.update(on=True),
        T0 + timedelta(hours=3): lambda: outage.update(on=False),
    })
    assert outage["raised"] >= 4, "the deadline check and its retries all failed"
    query = the_query(config)
    assert query.status == "answered" and query.answered_at == T0 + timedelta(minutes=50)
    assert slack.posted_keys(ONCALL) == [] and not [k for k in slack.posted_keys(CHANNEL) if "#escalation#" in k]
    assert "answered by acme_support after 50m" in slack.messages(CHANNEL)[0]["text"] + str(slack.messages(CHANNEL)[0].get("blocks"))


def test_unanswered_while_checks_fail_escalates_once_a_check_works_again(config, slack, outage):
    SOURCES["forum"] = Script(mentions=[complaint()])
    clock = Clock(T0)
    escalated_at: list[datetime] = []
    for now, report in tick_until(config, clock, T0 + timedelta(hours=2, minutes=55), at={
            T0 + timedelta(minutes=30): lambda: outage.update(on=True)}):
        escalated_at += [now] * report.replies.escalated
        if now >= T0 + timedelta(hours=1):
            assert report.replies.escalated == 0
    assert slack.posted_keys(ONCALL) == [], "no escalation on the strength of failed checks"
    held = the_query(config)
    assert held.status == "open" and held.escalated_at is None
    assert held.next_check_at - clock.now <= timedelta(hours=1), "past the deadline a held query is retried at least hourly"

    outage["on"] = False  # the source is back at 3h: the next retry sees no answer, and only then does on-call hear
    for now, report in tick_until(config, clock, T0 + timedelta(hours=5)):
        escalated_at += [now] * report.replies.escalated
    assert slack.posted_keys(ONCALL) == ["fake:c1#escalation#oncall"]
    [when] = escalated_at
    assert T0 + timedelta(hours=3) <= when <= T0 + timedelta(hours=4)


def test_n_failing_runs_raise_one_notice_and_recovery_raises_one_back(config, slack, outage):
    SOURCES["forum"] = Script(mentions=[complaint()])
    clock = Clock(T0)
    tick_until(config, clock, T0 + timedelta(hours=6), at={
        T0 + timedelta(minutes=30): lambda: outage.update(on=True),
        T0 + timedelta(hours=4): lambda: outage.update(on=False),
    })
    assert monitor_state(config)["consecutive_failures"] == 0, "fetches kept working: the channel is watched"
    [failing] = health_notices(slack, "replies-failing")
    [back] = health_notices(slack, "replies-back")
    assert slack.posted_keys(CHANNEL).index(failing) < slack.posted_keys(CHANNEL).index(back)
    assert health_notices(slack, "unwatched") == []
    text = " ".join(m["text"] + str(m.get("blocks")) for m in slack.messages(CHANNEL))
    assert "Reply checks failing: forum" in text and ERROR in text
    assert "1 question(s) or complaint(s) past their deadline wait for a successful check" in text
    assert "Reply checks back: forum" in text

    outage["on"] = True  # a second incident gets its own notice (the escalated query is now checked daily)
    tick_until(config, clock, T0 + timedelta(days=4), every=timedelta(hours=1))
    assert len(health_notices(slack, "replies-failing")) == 2


def test_checks_still_failing_at_give_up_close_as_unknown_never_unanswered(config, slack, outage):
    SOURCES["forum"] = Script(mentions=[complaint()])
    clock = Clock(T0)
    run(config, clock=clock)
    outage["on"] = True
    tick_until(config, clock, T0 + timedelta(days=8), every=timedelta(hours=1))
    query = the_query(config)
    assert query.status == "unknown" and query.escalated_at is None
    assert slack.posted_keys(ONCALL) == []


def test_cli_run_quiet_reports_on_stderr_exits_1_and_status_shows_it(config, slack, outage, capsys):
    SOURCES["forum"] = Script(mentions=[complaint(utcnow() - timedelta(minutes=30))])
    run(config, now=utcnow() - timedelta(minutes=10))  # first sight ten minutes ago: its first check is due
    capsys.readouterr()
    outage["on"] = True
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--quiet", "--config", str(config.path)])
    captured = capsys.readouterr()
    assert exit_info.value.code == 1
    assert captured.out == ""
    assert "forum: 1 reply check(s) failed" in captured.err and ERROR in captured.err and "not escalated" in captured.err

    with pytest.raises(SystemExit) as exit_info:
        main(["status", "--config", str(config.path)])
    shown = " ".join(capsys.readouterr().out.split())
    assert exit_info.value.code in (0, None)
    assert "forum: reply checks failing, 1 run in a row" in shown and ERROR in shown
