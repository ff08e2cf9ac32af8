"""The CLI as a new user meets it: version, hints outside a deployment, did-you-mean, placeholders, quiet cron mail."""

from __future__ import annotations

import shutil
import socket
from importlib.metadata import version

import pytest

from earful.monitors.config import load_config
from earful.monitors.yamlfile import ConfigError

from .deploy import write_deployment
from .support import CHANNEL, POSTS, RULES, SLACK_ENV, atom, earful
from .test_cli import invoke


def test_version(capsys):
    assert invoke("--version") == 0
    assert capsys.readouterr().out.strip() == f"earful {version('earful')}"


@pytest.mark.parametrize("command", [["check"], ["status"], ["run", "--all"]])
def test_outside_a_deployment_the_error_says_how_to_get_one(tmp_path, command):
    result = earful(*command, cwd=tmp_path)
    assert result.returncode == 2
    assert "cron.yaml: file not found" in result.stderr
    assert "earful init" in result.stderr and "-c PATH/cron.yaml" in result.stderr


def problems(path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return [str(p) for p in raised.value.problems]


def test_a_misspelt_rule_pack_or_connector_gets_a_suggestion(tmp_path):
    deploy = write_deployment(tmp_path, {"forum": {"connector": "rs", "url": "https://x.example/feed", "rules": ["acm"]},
                                         "hn": {"connector": "hackrnews", "query": "acme"}}, RULES)
    found = "\n".join(problems(deploy.path))
    assert "rule pack 'acm' not found (expected" in found and "acm.yaml) (did you mean 'acme'?)" in found
    assert "unknown connector 'hackrnews' (did you mean 'hackernews'?)" in found
    assert "unknown connector 'rs' (did you mean 'rss'?)" in found


def test_an_unset_token_is_reported_once(tmp_path, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    assert invoke("init", str(tmp_path)) == 0
    found = problems(tmp_path / "cron.yaml")
    assert found == ["cron.yaml:11: environment variable SLACK_BOT_TOKEN is not set (put it in the environment or in .env)"] \
        or (len(found) == 1 and "SLACK_BOT_TOKEN is not set" in found[0]), found


def test_init_routes_alerts_to_slack_and_check_reports_the_placeholder_token(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    assert invoke("init", str(tmp_path)) == 0
    capsys.readouterr()
    text = (tmp_path / "cron.yaml").read_text()
    assert "\n    type: console" not in text and "#   type: console" in text, "console is only a commented alternative"
    shutil.copy(tmp_path / ".env.example", tmp_path / ".env")
    (tmp_path / ".env").chmod(0o600)
    assert invoke("check", "--config", str(tmp_path / "cron.yaml")) == 2
    err = capsys.readouterr().err
    line = next(n for n, text in enumerate((tmp_path / ".env").read_text().splitlines(), 1) if text.startswith("SLACK_BOT_TOKEN="))
    assert f".env:{line}: SLACK_BOT_TOKEN still holds a placeholder" in err and "cron.yaml:11" in err
    assert "1 configuration problem(s)" in err

    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-1234-5678-abcdefABCDEF\n")
    assert invoke("check", "--config", str(tmp_path / "cron.yaml")) == 0
    config = load_config(tmp_path / "cron.yaml")
    assert {d.type for d in config.destinations.values()} == {"slack"}
    assert all(m.common.notify == ("support",) or not m.common.notify for m in config.monitors.values())


@pytest.mark.parametrize("value", ["xoxb-xxxx-xxxx", "changeme", "<your token>", "REPLACE_ME"])
def test_a_placeholder_in_the_process_environment_is_reported_at_its_use(tmp_path, monkeypatch, value):
    monkeypatch.setenv("SLACK_BOT_TOKEN", value)
    assert invoke("init", str(tmp_path)) == 0
    (found,) = problems(tmp_path / "cron.yaml")
    assert found.endswith("cron.yaml:11: environment variable SLACK_BOT_TOKEN still holds a placeholder from the template: "
                          "set it to the real value"), found
    assert value not in found, "the value itself is not echoed"


@pytest.mark.parametrize("value", ["xoxb-17-4242-aXxxBq", "s3cr3t-boxxxy", "hunter2"])
def test_real_looking_values_are_not_placeholders(tmp_path, monkeypatch, value):
    monkeypatch.setenv("SLACK_BOT_TOKEN", value)
    assert invoke("init", str(tmp_path)) == 0
    load_config(tmp_path / "cron.yaml")


def test_quiet_run_prints_no_library_log_lines(tmp_path, feeds):
    """A Slack that cannot be reached: slack_sdk logs an ERROR per attempt; under --quiet only earful's line shows."""
    feeds.set_feed("/latest.atom", atom(POSTS))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    slack = {"type": "slack", "token": "${EARFUL_TEST_SLACK_TOKEN}", "channel": CHANNEL,
             "base_url": f"http://127.0.0.1:{port}/api/", "min_interval": 0, "max_retries": 0, "timeout": 2}
    deploy = write_deployment(tmp_path, {"forum": {"connector": "rss", "url": "https://forum.example/latest.atom",
                                                   "base_url": feeds.url}}, RULES,
                              destinations={"support": slack}, env=SLACK_ENV)
    loud = earful("run", "--all", "--config", str(deploy.path))
    assert "slack_sdk" in loud.stderr, "the scenario makes the library log"
    quiet = earful("run", "--all", "--quiet", "--config", str(deploy.path))
    assert quiet.stdout == ""
    assert "slack_sdk" not in quiet.stderr and "delivery to support failed" in quiet.stderr
    assert quiet.stderr.count("\n") == 1, quiet.stderr
