"""`earful search`, `earful browse`, `earful backtest`: looking back at what earful stored.

The commands only parse options and print; the work is in search.py,
browse.py and backtest.py. Tables fit 80 columns (cron mail, pipes): a
mention's URL sits under its excerpt instead of in a column of its own.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Iterable, Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .commands import ConfigOption, _load, app, err, out

EXCERPT = 160
FIELDS = ["posted_at", "found_at", "source", "monitor", "kind", "author", "rating", "title", "text", "url", "key"]


def _window(since: str) -> timedelta:
    from earful.core import parse_duration

    try:
        return parse_duration(since)
    except ValueError as exc:
        err.print(f"--since: {escape(str(exc))}")
        raise typer.Exit(2) from None


def _state(cfg) -> Path | None:
    if not cfg.state_path.exists():
        out.print(f"no state yet at {escape(str(cfg.state_path))}: run `earful run` first.")
        return None
    return cfg.state_path


def _record(stored) -> dict[str, Any]:
    """A stored mention as one flat JSON/CSV record (full text, UTC times)."""
    from earful.core import iso

    mention = stored.mention
    return {"posted_at": iso(stored.posted_at), "found_at": iso(stored.found_at), "source": mention.source,
            "monitor": stored.monitor, "kind": mention.kind, "author": mention.author, "rating": mention.rating,
            "title": mention.title, "text": mention.text, "url": mention.url, "key": mention.key}


def _excerpt(stored) -> str:
    mention = stored.mention
    words = " ".join(" — ".join(part for part in (mention.title, mention.text) if part).split())
    return words if len(words) <= EXCERPT else words[:EXCERPT - 1].rstrip() + "…"


def _mentions_table(title: str, rows: Iterable[tuple[Any, str]], tz: tzinfo, middle: str = "who") -> Table:
    """(stored mention, middle column text) rows as when | source | middle | mention + URL, in 80 columns."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("when", no_wrap=True)
    table.add_column("source", max_width=10, overflow="ellipsis", no_wrap=True)
    table.add_column(middle, max_width=16, overflow="fold")
    table.add_column("mention", ratio=1, overflow="fold")
    for stored, extra in rows:
        local = stored.posted_at.astimezone(tz)
        text = Text(_excerpt(stored))
        if stored.mention.url:
            text.append("\n" + stored.mention.url, style="dim")
        table.add_row(f"{local:%Y-%m-%d}\n{local:%H:%M}", stored.mention.source, Text(extra), text)
    return table


def _write_records(records: list[dict[str, Any]], as_csv: bool) -> None:
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    else:
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@app.command()
def search(
    query: str = typer.Argument(..., help="A query in the rule language, e.g. 'acme (refund OR broken) source:reddit'."),
    config: Optional[Path] = ConfigOption,
    since: str = typer.Option("30d", help="Mentions posted within this window (found, where the source gives no time)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line, full text."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV with a header row, full text."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1,
                                        help="At most this many, newest first (default: 50 in the table, all otherwise)."),
) -> None:
    """Stored mentions that a rule-language query matches, exactly as a rule would match them."""
    from earful.rules.engine import RuleCompileError

    from .search import search as find
    from .store import Store

    if as_json and as_csv:
        err.print("choose one of --json and --csv")
        raise typer.Exit(2)
    if not query.strip():
        err.print("the query is empty; e.g. earful search 'acme refund'")
        raise typer.Exit(2)
    window = _window(since)
    cfg = _load(config)
    state = _state(cfg)
    if state is None:
        return
    store = Store(state)
    try:
        found = find(store, query, datetime.now(timezone.utc) - window)
    except RuleCompileError as exc:
        for problem in exc.problems:
            err.print(escape(problem.message))
        raise typer.Exit(2) from None
    finally:
        store.close()
    if as_json or as_csv:
        _write_records([_record(s) for s in found[:limit]], as_csv)
        return
    shown = found[:limit or 50]
    title = f"{len(found)} mention(s) posted in the last {since} match {query!r} (times: {cfg.timezone})"
    out.print(_mentions_table(escape(title), ((s, s.mention.author) for s in shown), cfg.timezone))
    if len(found) > len(shown):
        out.print(f"…and {len(found) - len(shown)} more: --limit N shows more, --json or --csv all of them.")


@app.command()
def browse(
    config: Optional[Path] = ConfigOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (only this machine by default)."),
    port: int = typer.Option(8001, "--port", min=0, max=65535, help="Port to listen on; 0 picks a free one."),
    no_open: bool = typer.Option(False, "--no-open", help="Do not open a web browser."),
) -> None:
    """Open the state read-only in Datasette: facets by source, label and day; saved queries. Ctrl-C stops it."""
    from . import browse as datasette
    from .store import Store

    cfg = _load(config)
    state = _state(cfg)
    if state is None:
        return
    store = Store(state)  # brings an older state's schema up to date (the mentions view, the search index)
    columns = store.mentions_view_columns()
    store.close()
    try:
        asgi = datasette.app(state, columns)
    except RuntimeError as exc:
        err.print(escape(str(exc)))
        raise typer.Exit(2) from None
    try:
        sock = datasette.listen(host, port)
    except OSError as exc:
        err.print(f"cannot listen on {escape(host)}:{port}: {escape(exc.strerror or str(exc))}")
        raise typer.Exit(1) from None
    url = datasette.url(sock, state)
    out.print(f"browsing {escape(str(state))} read-only at {url}", soft_wrap=True)
    out.print("saved queries: unanswered, breached, per_channel. Ctrl-C stops.")
    sys.stdout.flush()

    def ready() -> None:
        if not no_open:
            import webbrowser

            webbrowser.open(url)

    try:
        datasette.serve(asgi, sock, ready)
    except KeyboardInterrupt:  # uvicorn stops cleanly, then hands Ctrl-C on
        pass
    out.print("stopped.")


