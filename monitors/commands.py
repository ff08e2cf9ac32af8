"""The `earful` subcommands (typer + rich).

Exit codes are part of the contract cron and systemd rely on:
0 every monitor ran, 1 a monitor (or a destination, permanently) failed
or the run budget left monitors for the next tick,
2 the configuration is wrong (nothing was fetched or written).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from . import logs
from .cli import DEFAULT_CONFIG, LOCKED_OUT

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="earful: no customer channel goes unwatched.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # one problem per line, greppable

ConfigOption = typer.Option(None, "--config", "-c", help="Path to cron.yaml (default: ./cron.yaml or $EARFUL_CONFIG).")


def _config_path(config: Optional[Path]) -> Path:
    return config or Path(os.environ.get("EARFUL_CONFIG", DEFAULT_CONFIG))


def _load(config: Optional[Path], **overrides):
    """Load the config (`overrides`: see `load_config`) or exit 2 with every problem listed."""
    from .config import load_config
    from .yamlfile import ConfigError

    try:
        loaded = load_config(_config_path(config), **overrides)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(escape(str(problem)))
        if not _config_path(config).exists():
            err.print("no earful deployment here: start one with `earful init DIR`, or point to one with "
                      "`-c PATH/cron.yaml` (or EARFUL_CONFIG).")
        err.print(f"[red]{len(exc.problems)} configuration problem(s); nothing was run.[/red]")
        raise typer.Exit(2) from None
    # The compiled rules are long-lived: keep the garbage collector from re-scanning them on every
    # full collection (measured: ~150 ms per collection at 10,000 rules).
    import gc

    gc.freeze()
    logs.use_config_secrets(loaded)
    return loaded


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        typer.echo(f"earful {version('earful')}")  # not `out`: an eager option runs before `_main` resets it
        raise typer.Exit()


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log details (tracebacks of failing monitors)."),
          _version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                        help="Print earful's version and exit.")) -> None:
    logs.setup(verbose)  # secrets masked in every log record and in stdout/stderr
    out.quiet = False  # `run --quiet` turns it on for its own invocation only


@app.command()
def run(
    config: Optional[Path] = ConfigOption,
    all_: bool = typer.Option(False, "--all", help="Run every enabled monitor, due or not."),
    monitor: Optional[list[str]] = typer.Option(None, "--monitor", "-m", help="Run only this monitor (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Fetch and match, print what would alert; write and send nothing."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only problems (for cron, which mails any output)."),
) -> None:
    """Run the monitors that are due, then deliver pending alerts."""
    from .runner import run as run_monitors
    from .yamlfile import Problem

    cfg = _load(config)
    unknown = [name for name in monitor or [] if name not in cfg.monitors]
    if unknown:
        for name in unknown:
            err.print(escape(str(Problem(str(cfg.path), 0, f"no monitor named '{name}' (defined: {', '.join(cfg.monitors)})"))))
        raise typer.Exit(2)
    if quiet:
        out.quiet = True  # problems go to `err`, which stays loud
        logs.quiet()  # and earful's own lines are the whole story: no library's log line before them
    names = monitor or (_enabled_for_dry_run(cfg) if dry_run else None)
    report = run_monitors(cfg, names=names, force_all=all_, dry_run=dry_run,
                          progress=partial(_print_outcome, dry_run=dry_run))
    if report.locked_out:
        out.print(LOCKED_OUT)
        raise typer.Exit(0)
    if report.overrun:  # monitors were left due: a problem, so on stderr even under --quiet (and exit 1 below)
        err.print(f"[yellow]{escape(report.overrun)}[/yellow]")
    _print_reply_check_failures(report.replies)
    if dry_run:
        _print_dry_run(report)
    elif report.delivery:
        _print_delivery(report.delivery)
        _print_digests(report)
    if not report.monitors and not dry_run and report.delivery and not report.delivery.total:
        out.print(f"nothing due ({len(report.not_due)} monitor(s) waiting for their schedule).")
    raise typer.Exit(1 if report.failed else 0)


def _enabled_for_dry_run(cfg) -> list[str]:
    """Like a real run, a dry run leaves disabled monitors alone unless named with -m; it says so."""
    names = [name for name, m in cfg.monitors.items() if m.common.enabled]
    disabled = [name for name in cfg.monitors if name not in names]
    if disabled:
        out.print(f"skipped {len(disabled)} disabled monitor(s) (enabled: false): {escape(', '.join(disabled))}")
    if not names:
        raise typer.Exit(0)
    return names


def _print_digests(report) -> None:
    for sent in report.digests:
        for delivery in sent.deliveries:
            if delivery.status == "delivered":
                out.print(f"sent digest '{escape(sent.digest.name)}' to {escape(delivery.destination)}")
            elif delivery.status == "failed":
                err.print(f"[yellow]digest '{escape(sent.digest.name)}' to {escape(delivery.destination)} failed: "
                          f"{escape(delivery.error or '')}[/yellow]")
    for message in report.digest_errors:
        err.print(f"[yellow]{escape(message)}[/yellow]")


def _print_outcome(outcome, dry_run: bool = False) -> None:
    if outcome.ok:
        extra = " (not modified)" if outcome.not_modified else ""
        alerts = f"{outcome.alerts} would alert (dry run: nothing queued)" if dry_run else f"{outcome.alerts} alert(s) queued"
        out.print(f"[green]✓[/green] {escape(outcome.name)}: {outcome.fetched} fetched, {outcome.new_items} new, "
                  f"{alerts}{extra}")
        for note in outcome.notes:  # partial trouble (one dead feed of several, a capped catch-up): never silent
            err.print(f"[yellow]  ! {escape(outcome.name)}: {escape(note)}[/yellow]")
    else:
        err.print(f"[red]✗ {escape(outcome.error or outcome.name)}[/red]")


def _print_reply_check_failures(replies) -> None:
    """Failed reply checks are failures like a failed fetch: on stderr even under --quiet (and exit 1)."""
    for name, errors in sorted((replies.failures if replies else {}).items()):
        err.print(f"[red]✗ {escape(name)}: {len(errors)} reply check(s) failed; those queries stay open and are not "
                  f"escalated until a check works. Last: {escape(errors[-1])}[/red]")


def _print_dry_run(report) -> None:
    for outcome in report.monitors:
        for mention, matches, destinations in outcome.would_alert:
            rules = ", ".join(m.qualified_rule for m in matches)
            out.print(f"would alert {escape(', '.join(destinations))}: [{escape(mention.source)}] "
                      f"{escape(mention.title or mention.text[:80])} ({escape(rules)}) {escape(mention.url)}")


def _print_delivery(delivery) -> None:
    for name, count in delivery.delivered.items():
        out.print(f"delivered {count} alert(s) to {escape(name)}")
    for name, count in delivery.reconciled.items():
        out.print(f"found {count} alert(s) already in {escape(name)} after an interrupted run; not sent again")
    for name, message in delivery.failed.items():
        kind = "permanent" if name in delivery.permanent else "will retry"
        err.print(f"[yellow]delivery to {escape(name)} failed ({kind}): {escape(message)}[/yellow]")


@app.command()
def status(config: Optional[Path] = ConfigOption,
           since: str = typer.Option("24h", help="Window for the counters, e.g. 24h, 7d."),
           as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Per monitor: state, last and next run, counters, open and breached queries; the outbox; a stopped scheduler."""
    import json

    from earful.core import parse_duration

    from .status import collect, render
    from .store import Store

    cfg = _load(config)
    try:
        window = parse_duration(since)
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None
    if not cfg.state_path.exists():
        if as_json:
            out.print_json(json.dumps({"since": since, "state": None, "scheduler": None, "monitors": [], "destinations": []}))
        else:
            out.print(f"no state yet at {escape(str(cfg.state_path))}: run `earful run` first.")
        return
    store = Store(cfg.state_path)
    try:
        report = collect(cfg, store, datetime.now(timezone.utc), window, since)
    finally:
        store.close()
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        out.print(render(report, cfg.state_path))


