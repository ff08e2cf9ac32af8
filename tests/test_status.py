"""`earful status`: 80 columns in cron mail and pipes, errors only while failing, next runs, queries, a stopped cron."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from earful.monitors.report import COLUMNS as REPORT_COLUMNS
from earful.sandbox.server import Response

from .deploy import CONSOLE, write_deployment
from .support import RULES, SLACK_TOKEN, atom, earful

STATUS_HEADERS = ("monitor", "state", "last\nrun", "next\nrun", "new", "sent", "failed\nruns", "open", "breached")
OUTBOX_HEADERS = ("destination", "delivered", "pending", "held", "state")
FEED = "https://forum.example/latest.atom"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """The state `earful demo` leaves: sixteen monitors, four destinations, answered and breached queries."""
    directory = tmp_path_factory.mktemp("status") / "demo"
    result = earful("demo", "--dir", str(directory))
    assert result.returncode == 0, result.stderr
    return directory


def piped(*args: str, columns: str | None) -> str:
    """The command's stdout as cron mail or a pipe gets it (never a terminal), with or without COLUMNS."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = columns
    result = subprocess.run([sys.executable, "-m", "earful.monitors.cli", *args], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_fits_80(text: str) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide


def assert_headers_whole(text: str, title: str, headers: tuple[str, ...]) -> None:
    """The header block under `title` holds each header word whole: none is split across lines."""
    words = Counter(word for header in headers for word in header.split())
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if line.strip() == title)
    rule = next(i for i in range(top + 1, len(lines)) if lines[i].strip() and set(lines[i].strip()) == {"─"})
    found = [word for line in lines[top + 1:rule] for word in line.split()]
    assert Counter(found) == words, (found, sorted(words))


@pytest.mark.parametrize("columns", ["80", None], ids=["COLUMNS=80", "piped"])
def test_status_and_report_fit_80_columns_with_whole_headers(demo_dir, columns):
    config = str(demo_dir / "cron.yaml")
    status = piped("status", "--config", config, columns=columns)
    assert_fits_80(status)
    assert_headers_whole(status, "monitors (counters: last 24h)", STATUS_HEADERS)
    assert_headers_whole(status, "delivery outbox", OUTBOX_HEADERS)
    assert "googleplay-acme" in status and "breached:" in status, "every monitor named whole, the columns explained"
    report = piped("report", "--config", config, columns=columns)
    assert_fits_80(report)
    assert_headers_whole(report, "reply KPIs, queries first seen in the last 7d", REPORT_COLUMNS)
    assert "FRT: time to the brand's first reply" in " ".join(report.split())


def test_status_json_counts_open_and_breached_queries_per_monitor(demo_dir):
    from earful.monitors.store import Store

    data = json.loads(piped("status", "--json", "--config", str(demo_dir / "cron.yaml"), columns=None))
    monitors = {m["name"]: m for m in data["monitors"]}
    configured = YAML(typ="safe").load((demo_dir / "cron.yaml").read_text())["monitors"]  # 16, or 13 without chromium
    assert len(monitors) == len(configured) and {m["state"] for m in monitors.values()} == {"ok"}
    store = Store(demo_dir / "state.db")
    try:
        queries = store.all_queries()
    finally:
        store.close()
    now = datetime.fromisoformat(data["now"])
    for name, row in monitors.items():
        waiting = [q for q in queries if q.monitor == name and q.status == "open"]
        assert (row["open_queries"], row["breached_queries"]) == (len(waiting), sum(q.deadline <= now for q in waiting))
        assert row["next_run"] and row["error"] is None
    assert sum(m["breached_queries"] for m in monitors.values()) > 0, "the demo has breached queries"
    assert {d["name"] for d in data["destinations"]} == {"helpdesk", "marketing", "support", "terminal"}
    assert data["scheduler"]["stopped"] is False and data["scheduler"]["stopped_after_s"] == 600


def forum(tmp_path: Path, feeds, schedule: str = "*/5 * * * *"):
    return write_deployment(tmp_path, {"forum": {"connector": "rss", "schedule": schedule, "url": FEED,
                                                 "base_url": feeds.url}}, RULES, destinations={"support": CONSOLE})


def status_text(deployment, *args: str) -> str:
    return piped("status", "--config", str(deployment.path), *args, columns="80")


def test_an_error_shows_in_full_once_and_only_while_the_monitor_fails(tmp_path, feeds):
    deployment = forum(tmp_path, feeds)
    feeds.set_feed("/latest.atom", atom([("1", "Acme is broken", "acme broken")]))
    deployment.tick()
    feeds.fail_next(Response(503, "upgrading"))
    stored = deployment.failing_tick("forum", "503")["last_error"]
    assert stored.count("'forum'") == 2, "the runner and the connector both name the monitor"
    own = stored[stored.rindex("'forum': ") + len("'forum': "):]
    assert len(own) > 100, "long enough to need wrapping"

    text = status_text(deployment)
    assert_fits_80(text)
    row = next(line for line in text.splitlines() if line.startswith("forum "))
    assert "failing" in row
    detail = text[text.index("forum: failing, 1 run in a row"):].splitlines()
    shown = " ".join(" ".join(detail[1:]).split())
    assert shown.startswith(" ".join(own.split())), "in full, not cut"
    assert "monitor 'forum'" not in text and "(rss):" not in text, "the row already names the monitor"
    assert text.count("forum") == 2  # its row and its error heading
    as_json = json.loads(piped("status", "--json", "--config", str(deployment.path), columns=None))
    assert as_json["monitors"][0]["error"] == own

    deployment.tick()  # the source is back
    text = status_text(deployment)
    assert "failing" not in text and "503" not in text, "no stale error once it works"
    assert json.loads(piped("status", "--json", "--config", str(deployment.path), columns=None))["monitors"][0]["error"] is None


