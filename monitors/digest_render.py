"""One digest, four renderings: Slack Block Kit, HTML email, plain text, rich console.

The content is laid out once (`layout`: parts made of lines made of
spans, each span a piece of text and maybe a link) and each renderer only
encodes it, so Slack, email and the terminal can never disagree about what
the week looked like, and each format's escaping lives in one place:

* Slack: every span goes through `alerts.slack.fit` / `alerts.slack.link`
  (the same `&`, `<`, `>` policy as alerts, so a post titled `<!channel>`
  cannot ping anyone); sections are cut below 3000 characters and the
  message stays under 50 blocks;
* HTML: `html.escape` on cleaned text; only http(s) URLs become links;
* plain text: cleaned text, links as `label <url>`;
* console: the layout as plain JSON (`console_content`), drawn by
  `alerts.console.render_digest` from plain strings (never parsed as markup).

All user text is cleaned first (`alerts.format.clean`: one line, no control
or bidi characters). `deliveries` packs the renderings a destination takes
into the outbox rows that carry them (see `alerts.base` for the shapes).
"""

from __future__ import annotations

import base64
import html as htmllib
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from earful.alerts import format as fmt
from earful.core import Mention, format_duration, iso

from .digest import Change, Digest, TopItem

if TYPE_CHECKING:
    from slack_sdk.models.blocks import Block

CHART_CID = "earful-digest-chart"
SECTION_LIMIT = 3000  # Slack section text
HEADER_LIMIT = 150
BLOCKS_LIMIT = 50
TEXT_LIMIT = 4000  # the `text` fallback, as alerts/slack.py keeps it
MAX_SECTIONS_PER_PART = 3
VOLUME_LINES = 12


@dataclass(frozen=True)
class Span:
    """A piece of a line: untrusted text (cleaned and cut to `limit`), maybe linked, maybe bold."""

    text: str
    url: str | None = None
    bold: bool = False
    limit: int = 300


Line = tuple[Span, ...]


def _edges(text: str) -> tuple[str, str, str]:
    """(lead, core, trail): cleaning folds whitespace at the ends away, but "1. " and " — Reddit" need theirs."""
    lead = " " if text[:1].isspace() else ""
    trail = " " if text[-1:].isspace() and text.strip() else ""
    return lead, fmt.clean(text), trail


def _plain(span: Span) -> tuple[str, str, str]:
    lead, core, trail = _edges(span.text)
    return lead, fmt.truncate(core, span.limit), trail


@dataclass(frozen=True)
class Part:
    title: str
    lines: tuple[Line, ...]
    more: int = 0  # lines left out of `lines` ("…and N more")
    more_where: str = ""  # where the reader finds the lines left out ("`earful browse`, saved query …")


def more_text(part: Part, hidden: int) -> str:
    """'…and 19 more: `earful browse`, saved query "unanswered"': a cut list says where the rest is."""
    return f"…and {hidden} more" + (f": {part.more_where}" if part.more_where else "")


# -- wording -----------------------------------------------------------------------


def _day(moment: datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b}"


def _local(moment: datetime, digest: Digest) -> str:
    local = moment.astimezone(digest.tz)
    return f"{_day(local)} {local:%H:%M}"


def _tz_name(digest: Digest) -> str:
    return str(getattr(digest.tz, "key", None) or digest.tz)


def period_word(digest: Digest) -> str:
    return "week" if digest.period == "week" else "day"


def period_label(digest: Digest) -> str:
    """'Mon 16 – Sun 22 Nov 2026' for whole local days, else with times."""
    start, end = digest.start.astimezone(digest.tz), digest.end.astimezone(digest.tz)
    if start.time() == time(0) and end.time() == time(0):
        last = end - timedelta(microseconds=1)
        if digest.period == "day":
            return f"{_day(start)} {start.year}"
        if (start.year, start.month) == (last.year, last.month):
            return f"{start:%a} {start.day} – {_day(last)} {last.year}"
        if start.year == last.year:
            return f"{_day(start)} – {_day(last)} {last.year}"
        return f"{_day(start)} {start.year} – {_day(last)} {last.year}"
    return f"{_day(start)} {start:%H:%M} – {_day(end)} {end:%H:%M} {end.year}"


