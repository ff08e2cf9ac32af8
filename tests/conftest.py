"""Shared fixtures: local fake servers and a writable earful deployment."""

from __future__ import annotations

import textwrap

import pytest

from earful.sandbox.feeds import FeedServer
from earful.sandbox.slack import SlackServer

from .support import CHANNEL, RULES, SLACK_TOKEN


@pytest.fixture
def feeds():
    with FeedServer() as server:
        yield server


@pytest.fixture
def slack():
    with SlackServer(token=SLACK_TOKEN, channels={CHANNEL: "support"}) as server:
        yield server


@pytest.fixture
def deployment(tmp_path, feeds, slack, monkeypatch):
    """A config dir with one rss monitor -> fake Slack; returns the cron.yaml path."""
    monkeypatch.setenv("EARFUL_TEST_SLACK_TOKEN", SLACK_TOKEN)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "acme.yaml").write_text(RULES)
    (tmp_path / "cron.yaml").write_text(textwrap.dedent(f"""\
        state: state.db
        destinations:
          support:
            type: slack
            token: ${{EARFUL_TEST_SLACK_TOKEN}}
            channel: {CHANNEL}
            base_url: {slack.url}/api/
            min_interval: 0
            max_retries: 0
        monitors:
          forum:
            connector: rss
            schedule: "*/5 * * * *"
            url: https://forum.example/latest.atom
            base_url: {feeds.url}
            rules: [acme]
            notify: [support]
        """))
    return tmp_path / "cron.yaml"
