"""Shared fixtures: local fake servers and a writable earful deployment."""

from __future__ import annotations

import pytest

from earful.sandbox.feeds import FeedServer
from earful.sandbox.slack import SlackServer

from .deploy import write_deployment
from .support import CHANNEL, RULES, SLACK_ENV, SLACK_TOKEN, slack_destination


@pytest.fixture
def feeds():
    with FeedServer() as server:
        yield server


@pytest.fixture
def slack():
    with SlackServer(token=SLACK_TOKEN, channels={CHANNEL: "support"}) as server:
        yield server


@pytest.fixture
def deployment(tmp_path, feeds, slack):
    """A config dir with one rss monitor -> fake Slack; returns the cron.yaml path."""
    return write_deployment(tmp_path, {
        "forum": {"connector": "rss", "schedule": "*/5 * * * *", "url": "https://forum.example/latest.atom", "base_url": feeds.url},
    }, RULES, destinations={"support": slack_destination(slack, max_retries=0)}, env=SLACK_ENV).path