def kind_name(digest: Digest) -> str:
    return f"{'Weekly' if digest.period == 'week' else 'Daily'} digest"


def headline(digest: Digest) -> str:
    """'Acme · Weekly digest · Mon 16 – Sun 22 Nov 2026': the brand first, so an inbox shows whose it is."""
    brand = fmt.clean(digest.brand)
    return f"{brand + ' · ' if brand else ''}{kind_name(digest)} · {period_label(digest)}"


def change_label(change: Change) -> str:
    if change.previous == 0:
        return "new" if change.current else "no change"
    if change.delta == 0:
        return "no change"
    return f"{change.delta:+d}, {change.pct:+.0f}%"


def comparison(change: Change, digest: Digest) -> str:
    """'+12 (+21%) vs the previous week'; in the first period, that there is nothing to compare with."""
    word = period_word(digest)
    if not digest.compared:
        return f"first {word}: no previous {word} to compare"
    if change.delta == 0:
        return f"as many as the previous {word}"
    if change.previous == 0:
        return f"{change.delta:+d} vs the previous {word} (none then)"
    return f"{change.delta:+d} ({change.pct:+.0f}%) vs the previous {word}"


def _volume_label(change: Change, digest: Digest) -> str:
    return f"{change.current} ({change_label(change)})" if digest.compared else str(change.current)


def _rating(value: float | None) -> str:
    return f"{value:.1f}/5"


def _reviews_note(count: int, average: float | None) -> str:
    """'3 new, average 3.7/5'; 'none rated' when no review of them gave stars (never 'average no rating')."""
    return f"{count} new, " + (f"average {_rating(average)}" if average is not None else "none rated")


