"""Helpers shared by tests: fake-feed builders and a subprocess runner for `earful`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from earful.sandbox.server import DemoSource

from .deploy import CONSOLE, Deployment, write_deployment

SLACK_TOKEN = "xoxb-test-token"
CHANNEL = "C0TESTSUPP1"
RULES = """\
brand:
  name: Acme
  accounts: {hackernews: [acmehq], rss: [acme_official]}
rules:
  - id: complaint
    query: 'acme (broken OR refund OR "never respond*")'
    labels: [complaint]
    severity: high
    reply_within: 2h
  - id: question
    query: 'acme ("how do i" OR "does anyone")'
    labels: [question]
"""


SLA_RULES = """\
brand:
  name: Acme
  accounts: {fake: [acme_support]}
rules:
  - id: question
    query: 'acme ("how do i" OR "does anyone")'
    labels: [question]
    reply_within: 2h
  - id: complaint
    query: 'acme (broken OR refund)'
    labels: [complaint]
    severity: high
    reply_within: 1h
"""  # for tests/fake_connector.py's `fake` source: questions and complaints with a reply deadline
POSTS = [
    ("1", "Acme is broken again", "the export is broken since monday"),
    ("2", "How do I reset Acme?", "how do i reset my acme password"),
    ("3", "Lunch ideas", "nothing to do with the brand"),
    ("4", "Acme refund please", "I want a refund for acme"),
    ("5", "Does anyone use Acme with Zapier?", "does anyone know if acme works with zapier"),
]  # forum posts for `atom`; under RULES, all but "3" match
MATCHING = {"1", "2", "4", "5"}
SLACK_ENV = {"EARFUL_TEST_SLACK_TOKEN": SLACK_TOKEN}


def slack_destination(slack: Any, channel: str = CHANNEL, **options: Any) -> dict[str, Any]:
    """A `type: slack` destination posting to the fake Slack, unthrottled (its token is in `SLACK_ENV`)."""
    return {"type": "slack", "token": "${EARFUL_TEST_SLACK_TOKEN}", "channel": channel, "base_url": f"{slack.url}/api/",
            "min_interval": 0, **options}


def atom(entries: list[tuple[str, str, str]], title: str = "Acme feed") -> str:
    """A small, real-shaped Atom feed from (id, title, text) triples."""
    items = "".join(
        f"""<entry><id>urn:earful-test:{eid}</id><title>{t}</title>
        <link rel="alternate" href="https://forum.example/t/{eid}"/>
        <updated>2026-11-20T10:00:00Z</updated><published>2026-11-20T10:00:00Z</published>
        <author><name>user{eid}</name></author><summary type="html">{x}</summary></entry>"""
        for eid, t, x in entries
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:earful-test:feed</id><title>{title}</title>
<updated>2026-11-20T10:00:00Z</updated>{items}</feed>"""


def earful(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `earful` command in a subprocess (for kill -9 and overlap tests)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "earful.monitors.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=120)


@contextlib.contextmanager
def demo_deployment(tmp_path: Path, source: DemoSource) -> Iterator[Deployment]:
    """A fake's `demo_source` under the demo rule pack, with console destinations
    `support` and `marketing`: yields the deployment while the fake runs."""
    rules = (resources.files("earful.sandbox") / "demo_data" / "acme.yaml").read_text()
    with source.server:
        monitor = {k: v.replace("{url}", source.server.url) if isinstance(v, str) else v for k, v in source.monitor.items()}
        yield write_deployment(tmp_path, {source.name: monitor}, rules, env=source.env,
                               destinations={"support": CONSOLE, "marketing": CONSOLE})