@app.command()
def backtest(
    config: Optional[Path] = ConfigOption,
    rules: Optional[Path] = typer.Option(None, "--rules", help="An edited rule pack file to try (default: the packs as they are)."),
    pack: Optional[str] = typer.Option(None, "--pack", help="The pack --rules stands in for (default: the pack named like the "
                                                             "file, or the only pack)."),
    since: str = typer.Option("30d", help="Replay the mentions found within this window."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Replay stored mentions against edited rules: what would newly alert, what would stop. Sends and writes nothing."""
    from .backtest import backtest as replay
    from .store.readonly import ReadOnlyStore

    window = _window(since)
    cfg = _load(config)
    if rules is not None:
        name = _replaced_pack(rules, pack, list(cfg.packs))
        cfg = _load(config, rule_files={name: rules})
    state = _state(cfg)
    if state is None:
        return
    store = ReadOnlyStore(state)
    try:
        result = replay(cfg, store, datetime.now(timezone.utc) - window)
    finally:
        store.close()
    if as_json:
        out.print_json(json.dumps(_backtest_json(result, since)))
        return
    _print_backtest(result, since, f"{rules} as pack '{name}'" if rules is not None else "the current rule packs", cfg.timezone)


def _replaced_pack(rules: Path, pack: str | None, packs: list[str]) -> str:
    """Which of the deployment's packs `rules` stands in for, or exit 2 saying how to name it."""
    if not rules.is_file():
        err.print(f"--rules {escape(str(rules))}: no such file")
        raise typer.Exit(2)
    name = pack or (rules.stem if rules.stem in packs else packs[0] if len(packs) == 1 else None)
    if name not in packs:
        wanted = f"'{pack}' is not" if pack else f"'{rules.stem}' names no pack, and there are several"
        err.print(f"--rules {escape(str(rules))}: {escape(wanted)}; the monitors use: {escape(', '.join(packs))} "
                  "(pass --pack NAME)")
        raise typer.Exit(2)
    return name


def _backtest_json(result, since: str) -> dict[str, Any]:
    def changes(items) -> list[dict[str, Any]]:
        return [{**_record(c.stored), "before": list(c.before), "after": list(c.after),
                 "would_alert": list(c.destinations)} for c in items]

    return {"since": since, "replayed": result.replayed, "unknown_monitors": dict(result.unknown_monitors),
            "rules": [{"rule": rule, "matched_then": then, "matches_now": now, "newly": new, "no_longer": gone}
                      for rule, then, now, new, gone in result.per_rule()],
            "newly_alerting": changes(result.newly_alerting), "no_longer_alerting": changes(result.no_longer_alerting),
            "rules_changed": changes(result.rules_changed)}


def _print_backtest(result, since: str, against: str, tz: tzinfo) -> None:
    out.print(f"replayed {result.replayed} mention(s) found in the last {escape(since)} against {escape(against)}: "
              f"{len(result.newly_alerting)} would newly alert, {len(result.no_longer_alerting)} would stop alerting, "
              f"{len(result.rules_changed)} would alert by other rules. Nothing was sent or written.")
    for name, count in sorted(result.unknown_monitors.items()):
        out.print(f"[yellow]{count} mention(s) of monitor '{escape(name)}' skipped: it is no longer in the config[/yellow]")
    table = Table(title="per rule (mentions)", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("rule", overflow="fold")
    for column in ("then", "now", "new", "gone"):
        table.add_column(column, justify="right")
    for rule, then, now, new, gone in result.per_rule():
        table.add_row(escape(rule), str(then), str(now), f"+{new}" if new else "0", f"-{gone}" if gone else "0")
    out.print(table)
    sections = (("would newly alert", result.newly_alerting,
                 lambda c: "\n".join([*("+" + r for r in c.gained), *(["to " + ", ".join(c.destinations)] if c.destinations else [])])),
                ("would stop alerting", result.no_longer_alerting, lambda c: "-" + "\n-".join(c.lost)),
                ("would alert by other rules", result.rules_changed,
                 lambda c: "\n".join([*("+" + r for r in c.gained), *("-" + r for r in c.lost)])))
    for title, changes, rules in sections:
        if changes:
            out.print(_mentions_table(f"{title} ({len(changes)})", ((c.stored, rules(c)) for c in changes), tz, "rules"))