def _duration(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(timedelta(seconds=round(seconds)))


def rough_duration(span: timedelta) -> str:
    """A span to the precision a reader cares about: minutes within the hour, 5 minutes within the day, hours beyond."""
    seconds = span.total_seconds()
    step = 60 if seconds < 3600 else 300 if seconds < 86400 else 3600
    return format_duration(timedelta(seconds=max(step, round(seconds / step) * step)))


def overdue(late: timedelta) -> str:
    """'overdue by 3h10m'; 'just overdue' under a minute (never 'overdue by 1s')."""
    return "just overdue" if late < timedelta(minutes=1) else f"overdue by {rough_duration(late)}"


def schedule_label(schedule: str) -> str:
    """'every Monday at 09:00', 'every day at 09:00', or the cron expression as written."""
    fields = schedule.split()
    names = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    if len(fields) == 5 and fields[0].isdigit() and fields[1].isdigit() and fields[2:4] == ["*", "*"]:
        at = f"{int(fields[1]):02d}:{int(fields[0]):02d}"
        if fields[4] == "*":
            return f"every day at {at}"
        if fields[4].isdigit() and int(fields[4]) < len(names):
            return f"every {names[int(fields[4])]} at {at}"
    return f'on schedule "{schedule}"'


def _place(source: str, site: str) -> str:
    name = fmt.source_name(source)
    site = fmt.clean(site)
    return f"{name} · {site}" if site and site.lower() != name.lower() else name


ITEM_CHARS = 150


def _item_title(mention: Mention) -> str:
    """The item as alerts headline it (`format.subject`): a comment reads as its writer's words."""
    return fmt.subject(mention, ITEM_CHARS) or mention.key


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def summary(digest: Digest) -> list[str]:
    """The few lines a reader sees first; trusted wording with numbers only."""
    word = period_word(digest)
    lines = []
    if digest.quiet:
        before = f" (previous {word}: {digest.total.previous})" if digest.total.previous else ""
        lines.append(f"Quiet {word}: no new mentions{before}.")
    else:
        lines.append(f"{_n(digest.total.current, 'mention')}, {comparison(digest.total, digest)}.")
    if digest.reviews_total:
        average = digest.reviews_average
        lines.append(f"{_n(digest.reviews_total, 'new review')}"
                     + (f", average {_rating(average)}." if average is not None else ", none with a star rating."))
    if digest.unanswered_total:
        lines.append(f"{_n(digest.unanswered_total, 'question')} still unanswered, "
                     f"{digest.unanswered_breached} past the reply deadline.")
    elif any(k.queries for k in digest.sla):
        lines.append("No tracked question is waiting for an answer.")
    if digest.channels:
        lines.append(f"{len(digest.channels)} of {_n(digest.channels_watched, 'channel')} had problems (see below).")
    elif digest.channels_watched:
        lines.append(f"All {digest.channels_watched} channels were watched, no failed runs.")
    if digest.spikes:
        lines.append(f"{len(digest.spikes)} volume spike{'s' if len(digest.spikes) != 1 else ''}.")
    if digest.held_total:
        lines.append(f"{_n(digest.held_total, 'alert')} held back by flood control; counted above, listed below.")
    return lines


UNNAMED = ("", "digest", "manual")  # the defaults of `build` and of `earful digest`: names that say nothing


def footer(digest: Digest) -> str:
    """'earful · Weekly digest 'marketing', sent every Monday at 09:00 · Mon 16 Nov 09:00 – … (Europe/Berlin)'."""
    start, end = digest.start.astimezone(digest.tz), digest.end.astimezone(digest.tz)
    name = f" '{fmt.clean(digest.name)}'" if digest.name not in UNNAMED else ""
    how = f"sent {schedule_label(digest.schedule)}" if digest.schedule else "run by hand"
    text = (f"earful · {kind_name(digest)}{name}, {how} · {_day(start)} {start:%H:%M} – {_day(end)} {end:%H:%M} {end.year} "
            f"({_tz_name(digest)})")
    if not digest.filters.empty:
        text += f" · only {digest.filters.describe()}"
    return text


# -- layout ------------------------------------------------------------------------------


def _capped(title: str, lines: list[Line], limit: int, total: int | None = None, where: str = "") -> Part:
    shown = tuple(lines[:limit])
    return Part(title, shown, (total if total is not None else len(lines)) - len(shown), where)


def _volume(title: str, changes: tuple[Change, ...], name, digest: Digest) -> Part | None:
    if not any(c.current or c.previous for c in changes):
        return None
    lines = [(Span(name(c.name), bold=True), Span(f": {_volume_label(c, digest)}")) for c in changes]
    return _capped(title, lines, VOLUME_LINES)


def _top_line(index: int, item: TopItem) -> Line:
    mention = item.mention
    facts = [_place(mention.source, mention.site)]
    if mention.kind == "review" and mention.rating is not None:
        facts.append(_rating(mention.rating))
    facts.append(f"{item.places} place{'s' if item.places != 1 else ''}")
    if item.severity:
        facts.append(item.severity)
    if item.labels:
        facts.append(", ".join(item.labels))
    return (Span(f"{index}. "), Span(_item_title(mention), url=mention.url or None, limit=ITEM_CHARS), Span(" — " + " · ".join(facts)))


def _reviews_part(digest: Digest) -> Part:
    """'G2 · acme-crm: 3 new, average 3.7/5 (previous week: 4.0/5 from 2)' per review site."""
    word = period_word(digest)
    lines = []
    for site in digest.reviews:
        before = ""
        if site.previous_count and site.previous_average is not None:
            before = f" (previous {word}: {_rating(site.previous_average)} from {site.previous_count})"
        elif site.previous_count:
            before = f" (previous {word}: {site.previous_count}, none rated)"
        lines.append((Span(_place(site.source, site.site), bold=True),
                      Span(f": {_reviews_note(site.count, site.average)}{before}")))
    return _capped("New reviews", lines, VOLUME_LINES)


def layout(digest: Digest) -> list[Part]:
    """Every section of the digest that has something to say, in reading order."""
    word = period_word(digest)
    parts: list[Part | None] = [
        _volume("Mentions by source", digest.by_source, fmt.source_name, digest),
        _volume("Mentions by label", digest.by_label, str, digest),
    ]
    if digest.reviews:
        parts.append(_reviews_part(digest))
    if digest.top_items:
        parts.append(Part("Top items", tuple(_top_line(i, item) for i, item in enumerate(digest.top_items, 1))))
    if digest.sla:
        lines = []
        for k in digest.sla:
            pct = "" if k.within_sla_pct is None else f", {k.within_sla_pct:.0f}% within SLA"
            lines.append((Span(fmt.source_name(k.channel), bold=True),
                          Span(f": {_n(k.queries, 'question')}, {k.answered} answered{pct}; first response median "
                               f"{_duration(k.median_first_response_s)}, p90 {_duration(k.p90_first_response_s)}; "
                               f"{_n(k.breaches, 'breach', 'breaches')}, {k.still_open} still open"
                               + (f", {k.unknown} on channels that cannot show replies" if k.unknown else ""))))
        parts.append(_capped("Reply SLA", lines, VOLUME_LINES))
    if digest.unanswered_total:
        lines = []
        for query in digest.unanswered:
            late = (f"{overdue(digest.end - query.deadline)} at the end of the {word}"
                    if query.breached(digest.end) else f"due {_local(query.deadline, digest)}")
            lines.append((Span(_item_title(query.mention), url=query.mention.url or None, limit=ITEM_CHARS),
                          Span(f" — {_place(query.mention.source, query.mention.site)} · asked {_local(query.posted_at, digest)} · {late}")))
        parts.append(_capped(f"Still unanswered ({digest.unanswered_total})", lines, len(lines), digest.unanswered_total,
                             where="`earful browse` lists them all (saved query “unanswered”)"))
    if digest.channels:
        lines = []
        for channel in digest.channels:
            facts = []
            if channel.unwatched_since is not None:
                facts.append(f"unwatched since {_local(channel.unwatched_since, digest)}")
            elif channel.incidents:
                facts.append("was unwatched during the " + word)
            if channel.runs == 0:
                facts.append(f"no runs in this {word}: is earful's cron job running?")
            elif channel.failures:
                facts.append(f"{channel.failures} of {_n(channel.runs, 'run')} failed")
            line = [Span(channel.monitor, bold=True), Span(f" ({channel.connector}): " + "; ".join(facts))]
            reason = channel.last_error or (channel.incidents[-1] if channel.incidents else None)
            if reason:
                line.append(Span(f"; {'last error' if channel.last_error else 'reason'}: {reason}", limit=300))
            lines.append(tuple(line))
        parts.append(_capped("Channels with problems", lines, VOLUME_LINES))
    if digest.spikes:
        lines = [(Span(f"{s.dimension} {s.value}", bold=True),
                  Span(f": {_n(s.count, 'mention')} in the hour from {_local(s.hour, digest)} (usually {s.mean:.1f}, alert above {s.threshold:.1f})"))
                 for s in digest.spikes]
        parts.append(_capped("Volume spikes", lines, VOLUME_LINES))
    if digest.held_total:
        lines = [(Span(_item_title(h.mention), url=h.mention.url or None, limit=ITEM_CHARS),
                  Span(f" — {_place(h.mention.source, h.mention.site)} · held for {', '.join(h.destinations)} at {_local(h.held_at, digest)}"))
                 for h in digest.held]
        parts.append(_capped(f"Held back by flood control ({digest.held_total})", lines, len(lines), digest.held_total,
                             where="`earful browse` lists them all (table outbox, status held)"))
    return [p for p in parts if p is not None]


# -- chart -------------------------------------------------------------------------------


def _days_label(days: tuple[datetime, ...]) -> str:
    first, last = days[0], days[-1]
    if (first.year, first.month) == (last.year, last.month):
        return f"{first:%a} {first.day} – {_day(last)} {last.year}"
    if first.year == last.year:
        return f"{_day(first)} – {_day(last)} {last.year}"
    return f"{_day(first)} {first.year} – {_day(last)} {last.year}"


def chart_title(digest: Digest) -> str:
    return f"Mentions per day by source · {_days_label(digest.days)}"


@dataclass(frozen=True)
class ChartData:
    """What `alerts.chart.daily_volume_png` draws: a bar per local calendar day, stacked by source."""

    days: list[str]  # tick labels, 'Mon\n30 Nov'
    series: dict[str, list[int]]  # display name -> mentions posted per day
    title: str
    previous: list[int] | None  # the same days of the period before; None when earful was not watching then
    previous_label: str
    note: str

    @property
    def totals(self) -> list[int]:
        return [sum(day) for day in zip(*self.series.values())] if self.series else [0] * len(self.days)


def chart_data(digest: Digest) -> ChartData:
    """The digest's chart, worded: bars by posted day in the configured timezone, the period before as a mark."""
    series: dict[str, list[int]] = {}
    for source, counts in digest.daily.items():
        name = fmt.source_name(source)
        merged = series.setdefault(name, [0] * len(counts))
        series[name] = [a + b for a, b in zip(merged, counts)]
    note = f"Days in {_tz_name(digest)}, by the day each mention was posted (found, where the source gives no time)."
    if digest.posted_earlier:
        note += (f" {_n(digest.posted_earlier, 'mention')} found this {period_word(digest)} "
                 f"{'was' if digest.posted_earlier == 1 else 'were'} posted before {_day(digest.days[0])}.")
    if digest.previous_daily is None:
        note += " No previous week to compare: earful was not watching yet."
    labels = [f"{d:%a}\n{d.day} {d:%b}" for d in digest.days]
    end = digest.end.astimezone(digest.tz)
    if end.time() != time(0):
        labels[-1] += f"\nto {end:%H:%M}"  # the day the period ends in: only what was posted so far
    return ChartData(labels, series, chart_title(digest),
                     list(digest.previous_daily) if digest.previous_daily is not None else None,
                     "same day, previous week", note)


def chart_filename(digest: Digest) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", digest.name).strip("-") or "digest"
    return f"earful-{name}-{digest.end.astimezone(digest.tz):%Y-%m-%d}.png"


def chart_alt(digest: Digest) -> str:
    chart = chart_data(digest)
    totals = sorted(((sum(v), k) for k, v in chart.series.items()), reverse=True)
    described = ", ".join(f"{name} {total}" for total, name in totals[:8]) or "no mentions"
    per_day = ", ".join(f"{label.replace(chr(10), ' ')}: {total}" for label, total in zip(chart.days, chart.totals))
    return fmt.truncate(f"Stacked bar chart, {chart.title}: {described}. Per day: {per_day}", 1000)


# -- Slack ---------------------------------------------------------------------------------


def _md(text: str):
    from slack_sdk.models.blocks import MarkdownTextObject

    return MarkdownTextObject(text=text, verbatim=True)


def _md_section(text: str):
    from slack_sdk.models.blocks import SectionBlock

    return SectionBlock(text=_md(text))


def _slack_line(line: Line) -> str:
    from earful.alerts.slack import fit, link

    out = []
    for span in line:
        lead, core, trail = _edges(span.text)
        text = link(span.url, core) if span.url else fit(core, span.limit)
        out.append(lead + (f"*{text}*" if span.bold and text else text) + trail)
    return "".join(out)


def _slack_sections(part: Part, room: int) -> list["Block"]:
    """The part as sections of at most 3000 characters, in at most `room` blocks."""
    from earful.alerts.slack import escape

    lines = [_slack_line(line) for line in part.lines]  # each well under 3000: every span is capped
    chunks: list[list[str]] = [[f"*{escape(part.title)}*"]]
    shown = 0
    for text in lines:
        if len("\n".join([*chunks[-1], text])) > SECTION_LIMIT - 40:
            if len(chunks) >= room:
                break
            chunks.append([])
        chunks[-1].append(text)
        shown += 1
    hidden = part.more + len(lines) - shown
    if hidden:
        chunks[-1].append(escape(more_text(part, hidden)))
    return [_md_section("\n".join(chunk)) for chunk in chunks]


def slack_blocks(digest: Digest, *, chart: bool = False) -> list["Block"]:
    """The Block Kit message: header, summary, one or more sections per part, footer; under 50 blocks."""
    from slack_sdk.models.blocks import (
        ContextBlock,
        DividerBlock,
        HeaderBlock,
        PlainTextObject,
    )

    from earful.alerts.slack import fit

    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=fmt.truncate(f"📊 {headline(digest)}", HEADER_LIMIT), emoji=True))]
    blocks.append(_md_section("\n".join(fit(line, 500) for line in summary(digest))))
    if chart:
        blocks.append(ContextBlock(elements=[_md(":bar_chart: Mentions per day by source: the chart follows this message.")]))
    parts = layout(digest)
    for index, part in enumerate(parts):
        left = len(parts) - index - 1
        room = min(MAX_SECTIONS_PER_PART, BLOCKS_LIMIT - len(blocks) - 2 - left * 2)
        if room < 1:
            break
        blocks.append(DividerBlock())
        blocks.extend(_slack_sections(part, room))
    blocks.append(ContextBlock(elements=[_md(fit(footer(digest), 1000))]))
    return blocks


