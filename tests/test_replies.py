"""Reply tracking, SLAs, escalation and channel health, on a fake clock (no sleeping)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from earful import connectors
from earful.core import Mention, iso
from earful.monitors.business_hours import BusinessHours
from earful.monitors.runner import run
from earful.monitors.store import Query, Store

from .deploy import write_deployment
from .fake_connector import SOURCES, Script
from .support import CHANNEL, SLA_RULES, SLACK_ENV, slack_destination

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)  # a Monday

RULES = SLA_RULES + "    escalate: [oncall]\n"

class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(autouse=True)
def fake_source(monkeypatch):
    monkeypatch.setitem(connectors.CONNECTORS, "fake", "tests.fake_connector")
    monkeypatch.setitem(connectors.CONNECTORS, "fakeblind", "tests.blind_connector")
    SOURCES.clear()
    yield
    SOURCES.clear()


@pytest.fixture
def setup(tmp_path, slack):
    def make(settings: dict | None = None, connector: str = "fake", **monitor_options: object) -> object:
        return write_deployment(tmp_path, {
            "forum": {"connector": connector, "schedule": "* * * * *", **monitor_options},
        }, RULES, settings={"timezone": "Europe/Berlin", **(settings or {})}, env=SLACK_ENV, destinations={
            "support": slack_destination(slack, max_retries=0),
            "oncall": slack_destination(slack, channel="C0ONCALL001"),
        }).config

    slack.add_channel("oncall", "C0ONCALL001")
    return make


def post(external_id: str, text: str, at: datetime, author: str = "customer", parent: str | None = None) -> Mention:
    return Mention(source="fake", external_id=external_id, url=f"https://fake.example/{external_id}", author=author,
                   title="", text=text, created_at=at, parent_id=parent, kind="comment" if parent else "post")


def queries(config) -> dict[str, Query]:
    store = Store(config.state_path)
    tracked = {q.item_key: q for q in store.all_queries()}
    store.close()
    return tracked


def escalations(slack, channel=CHANNEL):
    return [k for k in slack.posted_keys(channel) if "#escalation#" in k]


def texts(slack, channel=CHANNEL):
    """What a reader sees of each message: the fallback text and every block."""
    import json

    return [m["text"] + json.dumps(m.get("blocks") or [], ensure_ascii=False) for m in slack.messages(channel)]


def test_answered_before_the_deadline_updates_the_message_and_never_escalates(setup, slack):
    config = setup()
    clock = Clock(T0)
    SOURCES["forum"] = Script(mentions=[post("q1", "how do i export from acme?", T0)])
    run(config, clock=clock)
    assert slack.posted_keys(CHANNEL) == ["fake:q1#support"]
    SOURCES["forum"].answers["fake:q1"] = (T0 + timedelta(minutes=37), "acme_support")
    for _ in range(12 * 6):  # six hours of five-minute ticks
        clock.advance(minutes=5)
        run(config, clock=clock)
    (row,) = queries(config).values()
    assert row.status == "answered" and row.answered_by == "acme_support"
    assert escalations(slack) == [] and escalations(slack, "C0ONCALL001") == []
    (message,) = slack.messages(CHANNEL)
    assert "answered by acme_support after 37m" in texts(slack)[0]
    assert message.get("edited"), "the original message is edited in place"


def test_answer_after_a_breach_escalates_once_then_updates(setup, slack):
    config = setup()
    clock = Clock(T0)
    SOURCES["forum"] = Script(mentions=[post("c1", "acme is broken, I want a refund", T0)])
    SOURCES["forum"].answers["fake:c1"] = (T0 + timedelta(hours=3), "acme_support")
    for _ in range(6 * 60 // 5):  # six hours of 5-minute ticks
        run(config, clock=clock)
        clock.advance(minutes=5)
    assert escalations(slack, "C0ONCALL001") == ["fake:c1#escalation#oncall"]
    (escalation,) = slack.messages("C0ONCALL001")
    assert "SLA breached" in escalation["text"]
    (row,) = queries(config).values()
    assert row.status == "answered"
    (original,) = texts(slack)
    assert "answered by acme_support after 3h" in original and "breached" in original


def test_never_answered_escalates_once_into_the_thread_and_gives_up_later(setup, slack):
    config = setup()
    clock = Clock(T0)
    SOURCES["forum"] = Script(mentions=[post("q2", "does anyone know how acme bills?", T0)])
    run(config, clock=clock)
    for hours in range(1, 24 * 9, 1):
        clock.now = T0 + timedelta(hours=hours)
        run(config, clock=clock)
    (row,) = queries(config).values()
    assert row.status == "unanswered" and row.escalated_at
    assert escalations(slack) == ["fake:q2#escalation#support"]
    original, reply = slack.messages(CHANNEL)
    assert reply.get("thread_ts") == original["ts"], "without `escalate`, the breach is answered in the original thread"


def test_recheck_backoff_at_most_one_check_per_step(setup, slack):
    config = setup()
    clock = Clock(T0)
    SOURCES["forum"] = Script(mentions=[post("q3", "how do i reset acme?", T0)])
    for _ in range(24 * 60):  # one day of one-minute ticks
        run(config, clock=clock)
        clock.advance(minutes=1)
    calls = [at - T0 for _, at in SOURCES["forum"].reply_calls]
    # steps after first sight (5m, 20m, 1h20m, 5h20m, 17h20m) plus the deadline (2h): never one per tick
    assert calls == [timedelta(minutes=5), timedelta(minutes=20), timedelta(hours=1, minutes=20), timedelta(hours=2),
                     timedelta(hours=5, minutes=20), timedelta(hours=17, minutes=20)], calls


def test_recheck_budget_per_run_is_respected(setup, slack):
    config = setup(reply_checks_per_run=2)
    clock = Clock(T0)
    SOURCES["forum"] = Script(mentions=[post(f"q{i}", f"how do i do thing {i} in acme?", T0) for i in range(5)])
    run(config, clock=clock)
    clock.advance(minutes=6)
    run(config, clock=clock)
    assert len(SOURCES["forum"].reply_calls) == 2
    clock.advance(minutes=1)
    run(config, clock=clock)
    assert len(SOURCES["forum"].reply_calls) == 4


def test_a_channel_that_cannot_see_replies_is_unknown_never_answered(setup, slack):
    config = setup(connector="fakeblind")
    clock = Clock(T0)
    SOURCES["forum"] = Script(mentions=[post("q4", "how do i export from acme?", T0)])
    for _ in range(30):
        run(config, clock=clock)
        clock.advance(minutes=5)
    (row,) = queries(config).values()
    assert row.status == "unknown" and row.answered_at is None
    assert not any("answered" in t for t in texts(slack))


def test_a_failed_look_is_retried_not_taken_as_unknown(setup, slack):
    config = setup()
    clock = Clock(T0)
    SOURCES["forum"] = Script(mentions=[post("q7", "how do i export from acme?", T0)], unsure=True)
    for _ in range(6):  # 30 minutes: looks at 5 and 20 minutes both fail
        run(config, clock=clock)
        clock.advance(minutes=5)
    (row,) = queries(config).values()
    assert row.status == "open" and row.checks == 2
    SOURCES["forum"].unsure = False
    SOURCES["forum"].answers["fake:q7"] = (T0 + timedelta(minutes=40), "acme_support")
    for _ in range(12):
        run(config, clock=clock)
        clock.advance(minutes=5)
    (row,) = queries(config).values()
    assert row.status == "answered"


def test_a_brand_reply_seen_as_a_mention_answers_without_a_check(setup, slack):
    config = setup()
    clock = Clock(T0)
    SOURCES["forum"] = Script(mentions=[post("q5", "how do i export from acme?", T0)])
    run(config, clock=clock)
    clock.advance(minutes=2)
    SOURCES["forum"].mentions.append(post("r5", "Use Settings > Export.", T0 + timedelta(minutes=2), "acme_support", parent="q5"))
    run(config, clock=clock)
    (row,) = queries(config).values()
    assert row.status == "answered" and row.answered_by == "acme_support"
    assert SOURCES["forum"].reply_calls == []
    assert "answered by acme_support after 2m" in texts(slack)[0]


def test_failing_three_times_then_recovering_raises_one_unwatched_and_one_back(setup, slack):
    config = setup()
    clock = Clock(T0)
    SOURCES["forum"] = Script(failing=True)
    for _ in range(6):
        run(config, clock=clock)
        clock.advance(minutes=1)
    SOURCES["forum"].failing = False
    for _ in range(3):
        run(config, clock=clock)
        clock.advance(minutes=1)
    keys = slack.posted_keys(CHANNEL)
    assert keys == ["earful:health:forum:1:unwatched#support", "earful:health:forum:1:back#support"]
    down, back = texts(slack)
    assert "Channel unwatched: forum" in down and "503" in down
    assert "Channel back: forum" in back


def test_a_channel_gone_silent_is_unwatched(setup, slack):
    config = setup({"health": {"silence_floor": "6h"}})
    clock = Clock(T0)
    SOURCES["forum"] = Script()
    for i in range(5):  # something new every hour for a while
        SOURCES["forum"].mentions.append(post(f"n{i}", f"note {i}", clock.now))
        run(config, clock=clock)
        clock.advance(hours=1)
    for _ in range(8):  # then nothing: runs succeed, find nothing
        run(config, clock=clock)
        clock.advance(hours=1)
    assert [k for k in slack.posted_keys(CHANNEL) if "health" in k] == ["earful:health:forum:1:unwatched#support"]
    assert "found nothing new" in texts(slack)[-1]


def test_business_hours_skip_weekends_and_holidays():
    berlin = ZoneInfo("Europe/Berlin")
    hours = BusinessHours.parse("Mon-Fri 09:00-18:00", berlin, frozenset({date(2026, 12, 28)}))
    friday_5pm = datetime(2026, 12, 25, 17, 0, tzinfo=berlin)  # a Friday
    # 1h left on Friday, weekend skipped, Monday 28th is a holiday: 3h more on Tuesday
    assert hours.add(friday_5pm, timedelta(hours=4)) == datetime(2026, 12, 29, 12, 0, tzinfo=berlin)
    saturday = datetime(2026, 12, 26, 11, 0, tzinfo=berlin)
    assert hours.add(saturday, timedelta(hours=2)) == datetime(2026, 12, 29, 11, 0, tzinfo=berlin)
    assert hours.elapsed(friday_5pm, datetime(2026, 12, 29, 12, 0, tzinfo=berlin)) == timedelta(hours=4)
    late_evening = datetime(2026, 12, 22, 20, 0, tzinfo=berlin)
    assert hours.add(late_evening, timedelta(minutes=30)) == datetime(2026, 12, 23, 9, 30, tzinfo=berlin)


def test_business_hours_across_a_dst_change():
    berlin = ZoneInfo("Europe/Berlin")
    hours = BusinessHours.parse("Mon-Fri 09:00-18:00", berlin)
    friday = datetime(2026, 10, 23, 17, 0, tzinfo=berlin)  # clocks go back on Sunday 25 October
    assert hours.add(friday, timedelta(hours=2)) == datetime(2026, 10, 26, 10, 0, tzinfo=berlin)


@pytest.mark.parametrize("spec", ["Mon-Fri", "Mon-Fri 18:00-09:00", "Funday 09:00-17:00", "9-5"])
def test_bad_business_hours_are_rejected(spec):
    with pytest.raises(ValueError):
        BusinessHours.parse(spec, timezone.utc)


def test_business_hours_sla_in_config(setup, slack):
    config = setup({"defaults": {"business_hours": "Mon-Fri 09:00-18:00", "holidays": ["2026-11-30"]}})
    assert config.business_hours() is not None
    friday_evening = datetime(2026, 11, 27, 16, 30, tzinfo=timezone.utc)  # 17:30 in Berlin
    clock = Clock(friday_evening)
    SOURCES["forum"] = Script(mentions=[post("q6", "how do i get a refund from acme?", friday_evening)])
    run(config, clock=clock)
    (row,) = queries(config).values()
    # complaint SLA 1h: 30 min on Friday, Monday 30th a holiday, 30 min on Tuesday
    assert iso(row.deadline).startswith("2026-12-01T08:30")


def test_config_rejects_bad_business_hours(setup, tmp_path):
    from earful.monitors.yamlfile import ConfigError

    with pytest.raises(ConfigError) as info:
        setup({"defaults": {"business_hours": "weekdays"}})
    assert any("business" in p.message or "business_hours" in p.message for p in info.value.problems)


def test_report_kpis_per_channel(setup, slack, capsys):
    import json

    from earful.monitors.cli import main

    config = setup()
    clock = Clock(T0)
    SOURCES["forum"] = Script(mentions=[
        post("a", "how do i export from acme?", T0),            # answered after 30m (SLA 2h)
        post("b", "does anyone know acme pricing?", T0),         # answered after 3h: breach
        post("c", "how do i import into acme?", T0),             # never answered: breach
    ])
    SOURCES["forum"].answers["fake:a"] = (T0 + timedelta(minutes=30), "acme_support")
    SOURCES["forum"].answers["fake:b"] = (T0 + timedelta(hours=3), "acme_support")
    for minutes in range(0, 5 * 60 + 31, 5):
        clock.now = T0 + timedelta(minutes=minutes)
        if minutes == 300:  # open, its 1h deadline not reached by the end
            SOURCES["forum"].mentions.append(post("d", "acme is broken", clock.now))
        run(config, clock=clock)
    from earful.monitors.report import kpis

    store = Store(config.state_path)
    (forum,) = [k for k in kpis(config, store, T0 - timedelta(days=1), clock.now) if k.channel == "fake"]
    store.close()
    assert (forum.queries, forum.answered, forum.breaches, forum.still_open) == (4, 2, 2, 2)  # c is open and breached
    assert forum.within_sla_pct == 33.3
    assert forum.median_first_response_s == (30 * 60 + 3 * 3600) / 2
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--since", "3650d", "--json", "--config", str(config.path)])
    assert exit_info.value.code in (0, None)
    data = json.loads(capsys.readouterr().out)
    assert data["channels"][0]["channel"] == "fake" and data["channels"][0]["queries"] == 4
