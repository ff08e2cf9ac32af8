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
from datetime import datetime, timezone, tzinfo

from earful.core import Alert, Mention

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


# LinkedIn's APIs name people and organizations by URN only (urn:li:person:…): looking a
# name up needs a permission earful does not ask for, so the URN stands for a kind of member.
_URN_KINDS = {"person": "a LinkedIn member", "member": "a LinkedIn member", "organization": "a LinkedIn organization",
              "organizationBrand": "a LinkedIn organization"}


def author_name(author: str) -> str:
    """'urn:li:person:8Xk2' -> 'a LinkedIn member': what a reader can make sense of."""
    author = clean(author)
    if author.startswith("urn:li:"):
        return _URN_KINDS.get(author.split(":")[2] if author.count(":") >= 3 else "", "a LinkedIn member")
    return author


def author_label(mention: Mention) -> str:
    """The author as shown to people; the brand's own accounts are marked so a
    reply from us is never mistaken for a customer's post."""
    author = author_name(mention.author) or "unknown author"
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


def when_label(moment: datetime | None, zone: tzinfo = timezone.utc) -> str:
    """A timestamp people can read without guessing the zone: in the deployment's
    `timezone` (as digests show it), to the minute, with the zone's abbreviation."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


# A comment, reply or chat message is written under someone else's post: any
# title it carries is the thread's (a Reddit link title, an HN story, a
# Facebook post, a Telegram group's name), never what its writer said.
OWN_TITLE_KINDS = frozenset({"post", "review"})
NOTICE_SOURCE = "earful"  # earful's own notices (health, spike, flood control): messages titled by earful itself
OPENING_CHARS = 120  # the writer's own words in a headline: about a phone notification's first lines
SHORTEST_OPENING = 20  # "Hi team," or "Hello!" alone says nothing: read on to the next sentence
CONTEXT_MIN_CHARS = 20  # a thread title cut shorter than this is noise, not context
_SENTENCE_END = re.compile(r"[.!?…]+(?=\s|$)|[。！？]+")


def is_response(mention: Mention) -> bool:
    """True when the mention was written under another post, so its title (if any) is the thread's."""
    if mention.source == NOTICE_SOURCE:
        return False
    return mention.kind not in OWN_TITLE_KINDS or bool(mention.parent_id)


def opening(text: str, limit: int) -> str:
    """The first sentence of `text` (or its first line when that has no end
    mark), on one line, trimmed at a word to `limit`; a greeting too short to
    say anything runs on into the next sentence or line."""
    head = ""
    for line in text.splitlines():
        line = clean(line)
        if line:
            head = f"{head} {line}" if head else line
            if len(head) >= SHORTEST_OPENING:
                break
    end = next((m.end() for m in _SENTENCE_END.finditer(head) if m.end() >= SHORTEST_OPENING), len(head))
    return truncate(head[:end], limit)


def subject(mention: Mention, limit: int) -> str:
    """What the item says, in one line of at most `limit` characters: the one
    headline every destination and the digest show for it.

    A post or review is named by its own title (else its text). A comment,
    reply or message is named by its writer's own opening words, followed by
    the thread it was written in as context, "(on: Meet Acme CRM 5.2…)",
    when there is room: a complaint must never read as the brand's launch post.
    """
    title = clean(mention.title)
    if not is_response(mention):
        return truncate(title or clean(mention.text), limit)
    words = opening(mention.text, min(limit, OPENING_CHARS))
    if not words:  # nothing written (a sticker, an image): the thread is all there is to show
        return truncate(f"on: {title}", limit) if title else ""
    room = limit - len(words) - len(" (on: )")
    if not title or room < CONTEXT_MIN_CHARS:
        return words
    return f"{words} (on: {truncate(title, room)})"


def title_line(mention: Mention, limit: int) -> str:
    """The item's own title, shown above its text; empty for a response (see `context_line`)."""
    return "" if is_response(mention) else truncate(clean(mention.title), limit)


def context_line(mention: Mention, limit: int) -> str:
    """'on: Meet Acme CRM 5.2…': the thread a response was written in, shown apart from its words."""
    title = clean(mention.title) if is_response(mention) else ""
    return truncate(f"on: {title}", limit) if title else ""


def excerpt(mention: Mention, limit: int) -> str:
    """The body text on one line, trimmed (the title is shown on its own)."""
    return truncate(clean(mention.text), limit)


def answered_label(mention: Mention) -> str:
    """'already answered by Acme Support' for an item the brand had answered
    when earful found it (the replier as the page names it, when it does);
    empty otherwise. Only `brand_replied is True` counts: unknown is not answered."""
    if mention.brand_replied is not True:
        return ""
    by = clean(str(mention.raw.get("reply_by") or ""))
    return f"already answered by {by}" if by else "already answered"


def headline_facts(alert: Alert) -> list[str]:
    """Labels, source and reply state: what every headline says after the severity."""
    parts = [labels_label(alert.labels)] if alert.labels else []
    if alert.mentions:
        parts.append(source_name(alert.mention.source))
        answered = answered_label(alert.mention)
        if answered:
            parts.append(answered)
    return parts


def headline(alert: Alert) -> str:
    """'🟠 High · complaint, question · Reddit' — the same one-liner in every
    destination, ending '· already answered by X' when the brand had answered."""
    return " · ".join([severity_label(alert.severity), *headline_facts(alert)])


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