@app.command()
def report(config: Optional[Path] = ConfigOption,
           since: str = typer.Option("7d", help="Window: queries first seen within it, e.g. 24h, 7d, 30d."),
           as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Per channel: first-response time (median, p90), answered within SLA %, breaches, still open."""
    import json

    from earful.core import parse_duration

    from .report import kpi_table, kpis
    from .store import Store

    cfg = _load(config)
    try:
        window = parse_duration(since)
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None
    now = datetime.now(timezone.utc)
    rows = []
    if cfg.state_path.exists():
        store = Store(cfg.state_path)
        rows = kpis(cfg, store, now - window, now)
        store.close()
    if as_json:
        out.print_json(json.dumps({"since": since, "channels": [r.as_dict() for r in rows]}))
        return
    table = kpi_table(rows, since, cfg.business_hours() is not None)
    out.print(table)


@app.command()
def digest(config: Optional[Path] = ConfigOption,
           period: str = typer.Option("week", "--period", help="day or week, ending now."),
           to: Optional[list[str]] = typer.Option(None, "--to", help="Send to this destination (repeatable); default: print here."),
           dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be sent; send and write nothing.")) -> None:
    """A digest of the last day or week: in the terminal, or sent to a destination."""
    from . import digest as dg
    from . import digest_render as render
    from .outbox import DestinationPool
    from .store import Store

    cfg = _load(config)
    if period not in dg.PERIOD_DAYS:
        err.print("--period must be day or week")
        raise typer.Exit(2)
    unknown = [d for d in to or [] if d not in cfg.destinations]
    if unknown:
        err.print(f"no destination named {', '.join(unknown)} (defined: {', '.join(cfg.destinations)})")
        raise typer.Exit(2)
    if not cfg.state_path.exists():
        out.print(f"no state yet at {escape(str(cfg.state_path))}: run `earful run` first.")
        return
    now = datetime.now(timezone.utc)
    store = Store(cfg.state_path)
    try:
        if not to:
            out.print(render.console(dg.build(cfg, store, now, period, name="manual")))
            return
        pool = DestinationPool(cfg)
        try:
            sent = dg.send(cfg, store, dg.DigestConfig(name="manual", period=period, destinations=to), now, pool,
                           dry_run=dry_run, period_end=now)
        finally:
            pool.close_all()
        if dry_run:
            out.print(render.console(sent.digest))
            out.print(f"would send to {', '.join(to)}")
        for delivery in sent.deliveries:
            if delivery.status == "failed":
                err.print(f"[red]digest to {escape(delivery.destination)} failed: {escape(delivery.error or '')}[/red]")
            elif delivery.status == "delivered":
                out.print(f"digest sent to {escape(delivery.destination)}")
        raise typer.Exit(1 if sent.failed else 0)
    finally:
        store.close()


state_app = typer.Typer(no_args_is_help=True, help="The state file (state.db) and its delivery history.")
app.add_typer(state_app, name="state")


@state_app.command("reset")
def state_reset(config: Optional[Path] = ConfigOption) -> None:
    """Start over deliberately: accept state.db as it is now (empty, missing or replaced), forgetting its history."""
    from .lock import run_lock
    from .store import marker

    cfg = _load(config)
    with run_lock(cfg.state_path) as acquired:
        if not acquired:
            err.print("another earful run is working on this state file; try again when it has finished.")
            raise typer.Exit(1)
        forgot = marker.forget(cfg.state_path)
    if forgot:
        out.print(f"forgot the delivery history of {escape(str(cfg.state_path))}: the next run uses it as it is now "
                  "(a fresh state if it is empty or missing) and may alert again on items delivered before.", soft_wrap=True)
    else:
        out.print(f"{escape(str(cfg.state_path))} has no recorded delivery history; nothing to reset.", soft_wrap=True)


@app.command()
def init(directory: Path = typer.Argument(Path("."), help="Where to write cron.yaml, rules/ and .env.example."),
         force: bool = typer.Option(False, "--force", help="Overwrite existing files.")) -> None:
    """Write a commented cron.yaml, rules/example.yaml and .env.example."""
    from .templates import write_templates

    try:
        written = write_templates(directory, force=force)
    except FileExistsError as exc:
        err.print(f"{escape(str(exc))} already exists; use --force to overwrite.")
        raise typer.Exit(2) from None
    for path in written:
        out.print(f"wrote {escape(str(path))}")
    out.print("next: copy .env.example to .env, fill in tokens, then `earful check` and `earful run --dry-run`.")


@app.command()
def demo(directory: Path = typer.Option(Path("earful-demo"), "--dir", help="Where the demo keeps its state.")) -> None:
    """Run the whole pipeline offline against bundled sample data on 127.0.0.1."""
    from .demo import run_demo

    raise typer.Exit(run_demo(directory, out))


from . import cmd_check, cmd_cron, history_commands  # noqa: E402,F401  these register their commands on `app`
