"""`earful demo`: the real pipeline, offline, on bundled sample data.

Local servers on 127.0.0.1 play the sources (feeds, Hacker News) and Slack;
a config pointing at them is written into the demo directory and run
through exactly the code a cron tick runs. The demo directory keeps its
state.db, so a second demo run shows what an operator sees on the next
tick: nothing delivered twice.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from earful.sandbox.server import DemoSource
from earful.sandbox.slack import SlackServer
from earful.sandbox.zendesk import demo_helpdesk

from .store.files import write_private

DEMO_TOKEN = "xoxb-earful-demo-token"
SLACK_CHANNEL = "C0DEMO0SUPP"
# One line per sample source: a fake module exposing `demo_source(now) -> DemoSource`.
DEMO_SOURCES = [
    "earful.sandbox.hackernews",
    "earful.sandbox.feeds",
    "earful.sandbox.reddit",
    "earful.sandbox.x",
    "earful.sandbox.discord",
    "earful.sandbox.mastodon",
    "earful.sandbox.bluesky",
    "earful.sandbox.meta",
    "earful.sandbox.meta:instagram_demo_source",
    "earful.sandbox.linkedin",
    "earful.sandbox.telegram",
    "earful.sandbox.reviews:demo_sources",
    "earful.sandbox.appstores:demo_sources",
]
RULE_PACK = "acme"


def _data(name: str) -> str:
    return (resources.files("earful.sandbox") / "demo_data" / name).read_text(encoding="utf-8")


BROWSER_SOURCES = {"earful.sandbox.reviews:demo_sources"}


def browser_missing() -> str | None:
    """Why the review-site demo cannot run here (no Playwright, no chromium), or None."""
    import importlib.util
    import shutil

    from earful.connectors.browser import default_browser_path

    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install 'earful[browser]')"
    path = default_browser_path()
    if not (Path(path).exists() or shutil.which(path)):
        return f"no chromium at {path} (apt-get install chromium, or set EARFUL_CHROMIUM)"
    return None


def demo_sources(now: float, skip: set[str] = frozenset()) -> list[DemoSource]:
    """Each entry is "module" (its `demo_source`) or "module:function" (one DemoSource or a list)."""
    found: list[DemoSource] = []
    for entry in DEMO_SOURCES:
        if entry in skip:
            continue
        module, _, function = entry.partition(":")
        made = getattr(importlib.import_module(module), function or "demo_source")(now)
        found.extend(made if isinstance(made, list) else [made])
    return found


def _route_complaints_to_helpdesk(pack: str) -> str:
    """The bundled pack names no destinations (tests reuse it); the demo sends complaints to the help desk too."""
    marker = "    reply_within: 2h\n"
    assert marker in pack, "the demo's complaint rule changed: update _route_complaints_to_helpdesk"
    return pack.replace(marker, marker + "    notify: [support, terminal, helpdesk]   # complaints also become tickets\n", 1)


def write_config(directory: Path, slack_url: str, sources: list[DemoSource], helpdesk: dict[str, Any]) -> Path:
    """The demo's cron.yaml (fresh ports each run) and its rule pack."""
    from ruamel.yaml import YAML

    monitors: dict[str, Any] = {}
    for source in sources:
        monitor = {k: v.replace("{url}", source.server.url) if isinstance(v, str) else v for k, v in source.monitor.items()}
        monitors[source.name] = {**monitor, "rules": [RULE_PACK], "notify": ["support", "terminal"]}
    buffer = io.StringIO()
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.dump({"monitors": monitors}, buffer)
    helpdesk_yaml = io.StringIO()
    yaml.dump({"destinations": {"helpdesk": helpdesk}}, helpdesk_yaml)
    text = _data("cron.yaml").replace("{slack}", slack_url).replace("monitors:\n", buffer.getvalue())
    text = text.replace("destinations:\n", helpdesk_yaml.getvalue(), 1)
    (directory / "rules").mkdir(parents=True, exist_ok=True)
    (directory / "cron.yaml").write_text(text, encoding="utf-8")
    (directory / "rules" / f"{RULE_PACK}.yaml").write_text(_route_complaints_to_helpdesk(_data(f"{RULE_PACK}.yaml")),
                                                           encoding="utf-8")
    return directory / "cron.yaml"


