"""The whole tick: cron.yaml -> rss -> rules -> state.db -> Slack, exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from earful.core import utcnow
from earful.monitors.cli import main
from earful.monitors.config import load_config
from earful.monitors.runner import run
from earful.monitors.store import Store

from .support import CHANNEL, MATCHING, POSTS, atom, earful


def expected_keys(config_path, ids):
    config = load_config(config_path)
    store = Store(config.state_path)
    keys = {row.key for row in store.outbox_rows() if any(row.cluster.endswith(i) for i in ids)}
    store.close()
    return keys


def posted(slack):
    """Item alerts posted to the channel; escalations (old fixture posts breach their SLA) are checked apart."""
    keys = slack.posted_keys(CHANNEL)
    assert len(keys) == len(set(keys)), f"something was posted twice: {keys}"
    return [k for k in keys if "#escalation#" not in k]


def test_one_run_delivers_each_match_once(deployment, feeds, slack):
    feeds.set_feed("/latest.atom", atom(POSTS))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--config", str(deployment)])
    assert exit_info.value.code == 0
    keys = posted(slack)
    assert len(keys) == len(MATCHING) == len(set(keys))
    store = Store(deployment.parent / "state.db")
    assert {r.status for r in store.outbox_rows()} == {"delivered"}
    assert store.count("items") == len(POSTS)
    store.close()


def test_second_tick_is_not_due_and_sends_nothing(deployment, feeds, slack):
    feeds.set_feed("/latest.atom", atom(POSTS))
    config = load_config(deployment)
    first = run(config)
    assert [m.name for m in first.monitors] == ["forum"]
    second = run(config)
    assert second.monitors == [] and second.not_due == ["forum"]
    assert len(posted(slack)) == len(MATCHING)


def test_new_items_between_ticks_are_delivered_once(deployment, feeds, slack):
    config = load_config(deployment)
    feeds.set_feed("/latest.atom", atom(POSTS[:2]))
    run(config, force_all=True)
    feeds.set_feed("/latest.atom", atom(POSTS[:4]))
    run(config, force_all=True)
    run(config, force_all=True)  # a 304 tick
    feeds.set_feed("/latest.atom", atom(POSTS))
    run(config, force_all=True)
    keys = posted(slack)
    assert len(keys) == len(MATCHING) == len(set(keys))


def test_brand_accounts_never_alert(deployment, feeds, slack):
    body = atom([("9", "Acme is broken? No: fixed in 5.2", "acme broken export fixed")]).replace("user9", "acme_official")
    feeds.set_feed("/latest.atom", body)
    run(load_config(deployment), force_all=True)
    assert posted(slack) == []


def test_failing_monitor_does_not_stop_the_others(deployment, feeds, slack):
    text = deployment.read_text() + (
        "  broken:\n    connector: rss\n    url: https://down.example/feed\n"
        "    base_url: http://127.0.0.1:9\n    timeout: 2\n    rules: [acme]\n    notify: [support]\n"
    )
    deployment.write_text(text)
    feeds.set_feed("/latest.atom", atom(POSTS))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--config", str(deployment)])
    assert exit_info.value.code == 1
    assert len(posted(slack)) == len(MATCHING)
    store = Store(deployment.parent / "state.db")
    state = store.monitor_state("broken")
    assert state["consecutive_failures"] == 1 and "broken" in state["last_error"]
    store.close()


def test_rate_limited_slack_is_delivered_later_exactly_once(deployment, feeds, slack):
    feeds.set_feed("/latest.atom", atom(POSTS))
    config = load_config(deployment)
    slack.rate_limit_next(1, retry_after=1)
    report = run(config)
    assert report.delivery.failed and report.delivery.total == 0
    store = Store(config.state_path)
    (row, *_) = store.outbox_rows("pending")
    assert row.next_attempt_at > utcnow() and "rate limited" in (row.last_error or "")
    store.close()
    assert posted(slack) == []
    report = run(config, now=utcnow() + timedelta(seconds=1.2))  # past the Retry-After, without waiting for it
    assert report.monitors == []  # nothing due, but the outbox retries
    keys = posted(slack)
    assert len(keys) == len(MATCHING) == len(set(keys))


def test_dry_run_writes_and_sends_nothing(deployment, feeds, slack, capsys):
    feeds.set_feed("/latest.atom", atom(POSTS))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--dry-run", "--config", str(deployment)])
    assert exit_info.value.code == 0
    assert "would alert support" in capsys.readouterr().out
    assert posted(slack) == []
    assert not (deployment.parent / "state.db").exists()


@pytest.mark.parametrize("fault", ["after_fetch", "after_store", "during_delivery", "during_delivery:3"])
def test_sigkill_at_any_point_then_rerun_delivers_exactly_once(deployment, feeds, slack, fault):
    feeds.set_feed("/latest.atom", atom(POSTS))
    crashed = earful("run", "--config", str(deployment), env={"EARFUL_FAULT": fault})
    assert crashed.returncode == -9, crashed.stderr
    again = earful("run", "--config", str(deployment))
    assert again.returncode == 0, again.stderr
    keys = posted(slack)
    assert len(keys) == len(MATCHING) == len(set(keys)), keys
    store = Store(deployment.parent / "state.db")
    assert {r.status for r in store.outbox_rows()} == {"delivered"}
    store.close()


def test_sigkill_between_send_and_mark_is_reconciled_from_slack_history(deployment, feeds, slack):
    feeds.set_feed("/latest.atom", atom(POSTS))
    earful("run", "--config", str(deployment), env={"EARFUL_FAULT": "during_delivery"})
    assert len(posted(slack)) == 1
    again = earful("run", "--config", str(deployment))
    assert "already in support" in again.stdout
    assert len(set(posted(slack))) == len(posted(slack)) == len(MATCHING)


def test_overlapping_runs_deliver_nothing_twice(deployment, feeds, slack):
    feeds.set_feed("/latest.atom", atom(POSTS))
    cmd = [sys.executable, "-m", "earful.monitors.cli", "run", "--all", "--config", str(deployment)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
             for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert "database is locked" not in "".join(out + err for out, err in results)
    keys = posted(slack)
    assert len(keys) == len(MATCHING) == len(set(keys))


def test_idle_tick_uses_the_fast_path(deployment, feeds, slack):
    feeds.set_feed("/latest.atom", atom(POSTS))
    assert earful("run", "--config", str(deployment)).returncode == 0
    from earful.monitors.idle import nothing_due
    assert nothing_due(deployment)
    # an edited config invalidates the cache
    deployment.write_text(deployment.read_text() + "\n")
    assert not nothing_due(deployment)


def test_idle_tick_imports_no_dependencies(deployment, feeds, slack):
    feeds.set_feed("/latest.atom", atom(POSTS))
    earful("run", "--config", str(deployment))
    probe = ("import sys; from earful.monitors.cli import main\n"
             "try:\n    main(['run', '--config', sys.argv[1]])\nexcept SystemExit as e:\n    assert e.code == 0\n"
             "heavy = [m for m in ('pydantic', 'typer', 'rich', 'ruamel', 'croniter', 'sqlite_utils', 'slack_sdk', 'feedparser', 'requests') if m in sys.modules]\n"
             "print(heavy)")
    out = subprocess.run([sys.executable, "-c", probe, str(deployment)], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_flood_control_rolls_a_catch_up_into_one_summary(deployment, feeds, slack):
    text = deployment.read_text().replace("    max_retries: 0\n", "    max_retries: 0\n    max_per_run: 20\n")
    deployment.write_text(text)
    backlog = [(str(i), f"Acme is broken again ({i})", f"the export is broken, case {i} of the outage") for i in range(500)]
    feeds.set_feed("/latest.atom", atom(backlog))
    run(load_config(deployment))
    messages = slack.messages(CHANNEL)
    assert len(messages) == 21, "the cap, plus one summary"
    summary = messages[-1]["text"]
    assert "480 alerts held back" in summary
    store = Store(deployment.parent / "state.db")
    held = store.outbox_rows("held")
    assert len(held) == 480 and store.count("items") == 500, "nothing is lost"
    store.close()
    run(load_config(deployment))  # the next tick sends no held item and no second summary
    assert len(slack.messages(CHANNEL)) == 21
    from earful.monitors import digest

    store = Store(deployment.parent / "state.db")
    week = digest.build(load_config(deployment), store, utcnow() + timedelta(minutes=1), "week", name="test")
    store.close()
    assert week.total.current == 500 and week.held_total == 480, "every item is in the digest, held ones listed"


def test_a_timed_out_post_that_reached_slack_is_not_sent_again(deployment, feeds, slack, monkeypatch):
    """The post arrives but the answer is lost: the next run finds it in history instead of resending."""
    from earful.alerts import slack as slack_module

    feeds.set_feed("/latest.atom", atom(POSTS[:1]))
    config = load_config(deployment)
    original = slack_module.SlackDestination._call

    def lose_the_answer(self, method, **kwargs):
        response = original(self, method, **kwargs)
        if method == "chat_postMessage":
            raise slack_module.SlackError("slack: chat.postMessage failed: ReadTimeout", code="connection_error", in_doubt=True)
        return response

    monkeypatch.setattr(slack_module.SlackDestination, "_call", lose_the_answer)
    report = run(config)
    assert report.delivery.total == 0 and len(posted(slack)) == 1
    monkeypatch.setattr(slack_module.SlackDestination, "_call", original)
    store = Store(config.state_path)
    (row,) = store.outbox_rows()
    assert row.status == "sending"
    store.db.execute("update outbox set next_attempt_at = ?", ["2000-01-01T00:00:00+00:00"])
    store.db.conn.commit()
    store.close()
    report = run(config)
    assert report.delivery.reconciled["support"] == 1
    assert len(posted(slack)) == 1
