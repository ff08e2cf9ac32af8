"""Shared fixtures: local fake servers and a writable earful deployment."""

from __future__ import annotations

import pytest

from earful.sandbox.feeds import FeedServer
from earful.sandbox.slack import SlackServer

from .deploy import write_deployment
from .requirements import NEEDS, in_ci
from .support import CHANNEL, RULES, SLACK_ENV, SLACK_TOKEN, slack_destination

_missing: dict[str, int] = {}


def pytest_configure(config):
    for need in NEEDS.values():
        config.addinivalue_line("markers", f"{need.marker}: {need.what}")


def pytest_collection_modifyitems(config, items):
    """A test whose need is missing is skipped with the reason (failed in CI)."""
    for marker, need in NEEDS.items():
        if need.present():
            continue
        for item in items:
            if marker in item.keywords:
                _missing[need.reason()] = _missing.get(need.reason(), 0) + 1
                if in_ci():
                    item.user_properties.append(("missing", need.reason()))
                else:
                    item.add_marker(pytest.mark.skip(reason=need.reason()))


def pytest_runtest_setup(item):
    missing = dict(item.user_properties).get("missing")
    if missing:
        pytest.fail(f"CI must run every test, but this one {missing}", pytrace=False)


def pytest_terminal_summary(terminalreporter):
    """Say it where nobody can miss it: these tests did not run."""
    for reason, count in _missing.items():
        verb = "FAILED (CI)" if in_ci() else "SKIPPED"
        terminalreporter.write_sep("!", f"{count} test(s) {verb}: {reason}", red=True, bold=True)


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
