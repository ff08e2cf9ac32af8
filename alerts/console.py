"""The `console` destination: each alert as a rich panel on stdout or stderr.

Used by `earful demo`, by `--dry-run`-style local setups, and by admins
trying a rule pack before pointing it at Slack. It shows the same facts as
the Slack message, worded by the same helpers (`format`).

User text is never parsed as rich markup: it is appended to `rich.text.Text`
objects as plain strings, so `[bold red]` or `[link=...]` in a post is shown
literally (stricter than `rich.markup.escape`, which only guards markup that
goes through the parser). `format.clean` also drops control characters, so
ANSI escape sequences in a post cannot move the cursor or clear the terminal.

A digest arrives laid out and cleaned by the hub (`alerts.base` describes
the shape) and is drawn by `render_digest`, which `earful digest` and the
demo use too, so the terminal shows the same panel wherever it comes from.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, Literal, Mapping

from pydantic import Field
from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from earful.core import Alert

from . import format as fmt
from .base import Destination, DestinationOptions, digest_content

SEVERITY_STYLE: dict[str, str] = {"low": "blue", "medium": "yellow", "high": "dark_orange", "critical": "bold red"}
EXCERPT_CHARS = 600


class ConsoleOptions(DestinationOptions):
    """`type: console` in cron.yaml (`base_url` and `timeout` are accepted and unused)."""

    type: Literal["console"] = "console"
    width: int | None = Field(default=None, ge=40, le=1000, description="Columns; default: the terminal's width.")
    stream: Literal["stdout", "stderr"] = "stdout"


def render(alert: Alert) -> Panel:
    """The panel for `alert`; every piece of user text goes in as plain Text."""
    mention = alert.mention
    style = SEVERITY_STYLE.get(alert.severity, "white")

    title = Text(fmt.headline(alert), style=style)
    site = fmt.clean(mention.site)
    if site:
        title.append(f" ({site})")

    byline = Text()
    byline.append(fmt.author_label(mention), style="bold green" if mention.author_is_brand else "bold")
    byline.append(f" · {fmt.kind_label(mention)}")
    when = fmt.when_label(mention.created_at, alert.timezone)
    if when:
        byline.append(f" · {when}", style="dim")

    lines: list[Text] = [byline]
    headline = fmt.title_line(mention, 200)
    if headline:
        lines.append(Text(headline, style="bold"))
    context = fmt.context_line(mention, 200)
    if context:
        lines.append(Text(context, style="dim"))
    body = fmt.excerpt(mention, EXCERPT_CHARS)
    if body:
        lines.append(Text(body))
    if mention.url:
        lines.append(Text(fmt.clean(mention.url), style="cyan", overflow="fold"))

    if alert.note:
        lines.append(Text(alert.note, style="bold " + style))
    facts = Text(style="dim")
    facts.append(f"labels: {fmt.labels_label(alert.labels)} · rules: {', '.join(alert.rules) or 'none'} · monitor: {alert.monitor}")
    lines.append(facts)

    if len(alert.mentions) > 1:
        places = fmt.places(alert)
        lines.append(Text(f"also seen at ({len(places)} places):", style="bold"))
        for place in places:
            line = Text(f"  • {place.source}  ")
            line.append(fmt.clean(place.url) or "(no link)", style="cyan")
            line.append(f"  {place.author}", style="dim")
            lines.append(line)

    return Panel(Group(*lines), title=title, title_align="left", subtitle=Text(alert.key, style="dim"), subtitle_align="right", border_style=style)


def render_digest(content: Mapping[str, Any]) -> Panel:
    """The panel for a digest laid out as `{"headline", "summary", "parts", "footer", "alarm"}`.

    Each part is `{"title", "lines", "more"}`; each line a list of spans
    `{"lead", "text", "trail", "url", "bold"}` whose text is already
    cleaned; a linked span shows its (http) URL after it, dimmed.
    """
    from rich.style import Style

    body: list[Text] = [Text(line) for line in content["summary"]]
    for part in content["parts"]:
        body.append(Text(""))
        body.append(Text(part["title"], style="bold underline"))
        for line in part["lines"]:
            row = Text("  • ")
            for span in line:
                url, bold = span.get("url"), bool(span.get("bold"))
                row.append(span.get("lead", ""))
                row.append(span["text"], style=Style(bold=bold, link=url) if (bold or url) else "")
                if url:
                    row.append(f" {url}", style="dim cyan")
                row.append(span.get("trail", ""))
            body.append(row)
        if part.get("more"):
            body.append(Text("  " + (part.get("more_text") or f"…and {part['more']} more"), style="dim"))
    body += [Text(""), Text(content["footer"], style="dim")]
    return Panel(Group(*body), title=Text(content["headline"], style="bold"), title_align="left",
                 border_style="yellow" if content.get("alarm") else "green")


class ConsoleDestination(Destination):
    """Prints alerts; cannot fail in a way worth retrying, so it never raises DeliveryError."""

    type: ClassVar[str] = "console"
    Options: ClassVar[type[DestinationOptions]] = ConsoleOptions
    digest_form: ClassVar[str | None] = "console"
    options: ConsoleOptions

    def deliver(self, alert: Alert) -> str:
        panel = render_digest(digest_content(self, alert)) if alert.kind == "digest" else render(alert)
        self._console().print(panel)
        return f"console:{alert.key}"

    def update(self, remote_id: str, alert: Alert, note: str) -> str:
        """A terminal cannot edit what it printed: print the update as its own line."""
        line = Text(f"↳ update to {alert.key}: ", style="dim")
        line.append(fmt.clean(note), style="bold")
        self._console().print(line)
        return remote_id

    def verify(self) -> str:
        """Nothing to prove: it prints where the run prints."""
        return "prints alerts where earful runs (under cron, into the mail cron sends)"

    def _console(self) -> Console:
        # Looked up at each call, not at construction: tests and the CLI may swap sys.stdout.
        stream = sys.stderr if self.options.stream == "stderr" else sys.stdout
        return Console(file=stream, width=self.options.width, highlight=False, emoji=False)


DESTINATION = ConsoleDestination
