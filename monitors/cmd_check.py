"""`earful check [--online]` and `earful test-alert DEST`: is this deployment going to work?

`check` reads the files only. `--online` contacts every enabled source and
every destination the way a run would, but posts nothing: a destination
proves its credentials and its target with its own `verify()` (Slack
auth.test + conversations.info, Jira /myself + the project, ...); one that
only a post could prove says so. `test-alert` is that post: one alert,
marked as a test, through the outbox.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from .commands import ConfigOption, _load, app, err, out


@app.command()
def check(config: Optional[Path] = ConfigOption,
          online: bool = typer.Option(False, "--online", help="Also contact every enabled source and every destination "
                                                              "to prove credentials and targets work (posts nothing).")) -> None:
    """Validate cron.yaml and the rule packs; every problem as file:line. Writes nothing."""
    cfg = _load(config)
    rules = sum(len(p.rules) for p in cfg.packs.values())
    out.print(f"[green]ok[/green]: {escape(str(cfg.path))}: {len(cfg.monitors)} monitor(s), "
              f"{len(cfg.destinations)} destination(s), {len(cfg.packs)} rule pack(s) with {rules} rule(s).")
    if online:
        raise typer.Exit(_check_online(cfg))


def _check_online(cfg) -> int:
    """A line per monitor and per destination (whole lines, for cron mail and grep); exit 1 when any failed.
    Secrets are never shown."""
    out.print("online check (nothing is posted):")
    failed = _check_sources(cfg) + _check_destinations(cfg)
    return 1 if failed else 0


def _line(mark: str, name: str, what: str, result: str) -> None:
    out.print(f"  {mark} {escape(name)} ({escape(what)}): {result}", soft_wrap=True)


def _check_sources(cfg) -> int:
    from earful.connectors.base import ConnectorError, RunResources

    from .runner import make_connector

    failed = 0
    resources = RunResources()
    now = datetime.now(timezone.utc)
    try:
        for name, monitor in cfg.monitors.items():
            if not monitor.common.enabled:
                _line("-", name, monitor.connector, "skipped: enabled: false")
                continue
            try:
                connector = make_connector(cfg, monitor, now, resources)
                try:
                    connector.verify()
                finally:
                    connector.close()
                _line("[green]✓[/green]", name, monitor.connector, "[green]ok[/green]")
            except ConnectorError as exc:
                failed += 1
                kind = "credentials rejected" if exc.status in (401, 403) else "failed"
                _line("[red]✗[/red]", name, monitor.connector, f"[red]{kind}[/red]: {escape(str(exc))}")
            except Exception as exc:  # noqa: BLE001 - report every monitor, whatever breaks
                failed += 1
                _line("[red]✗[/red]", name, monitor.connector,
                      f"[red]failed[/red]: {escape(type(exc).__name__)}: {escape(str(exc))}")
    finally:
        resources.close_all()
    return failed


def _check_destinations(cfg) -> int:
    from earful.alerts.base import DeliveryError, NotVerifiable

    from .outbox import DestinationPool

    failed = 0
    pool = DestinationPool(cfg)
    try:
        for name, spec in cfg.destinations.items():
            what = f"{spec.type} destination"
            try:
                _line("[green]✓[/green]", name, what, f"[green]ok[/green]: {escape(pool.get(name).verify())}")
            except NotVerifiable as exc:
                _line("[yellow]?[/yellow]", name, what, f"[yellow]not verified[/yellow]: {escape(str(exc))}")
            except DeliveryError as exc:
                failed += 1
                _line("[red]✗[/red]", name, what, f"[red]failed[/red]: {escape(str(exc))}")
            except Exception as exc:  # noqa: BLE001 - report every destination, whatever breaks
                failed += 1
                _line("[red]✗[/red]", name, what, f"[red]failed[/red]: {escape(type(exc).__name__)}: {escape(str(exc))}")
    finally:
        pool.close_all()
    return failed


@app.command("test-alert")
def test_alert(destination: str = typer.Argument(..., help="A destination name from cron.yaml."),
               config: Optional[Path] = ConfigOption) -> None:
    """Post one alert marked as a test to DESTINATION, through the outbox (delivered exactly once)."""
    from earful.core import utcnow

    from .config import did_you_mean
    from .test_alert import send_test_alert

    cfg = _load(config)
    if destination not in cfg.destinations:
        hint = did_you_mean(destination, cfg.destinations, label="defined") or " (none defined)"
        err.print(f"no destination named '{escape(destination)}'{escape(hint)}")
        raise typer.Exit(2)
    result = send_test_alert(cfg, destination, utcnow)
    if result.locked_out:
        err.print("another earful run is working on this state file; try again when it has finished.")
        raise typer.Exit(1)
    if result.delivered:
        out.print(f"sent a test alert to {escape(destination)} ({escape(result.row.remote_id or '')}).")
        return
    error = (result.report.failed.get(destination) if result.report else None) or (result.row.last_error if result.row else "")
    err.print(f"[red]the test alert to {escape(destination)} failed: {escape(error or 'not sent')}[/red]")
    err.print("it stays queued (once): the next run or `earful test-alert` retries it.")
    raise typer.Exit(1)