def test_next_run_follows_the_schedule_and_a_stopped_cron_is_called_out(tmp_path, feeds):
    deployment = forum(tmp_path, feeds)
    feeds.set_feed("/latest.atom", atom([("1", "Acme is fine", "acme fine")]))
    slot = datetime.now(timezone.utc) - timedelta(hours=2, minutes=5)
    slot = slot.replace(minute=slot.minute - slot.minute % 5, second=0, microsecond=0)  # a */5 slot, 2h5m to 2h10m ago
    ran = slot + timedelta(seconds=30)
    deployment.tick(now=ran)
    idle_file = deployment.directory / "state.db.idle.json"
    os.utime(idle_file, (ran.timestamp(), ran.timestamp()))  # as if cron had last started earful then

    data = json.loads(piped("status", "--json", "--config", str(deployment.path), columns=None))
    assert datetime.fromisoformat(data["monitors"][0]["next_run"]) == slot + timedelta(minutes=5)
    assert data["scheduler"]["stopped"] is True and datetime.fromisoformat(data["scheduler"]["last_tick"]) == ran
    text = status_text(deployment)
    assert re.search(r"earful has not run for 2h: is cron/systemd running it\?", text), text
    assert text.index("earful has not run") < text.index("monitors (counters"), "the first thing a cron mail says"
    assert re.search(r"^forum +ok +2h ago +now ", text, re.M), text

    deployment.tick()  # cron is back: the monitor runs on the wall clock
    data = json.loads(piped("status", "--json", "--config", str(deployment.path), columns=None))
    assert data["scheduler"]["stopped"] is False
    assert datetime.fromisoformat(data["monitors"][0]["next_run"]) > datetime.fromisoformat(data["now"])
    assert "has not run" not in status_text(deployment)


def test_a_quiet_deployment_is_not_a_stopped_one(tmp_path, feeds):
    """Nothing due yet (an hourly schedule): an old last tick is no alarm."""
    deployment = forum(tmp_path, feeds, schedule="0 0 1 1 *")
    feeds.set_feed("/latest.atom", atom([("1", "Acme is fine", "acme fine")]))
    deployment.tick(now=datetime.now(timezone.utc) - timedelta(days=2))
    os.utime(deployment.directory / "state.db.idle.json", (0, 0))
    data = json.loads(piped("status", "--json", "--config", str(deployment.path), columns=None))
    assert data["scheduler"]["stopped"] is False


def test_a_failing_destination_shows_its_error_until_a_send_works(tmp_path, feeds, slack):
    from .support import slack_destination

    deployment = write_deployment(tmp_path, {"forum": {"connector": "rss", "url": FEED, "base_url": feeds.url}}, RULES,
                                  destinations={"support": slack_destination(slack, max_retries=0)},
                                  env={"EARFUL_TEST_SLACK_TOKEN": "xoxb-wrong"})
    feeds.set_feed("/latest.atom", atom([("1", "Acme is broken", "acme broken")]))
    deployment.tick()
    text = status_text(deployment)
    assert_fits_80(text)
    assert re.search(r"^support +0 +1 +0 +failing", text, re.M), text
    assert "support: failing, last send" in text

    (tmp_path / ".env").write_text(f"EARFUL_TEST_SLACK_TOKEN={SLACK_TOKEN}\n")
    deployment = type(deployment)(deployment.path)  # the config again, with the fixed token
    deployment.tick(now=datetime.now(timezone.utc) + timedelta(hours=1))
    text = status_text(deployment)
    assert re.search(r"^support +1 +0 +0 +ok", text, re.M), text
    assert "support: failing" not in text


def test_no_state_yet(tmp_path, feeds):
    deployment = forum(tmp_path, feeds)
    assert "no state yet" in status_text(deployment)
    assert json.loads(piped("status", "--json", "--config", str(deployment.path), columns=None))["monitors"] == []


def test_failing_reply_checks_show_under_their_monitor_until_they_work(tmp_path, feeds):
    deployment = forum(tmp_path, feeds)
    feeds.set_feed("/latest.atom", atom([("1", "Acme is fine", "acme fine")]))
    deployment.tick()
    with deployment.store() as store:
        for _ in range(2):
            store.record_reply_checks("forum", "rss monitor 'forum': GET https://forum.example/t/1 timed out",
                                      datetime.now(timezone.utc))
    text = status_text(deployment)
    assert re.search(r"^forum: reply checks failing, 2 runs in a row, last \ds ago$", text, re.M), text
    assert "  GET https://forum.example/t/1 timed out" in text and "monitor 'forum'" not in text
    with deployment.store() as store:
        store.record_reply_checks("forum", None, datetime.now(timezone.utc))
    assert "reply checks" not in status_text(deployment)
