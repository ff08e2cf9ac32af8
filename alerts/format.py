"""Wording shared by the destinations that show an alert to a person.

Slack and the console must describe an alert the same way (same severity
words, same source names, same excerpt length rules), so that what support
sees in Slack matches what an admin sees running `earful demo`. Everything
here works on untrusted text and returns plain text: each destination does
its own escaping (Slack mrkdwn entities, rich Text) on top.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone

from earful.core import Mention

from earful.core import Alert

ELLIPSIS = "…"

SEVERITY_EMOJI: dict[str, str] = {"low": "🔵", "medium": "🟡", "high": "🟠", "critical": "🔴"}

SOURCE_NAMES: dict[str, str] = {
    "appstore": "App Store",
    "bluesky": "Bluesky",
    "capterra": "Capterra",
    "discord": "Discord",
    "facebook": "Facebook",
    "g2": "G2",
    "github": "GitHub",
    "googleplay": "Google Play",
    "hackernews": "Hacker News",
    "instagram": "Instagram",
    "linkedin": "LinkedIn",
    "mastodon": "Mastodon",
    "reddit": "Reddit",
    "rss": "RSS",
    "stackoverflow": "Stack Overflow",
    "telegram": "Telegram",
    "trustpilot": "Trustpilot",
    "x": "X",
    "youtube": "YouTube",
}

_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # C0/C1 controls except \t\n\v\f\r
# Bidi overrides/isolates can make "evil.example/acme.com" read backwards in
# Slack and in a terminal; zero-width joiners and variation selectors are
# harmless inside text but dangling at a cut point they glue onto the ellipsis.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_DANGLING = "\u200d\ufe0e\ufe0f"


def clean(text: str) -> str:
    """Untrusted text on one line: control characters (ANSI escapes, bells,
    bidi overrides) removed and every run of whitespace folded into one space.

    One line on purpose: a post cannot then fake extra fields, quotes or
    list items below its own excerpt in Slack or on the console.
    """
    text = _CONTROL.sub("", text.translate(_BIDI_CONTROLS))
    return _WHITESPACE.sub(" ", text).strip()


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in an ellipsis when cut.

    Cuts between code points (never inside one) and prefers a word boundary
    close to the limit so an excerpt does not end in half a word.
    """
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space >= len(cut) - 20 and space > 0:
        cut = cut[:space]
    while cut and (cut[-1] in _DANGLING or unicodedata.combining(cut[-1])):
        cut = cut[:-1]
    return cut.rstrip() + ELLIPSIS


def source_name(source: str) -> str:
    """'hackernews' -> 'Hacker News'; unknown connectors get a tidy title case."""
    return SOURCE_NAMES.get(source, source.replace("_", " ").replace("-", " ").title())


def source_label(mention: Mention) -> str:
    """The source, plus the site or community when the connector knows it (r/crm, a G2 product)."""
    name = source_name(mention.source)
    site = clean(mention.site)
    return f"{name} · {site}" if site and site.lower() != name.lower() else name


def author_label(mention: Mention) -> str:
    """The author as shown to people; the brand's own accounts are marked so a
    reply from us is never mistaken for a customer's post."""
    author = clean(mention.author) or "unknown author"
    return f"{author} (brand account)" if mention.author_is_brand else author


def severity_label(severity: str) -> str:
    """'high' -> '🟠 High'."""
    emoji = SEVERITY_EMOJI.get(severity, "⚪")
    return f"{emoji} {severity.capitalize()}"


def labels_label(labels: tuple[str, ...]) -> str:
    return ", ".join(labels) if labels else "no labels"


def stars(rating: float | None, scale: int = 5) -> str:
    """'★★★★☆ 4/5' for a review; empty when there is no usable rating."""
    if rating is None or not 0 <= rating <= scale:
        return ""
    full = int(rating + 0.5)
    number = f"{rating:g}"
    return f"{'★' * full}{'☆' * (scale - full)} {number}/{scale}"


def kind_label(mention: Mention) -> str:
    """'review ★★☆☆☆ 2/5 · no reply yet', 'comment', ...: the reply state only where the page shows it."""
    rating = stars(mention.rating) if mention.kind == "review" else ""
    label = f"{mention.kind} {rating}" if rating else mention.kind
    if mention.brand_replied is True:
        label += " · brand replied"
    elif mention.brand_replied is False:
        label += " · no reply yet"
    return label


def when_label(moment: datetime | None) -> str:
    """A timestamp people can read without guessing the zone: UTC, minutes."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def title_line(mention: Mention, limit: int) -> str:
    return truncate(clean(mention.title), limit)


def excerpt(mention: Mention, limit: int) -> str:
    """The body text on one line, trimmed (the title is shown on its own)."""
    return truncate(clean(mention.text), limit)


def headline(alert: Alert) -> str:
    """'🟠 High · complaint, question · Reddit' — the same one-liner in every destination."""
    parts = [severity_label(alert.severity)]
    if alert.labels:
        parts.append(labels_label(alert.labels))
    parts.append(source_name(alert.mention.source))
    return " · ".join(parts)


@dataclass(frozen=True)
class Place:
    """One place a clustered item appeared."""

    source: str
    author: str
    url: str


def places(alert: Alert) -> list[Place]:
    """Every place of the cluster, each URL once, in the order seen."""
    seen: set[str] = set()
    result: list[Place] = []
    for mention in alert.mentions:
        url = mention.url.strip()
        ident = url or mention.key
        if ident in seen:
            continue
        seen.add(ident)
        result.append(Place(source=source_label(mention), author=author_label(mention), url=url))
    return result
