"""Helpers shared by tests: fake-feed builders and a subprocess runner for `earful`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

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


@contextlib.contextmanager
def demo_deployment(tmp_path: Path, monkeypatch: Any, source: Any) -> Iterator[Any]:
    """A fake's `demo_source` under the demo rule pack, with console destinations
    `support` and `marketing`: yields the loaded Config while the fake runs."""
    from earful.monitors.config import load_config

    for name, value in source.env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "acme.yaml").write_text((resources.files("earful.sandbox") / "demo_data" / "acme.yaml").read_text())
    with source.server:
        monitor = {k: v.replace("{url}", source.server.url) if isinstance(v, str) else v for k, v in source.monitor.items()}
        lines = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in monitor.items())
        (tmp_path / "cron.yaml").write_text(f"state: state.db\ndestinations:\n  support:\n    type: console\n"
                                            f"  marketing:\n    type: console\nmonitors:\n  {source.name}:\n{lines}\n"
                                            f"    rules: [acme]\n    notify: [support]\n")
        yield load_config(tmp_path / "cron.yaml")