def run_demo(directory: Path, out: Console) -> int:
    from .config import load_config
    from .runner import run

    directory.mkdir(parents=True, exist_ok=True)
    second_run = (directory / "state.db").exists()
    os.environ["EARFUL_DEMO_SLACK_TOKEN"] = DEMO_TOKEN
    no_browser = browser_missing()
    if no_browser:
        out.print(f"[yellow]G2, Capterra and Trustpilot are left out of this demo: {escape(no_browser)}[/yellow]")
    sources = demo_sources(time.time(), skip=BROWSER_SOURCES if no_browser else set())
    for source in sources:
        os.environ.update(source.env)
    slack = SlackServer(token=DEMO_TOKEN, channels={SLACK_CHANNEL: "support-alerts"})
    helpdesk, helpdesk_destination = demo_helpdesk()
    os.environ.update(helpdesk.demo_env)
    with contextlib.ExitStack() as running:
        for server in [slack, helpdesk, *(s.server for s in sources)]:
            running.enter_context(server)
        helpdesk_destination = {**helpdesk_destination, "base_url": helpdesk.url}
        config = load_config(write_config(directory, slack.url, sources, helpdesk_destination))
        _write_env(directory, {"EARFUL_DEMO_SLACK_TOKEN": DEMO_TOKEN, **helpdesk.demo_env,
                               **{k: v for source in sources for k, v in source.env.items()}})
        out.rule("[bold]earful demo[/bold]")
        out.print(f"sources and Slack are local servers; state: {escape(str(config.state_path))}"
                  + (" (existing: this is a repeat run)" if second_run else ""))
        report = run(config, force_all=True, progress=lambda o: _progress(out, o))
        delivered = report.delivery.total if report.delivery else 0
        _show_slack(out, slack)
        _show_tickets(out, helpdesk)
    _show_queries(out, config)
    _show_digest(out, config, directory)
    connectors_with_alerts = sorted({o.source for o in report.monitors if o.alerts})
    out.rule()
    if delivered:
        out.print(f"[bold]{delivered} alert(s) delivered[/bold] from {len(connectors_with_alerts)} connector(s) ({', '.join(connectors_with_alerts)}). "
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


def _show_queries(out: Console, config: Any) -> None:
    """The reply-tracking view: what was answered, what breached its SLA, and the KPI table."""
    from datetime import datetime, timedelta, timezone

    from .report import kpis
    from .store import Store

    store = Store(config.state_path)
    try:
        queries = store.all_queries()
        now = datetime.now(timezone.utc)
        table = Table(title="unanswered-query tracking (reply SLAs)")
        for column in ("item", "SLA", "state"):
            table.add_column(column)
        for query in queries:
            if query.status == "answered":
                state = (f"[green]answered[/green] by {escape(query.answered_by)}" if query.answered_by
                         else "[green]answered[/green] (the page does not say by whom)")
            elif query.deadline <= query.seen_at:
                state = "[red]SLA breached[/red] before earful found it (said so in the alert)"
            elif query.deadline <= now:
                state = "[red]SLA breached[/red], escalated" if query.escalated_at else "[red]SLA breached[/red]"
            else:
                state = f"open, due in {int((query.deadline - now).total_seconds() // 60)} min"
            table.add_row(escape(query.item_key), f"{int(query.sla.total_seconds() // 3600)}h", state)
        out.print(table)
        report = Table(title="earful report (first response KPIs)")
        for column in ("channel", "queries", "answered", "within SLA", "breaches", "still open"):
            report.add_column(column)
        for row in kpis(config, store, now - timedelta(days=7), now):
            pct = row.within_sla_pct
            report.add_row(row.channel, str(row.queries), str(row.answered), "—" if pct is None else f"{pct:.0f}%",
                           str(row.breaches), str(row.still_open))
        out.print(report)
    finally:
        store.close()


def _write_env(directory: Path, env: dict[str, str]) -> None:
    """The demo's fake credentials beside its cron.yaml, so `earful status/report -c DIR/cron.yaml` work on it."""
    lines = ["# Fake credentials of the demo's local servers (written by `earful demo`)."]
    lines += [f"{name}={value}" for name, value in sorted(env.items())]
    write_private(directory / ".env", "\n".join(lines) + "\n")


def _show_tickets(out: Console, helpdesk: Any) -> None:
    tickets = helpdesk.tickets()
    if not tickets:
        return
    table = Table(title=f"fake help desk (Zendesk API) holds {len(tickets)} ticket(s)")
    for column in ("id", "priority", "external_id", "subject", "comments"):
        table.add_column(column, overflow="fold")
    for ticket in tickets:
        table.add_row(str(ticket["id"]), str(ticket.get("priority")), escape(str(ticket.get("external_id"))),
                      escape(str(ticket.get("subject"))[:80]), str(len(ticket.get("comments") or [])))
    out.print(table)


def _show_digest(out: Console, config: Any, directory: Path) -> None:
    """The weekly digest marketing would get, with its chart saved beside the state."""
    from datetime import datetime, timezone

    from . import digest as dg
    from . import digest_render
    from .store import Store

    store = Store(config.state_path)
    try:
        digest = dg.build(config, store, datetime.now(timezone.utc), "week", name="demo")
    finally:
        store.close()
    out.print(digest_render.console(digest))
    chart, problem = dg.render_chart(digest)
    if chart:
        path = directory / "digest-chart.png"
        path.write_bytes(chart)
        out.print(f"digest chart saved to {escape(str(path))}")
    elif problem:
        out.print(f"digest chart not drawn: {escape(problem)}")


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
