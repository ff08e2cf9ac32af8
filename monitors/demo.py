"""`earful demo`: the real pipeline, offline, on bundled sample data.

Local servers on 127.0.0.1 play the sources (feeds, Hacker News) and Slack;
a config pointing at them is written into the demo directory and run
through exactly the code a cron tick runs. The demo directory keeps its
state.db, so a second demo run shows what an operator sees on the next
tick: nothing delivered twice.
"""

from __future__ import annotations

import json
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .fakes.feeds import ATOM, FeedServer
from .fakes.hackernews import HackerNewsServer
from .fakes.slack import SlackServer

DEMO_TOKEN = "xoxb-earful-demo-token"
SLACK_CHANNEL = "C0DEMO0SUPP"
FEEDS = {
    "/alerts/feeds/00000000000000000001/7000000000000000001": "google_alerts_acme.atom",
    "/r/CRM/.rss": "reddit_crm.atom",
    "/feeds/tag/acme-crm": "stackoverflow_acme.atom",
}


def _data(name: str) -> str:
    return (resources.files("earful.monitors") / "demo_data" / name).read_text(encoding="utf-8")


def _hackernews(now: float) -> HackerNewsServer:
    server = HackerNewsServer()
    sample = json.loads(_data("hackernews.json"))
    for story in sample["stories"]:
        fields = {k: v for k, v in story.items() if k not in ("id", "minutes_ago")}
        server.add_story(story["id"], created_at_i=int(now - story["minutes_ago"] * 60), **fields)
    for comment in sample["comments"]:
        fields = {k: v for k, v in comment.items() if k not in ("id", "minutes_ago")}
        server.add_comment(comment["id"], created_at_i=int(now - comment["minutes_ago"] * 60), **fields)
    return server


def write_config(directory: Path, urls: dict[str, str]) -> Path:
    """The demo's cron.yaml (fresh ports each run) and its rule pack."""
    (directory / "rules").mkdir(parents=True, exist_ok=True)
    text = _data("cron.yaml")
    for name, url in urls.items():
        text = text.replace("{" + name + "}", url)
    (directory / "cron.yaml").write_text(text, encoding="utf-8")
    (directory / "rules" / "acme.yaml").write_text(_data("acme.yaml"), encoding="utf-8")
    return directory / "cron.yaml"


def run_demo(directory: Path, out: Console) -> int:
    from .config import load_config
    from .runner import run

    directory.mkdir(parents=True, exist_ok=True)
    second_run = (directory / "state.db").exists()
    os.environ["EARFUL_DEMO_SLACK_TOKEN"] = DEMO_TOKEN
    feeds = FeedServer()
    for path, name in FEEDS.items():
        feeds.set_feed(path, _data(name), ATOM)
    slack = SlackServer(token=DEMO_TOKEN, channels={SLACK_CHANNEL: "support-alerts"})
    hackernews = _hackernews(time.time())
    with feeds, slack, hackernews:
        config = load_config(write_config(directory, {"feeds": feeds.url, "hackernews": hackernews.url, "slack": slack.url}))
        out.rule("[bold]earful demo[/bold]")
        out.print(f"sources and Slack are local servers; state: {escape(str(config.state_path))}"
                  + (" (existing: this is a repeat run)" if second_run else ""))
        report = run(config, force_all=True, progress=lambda o: _progress(out, o))
        delivered = report.delivery.total if report.delivery else 0
        _show_slack(out, slack)
    sources = sorted({o.source for o in report.monitors if o.alerts})
    out.rule()
    if delivered:
        out.print(f"[bold]{delivered} alert(s) delivered[/bold] from {len(sources)} connector(s) ({', '.join(sources)}). "
                  f"Run `earful demo --dir {escape(str(directory))}` again: nothing is delivered twice.")
    else:
        out.print("[bold]No new alerts[/bold]: everything in the sample data was already delivered "
                  f"(remembered in {escape(str(config.state_path))}).")
    return 1 if report.failed else 0


def _progress(out: Console, outcome: Any) -> None:
    if outcome.ok:
        out.print(f"[green]✓[/green] {escape(outcome.name)}: {outcome.fetched} fetched, {outcome.new_items} new, "
                  f"{outcome.alerts} alert(s) queued")
    else:
        out.print(f"[red]✗ {escape(outcome.error or outcome.name)}[/red]")


def _show_slack(out: Console, slack: SlackServer) -> None:
    messages = slack.messages(SLACK_CHANNEL)
    if not messages:
        return
    table = Table(title=f"fake Slack #support-alerts received {len(messages)} message(s)", show_lines=True)
    table.add_column("ts")
    table.add_column("item key (metadata)")
    table.add_column("text")
    for message in messages:
        key = ((message.get("metadata") or {}).get("event_payload") or {}).get("key", "")
        table.add_row(message["ts"], escape(key), escape(message.get("text", "")[:200]))
    out.print(table)