def slack_text(digest: Digest) -> str:
    """The notification / fallback text."""
    from earful.alerts.slack import fit

    return fit(f"{headline(digest)}: {' '.join(summary(digest))}", TEXT_LIMIT)


def slack_metadata(digest: Digest, key: str) -> dict[str, Any]:
    """Message metadata carrying the delivery key, so an interrupted send is found, not repeated."""
    from earful.alerts.slack import EVENT_TYPE

    return {"event_type": EVENT_TYPE, "event_payload": {
        "key": key, "kind": "digest", "digest": digest.name, "period_start": iso(digest.start),
        "period_end": iso(digest.end), "mentions": digest.total.current}}


# -- email -----------------------------------------------------------------------------------


def subject(digest: Digest) -> str:
    """'Acme · Weekly digest · Mon 16 – Sun 22 Nov 2026: 30 mentions, +7 (+30%) vs the previous week'."""
    if digest.quiet:
        return f"{headline(digest)}: quiet {period_word(digest)}"
    return f"{headline(digest)}: {_n(digest.total.current, 'mention')}, {comparison(digest.total, digest)}"


def _http(url: str | None) -> str | None:
    if not url:
        return None
    url = fmt.clean(url)
    parts = urlsplit(url)
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def _html_line(line: Line) -> str:
    out = []
    for span in line:
        lead, core, trail = _plain(span)
        text = htmllib.escape(core)
        if span.bold:
            text = f"<strong>{text}</strong>"
        url = _http(span.url)
        text = f'<a href="{htmllib.escape(url, quote=True)}" style="color:#0b57d0">{text}</a>' if url else text
        out.append(lead + text + trail)
    return "".join(out)


