"""The CLI surface: init, check, status, demo."""

from __future__ import annotations

from pathlib import Path

import pytest

from earful.monitors.cli import main

REPO = Path(__file__).resolve().parent.parent


def invoke(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code or 0


def test_init_writes_a_config_that_passes_check(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    assert invoke("init", str(tmp_path)) == 0
    assert (tmp_path / "cron.yaml").exists() and (tmp_path / "rules" / "example.yaml").exists()
    assert (tmp_path / ".env.example").read_text().startswith("#")
    assert invoke("check", "--config", str(tmp_path / "cron.yaml")) == 0
    assert "ok" in capsys.readouterr().out
    assert not (tmp_path / "state.db").exists()


def test_init_refuses_to_overwrite(tmp_path, capsys):
    assert invoke("init", str(tmp_path)) == 0
    assert invoke("init", str(tmp_path)) == 2
    assert "already exists" in capsys.readouterr().err


def test_the_repository_is_itself_a_valid_deployment(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-env")
    assert invoke("check", "--config", str(REPO / "cron.yaml")) == 0


def test_missing_secret_is_a_clear_config_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    invoke("init", str(tmp_path))
    assert invoke("check", "--config", str(tmp_path / "cron.yaml")) == 2
    assert "SLACK_BOT_TOKEN is not set" in capsys.readouterr().err


def test_status_table_after_a_run(deployment, feeds, slack, capsys):
    from .support import atom

    feeds.set_feed("/latest.atom", atom([("1", "Acme is broken", "acme broken")]))
    assert invoke("run", "--config", str(deployment)) == 0
    capsys.readouterr()
    assert invoke("status", "--config", str(deployment)) == 0
    out = capsys.readouterr().out
    assert "forum" in out and "ok" in out and "support" in out


def test_unknown_monitor_name_is_a_usage_error(deployment, capsys):
    assert invoke("run", "--monitor", "nope", "--config", str(deployment)) == 2
    assert "no monitor named 'nope'" in capsys.readouterr().err


def test_demo_twice_delivers_nothing_twice(tmp_path, capsys):
    assert invoke("demo", "--dir", str(tmp_path / "demo")) == 0
    first = capsys.readouterr().out
    import re

    delivered = re.search(r"(\d+) alert\(s\) delivered from (\d+) connector", first)
    assert delivered and int(delivered.group(1)) >= 5 and int(delivered.group(2)) >= 2, first
    assert "fake help desk (Zendesk API) holds" in first
    assert "answered" in first and "SLA breached" in first, "the demo shows answered and breached queries"
    chart = (tmp_path / "demo" / "digest-chart.png").read_bytes()
    assert chart.startswith(b"\x89PNG\r\n\x1a\n")
    assert invoke("demo", "--dir", str(tmp_path / "demo")) == 0
    second = capsys.readouterr().out
    assert "No new alerts" in second


def test_check_online_names_the_monitor_whose_source_fails(deployment, feeds, capsys):
    from earful.sandbox.server import Response

    from .support import atom

    feeds.set_feed("/latest.atom", atom([("1", "Acme", "acme")]))
    assert invoke("check", "--online", "--config", str(deployment)) == 0
    assert "ok" in capsys.readouterr().out
    feeds.fail_next(Response(401, "nope"))
    assert invoke("check", "--online", "--config", str(deployment)) == 1
    out = capsys.readouterr().out
    assert "forum" in out and "credentials rejected" in out


def test_quiet_run_prints_only_problems(deployment, feeds, capsys):
    from .support import atom

    feeds.set_feed("/latest.atom", atom([("1", "Acme is broken", "acme broken")]))
    assert invoke("run", "--quiet", "--config", str(deployment)) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    from earful.monitors.idle import nothing_due

    assert nothing_due(deployment), "`run --quiet` keeps the idle fast path"
    from earful.monitors.cli import _idle_config

    assert _idle_config(["run", "--quiet", "--config", "x.yaml"]) is not None


def test_a_corrupt_state_file_is_a_clear_error_not_a_traceback(deployment):
    from .support import earful

    (deployment.parent / "state.db").write_text("this is not a database")
    for command in (["run"], ["status"], ["report"]):
        result = earful(*command, "--config", str(deployment))
        assert result.returncode == 1, result
        assert "cannot open the state database" in result.stderr and "Traceback" not in result.stderr
