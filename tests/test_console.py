"""The console destination: what an admin sees in a terminal or `earful demo`."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from earful.alerts import load
from earful.alerts.console import ConsoleDestination, ConsoleOptions
from earful.core import Alert, Match, Mention


def mention(n: int = 1, **changes: object) -> Mention:
    base = Mention(
        source="hackernews",
        external_id=str(n),
        url=f"https://news.ycombinator.com/item?id={n}",
        author=f"pg{n}",
        title="Ask HN: does Acme ever answer support requests?",
        text="Tried email and Twitter, nothing for a week.",
        created_at=datetime(2024, 5, 1, 9, 5, tzinfo=timezone.utc),
    )
    return base.replace(**changes)


def alert(*mentions: Mention) -> Alert:
    mentions = mentions or (mention(),)
    return Alert(
        key=mentions[0].key,
        cluster="c-1",
        destination="terminal",
        monitor="hn-acme",
        mentions=tuple(mentions),
        matches=(Match(mention_key=mentions[0].key, rule_id="question", pack="acme", labels=("question", "complaint"), severity="critical"),),
    )


def deliver(item: Alert, **options: object) -> str:
    return ConsoleDestination("terminal", ConsoleOptions(width=160, **options)).deliver(item)  # type: ignore[arg-type]


def test_registry_loads_the_console_destination() -> None:
    assert load("console") is ConsoleDestination


def test_output_shows_the_facts(capsys: pytest.CaptureFixture[str]) -> None:
    remote_id = deliver(alert())
    out = capsys.readouterr().out
    assert remote_id == "console:hackernews:1"
    for expected in (
        "Hacker News",
        "pg1",
        "https://news.ycombinator.com/item?id=1",
        "question, complaint",
        "Critical",
        "acme/question",
        "hn-acme",
        "Ask HN: does Acme ever answer support requests?",
        "2024-05-01 09:05 UTC",
    ):
        assert expected in out


def test_review_rating_and_brand_author(capsys: pytest.CaptureFixture[str]) -> None:
    deliver(alert(mention(source="g2", kind="review", rating=4.5, author="acme", author_is_brand=True)))
    out = capsys.readouterr().out
    assert "★★★★★ 4.5/5" in out or "★★★★☆ 4.5/5" in out
    assert "acme (brand account)" in out


def test_rich_markup_in_user_text_is_literal(capsys: pytest.CaptureFixture[str]) -> None:
    hostile = mention(title="[bold red]URGENT[/bold red] [link=http://evil.example]click[/link]", author="[blink]bob[/blink]", text="a\x1b[2Jb :smile:")
    deliver(alert(hostile))
    out = capsys.readouterr().out
    assert "[bold red]URGENT[/bold red] [link=http://evil.example]click[/link]" in out
    assert "[blink]bob[/blink]" in out
    assert "\x1b" not in out
    assert ":smile:" in out


def test_cluster_lists_also_seen_at(capsys: pytest.CaptureFixture[str]) -> None:
    deliver(alert(mention(1), mention(2, source="reddit", url="https://reddit.com/r/crm/2", site="r/crm"), mention(3, source="x", url="https://x.com/a/status/3")))
    out = capsys.readouterr().out
    assert "also seen at (3 places)" in out
    for url in ("https://news.ycombinator.com/item?id=1", "https://reddit.com/r/crm/2", "https://x.com/a/status/3"):
        assert url in out
    assert "Reddit · r/crm" in out


def test_stderr_stream(capsys: pytest.CaptureFixture[str]) -> None:
    deliver(alert(), stream="stderr")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "pg1" in captured.err


def test_a_digest_prints_its_layout_and_refuses_another_form(capsys):
    from earful.alerts.base import DeliveryError

    content = {"form": "console", "headline": "Weekly digest · Mon 16 – Sun 22 Nov 2026", "summary": ["2 mentions."],
               "parts": [{"title": "Top items", "more": 3, "lines": [[
                   {"lead": "", "text": "1. ", "trail": "", "url": None, "bold": False},
                   {"lead": "", "text": "[bold red]not markup[/bold red]", "trail": "", "url": "https://x.example/1", "bold": True}]]}],
               "footer": "earful · all channels", "alarm": True}
    key = "digest:weekly:2026-11-23T00:00:00Z#terminal"
    digest = Alert(key=key, cluster=key, destination="terminal", monitor="digest:weekly", mentions=(), matches=(), kind="digest",
                   extra=content)
    terminal = ConsoleDestination("terminal", ConsoleOptions(width=100))
    assert terminal.deliver(digest) == f"console:{key}"
    out = capsys.readouterr().out
    assert "Weekly digest · Mon 16 – Sun 22 Nov 2026" in out and "[bold red]not markup[/bold red]" in out
    assert "https://x.example/1" in out and "…and 3 more" in out
    with pytest.raises(DeliveryError) as wrong:
        terminal.deliver(Alert(key=key, cluster=key, destination="terminal", monitor="digest:weekly", mentions=(), matches=(),
                               kind="digest", extra={"form": "email"}))
    assert wrong.value.permanent