def html(digest: Digest, chart_cid: str | None = None) -> str:
    """A self-contained HTML email (inline styles only: mail clients drop <style>); the chart as `cid:`."""
    esc = htmllib.escape
    body = [f'<h1 style="font-size:20px;margin:0 0 12px">{esc(headline(digest))}</h1>',
            '<p style="margin:0 0 16px;line-height:1.5">' + "<br>".join(esc(line) for line in summary(digest)) + "</p>"]
    if chart_cid:
        body.append(f'<p><img src="cid:{esc(chart_cid, quote=True)}" alt="{esc(chart_alt(digest), quote=True)}" '
                    'width="680" style="width:100%;max-width:1000px;height:auto;border:0"></p>')
    for part in layout(digest):
        items = "".join(f'<li style="margin:0 0 4px">{_html_line(line)}</li>' for line in part.lines)
        if part.more:
            items += f'<li style="margin:0 0 4px;color:#666">{esc(more_text(part, part.more))}</li>'
        body.append(f'<h2 style="font-size:16px;margin:20px 0 6px">{esc(part.title)}</h2>'
                    f'<ul style="margin:0;padding-left:20px;line-height:1.45">{items}</ul>')
    body.append(f'<p style="margin-top:24px;color:#666;font-size:12px">{esc(footer(digest))}</p>')
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{esc(headline(digest))}</title></head>\n"
            '<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1d1d1f;'
            'max-width:760px;margin:0 auto;padding:16px">\n' + "\n".join(body) + "\n</body></html>\n")


