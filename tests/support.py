"""Helpers shared by tests: fake-feed builders and a subprocess runner for `earful`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