# -- plain text ---------------------------------------------------------------------------------


def _text_line(line: Line) -> str:
    out = []
    for span in line:
        lead, core, trail = _plain(span)
        url = _http(span.url)
        out.append(lead + (f"{core} <{url}>" if url else core) + trail)
    return "".join(out)


def text(digest: Digest, *, chart: bool = False) -> str:
    """The text/plain part of the email, and what `earful digest --dry-run` can print."""
    title = headline(digest)
    lines = [title, "=" * len(title), "", *summary(digest)]
    if chart:
        lines += ["", "Chart: mentions per day by source (attached image)."]
    for part in layout(digest):
        lines += ["", part.title, "-" * len(part.title)]
        lines += [f"  - {_text_line(line)}" for line in part.lines]
        if part.more:
            lines.append(f"  {more_text(part, part.more)}")
    lines += ["", "-- ", footer(digest)]
    return "\n".join(lines) + "\n"


# -- console ----------------------------------------------------------------------------------


def console_content(digest: Digest) -> dict[str, Any]:
    """The digest laid out for `alerts.console.render_digest`: plain JSON, spans already cleaned and cut."""
    parts = []
    for part in layout(digest):
        lines = []
        for line in part.lines:
            spans = []
            for span in line:
                lead, core, trail = _plain(span)
                spans.append({"lead": lead, "text": core, "trail": trail, "url": _http(span.url), "bold": span.bold})
            lines.append(spans)
        parts.append({"title": part.title, "lines": lines, "more": part.more, "more_text": more_text(part, part.more)})
    return {"form": "console", "headline": headline(digest), "summary": summary(digest), "parts": parts,
            "footer": footer(digest), "alarm": bool(digest.channels)}


def console(digest: Digest):
    """A rich renderable; user text is appended as plain strings, never parsed as markup."""
    from earful.alerts.console import render_digest

    return render_digest(console_content(digest))


# -- what the outbox carries ------------------------------------------------------------------


def _png(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def deliveries(digest: Digest, chart: bytes | None, key: str, form: str) -> list[tuple[str, dict[str, Any]]]:
    """(outbox key, payload) of each row that delivers `digest` to a destination taking `form`.

    `key` names the delivery (`digest:<name>:<period end>#<destination>`).
    Slack gets two rows: the summary, then the chart as a row of its own
    that waits for the summary (`after`) and shares into its channel, so a
    failed upload is retried without posting the summary twice.
    """
    if form == "slack":
        message = {"text": slack_text(digest), "blocks": [b.to_dict() for b in slack_blocks(digest, chart=chart is not None)],
                   "metadata": slack_metadata(digest, key)}
        rows = [(key, {"content": {"form": "slack", "message": message}})]
        if chart is not None:
            upload = {"png": _png(chart), "filename": chart_filename(digest), "title": chart_title(digest), "alt": chart_alt(digest)}
            rows.append((f"{key}#chart", {"content": {"form": "slack", "file": upload}, "after": key, "thread_key": key}))
        return rows
    if form == "email":
        return [(key, {"content": {
            "form": "email", "subject": subject(digest), "text": text(digest, chart=chart is not None),
            "html": html(digest, chart_cid=CHART_CID if chart is not None else None),
            "images": {CHART_CID: _png(chart)} if chart is not None else {}, "headers": {"X-Earful-Digest": key}}})]
    if form == "console":
        return [(key, {"content": console_content(digest)})]
    raise ValueError(f"no digest rendering for {form!r}")
