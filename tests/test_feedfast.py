"""The lxml fast path reads every feed to the same Mentions feedparser does, or hands it to feedparser.

feedparser stays the reference: each case parses the same bytes both ways
and compares the Mentions `entry_mention` makes of them, field by field.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from earful.connectors import feedfast
from earful.connectors.rss import entry_mention

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "feeds"
FEEDS = sorted(FIXTURES.glob("*")) + (sorted(REFERENCE.glob("*")) if REFERENCE.is_dir() else [])
FEED_URL = "https://example.com/feed"
BRANDS = {"acme"}


def mentions_both_ways(body: bytes):
    fast = feedfast.parse(body)
    reference = feedparser.parse(body)
    expected = [entry_mention(FEED_URL, reference.feed, entry, BRANDS) for entry in reference.entries]
    if fast is None:
        return None, expected
    return [entry_mention(FEED_URL, fast.feed, entry, BRANDS) for entry in fast.entries], expected


@pytest.mark.parametrize("path", FEEDS, ids=lambda p: p.name)
def test_every_known_feed_reads_the_same_or_falls_back(path: Path) -> None:
    fast, expected = mentions_both_ways(path.read_bytes().lstrip(b" \t\r\n"))
    if fast is not None:
        assert fast == expected


def test_the_common_feeds_take_the_fast_path() -> None:
    fast = [p.name for p in FEEDS if feedfast.parse(p.read_bytes().lstrip()) is not None]
    for name in ("google_alerts_acme.atom", "reddit_r_crm.atom", "rss2_acme.rss", "stackexchange_acme.atom",
                 "github_releases_acme.atom"):
        assert name in fast


@pytest.mark.parametrize("body", [
    b"<html><body>not a feed</body></html>",
    b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>',
    b'<rss version="2.0"><channel><item><title>x</title><pubDate>yesterday</pubDate></item></channel></rss>',
    b'<rss version="2.0"><channel><item><author>ann@example.com (Ann)</author></item></channel></rss>',
    b'<rss version="2.0" xml:base="https://example.com/"><channel><item><link>a</link></item></channel></rss>',
    b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
    b'x</div></content></entry></feed>',
    b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><link href="/relative"/></entry></feed>',
    b'<rss version="2.0"><channel><item><title>a &amp;amp; b</title></item></channel></rss>',
    b'<rss version="2.0"><channel><item><media:group xmlns:media="http://search.yahoo.com/mrss/">'
    b'<media:description>alt</media:description></media:group></item></channel></rss>',
    b'<rss version="2.0"><channel><item><title>x',
])
def test_anything_odd_goes_to_feedparser(body: bytes) -> None:
    assert feedfast.parse(body) is None


def test_a_feed_is_never_allowed_to_reach_outside_the_document(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    body = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
            '<rss version="2.0"><channel><item><title>&x;</title></item></channel></rss>').encode()
    parsed = feedfast.parse(body)
    assert parsed is None or all("do not read me" not in str(entry) for entry in parsed.entries)


# -- generated feeds -------------------------------------------------------------------------------

WORDS = st.sampled_from(["Acme", "acme", "export", "broken", "refund", "AT&T", "a < b", "5 > 3", "café", "Größe",
                         "東京", "¿qué?", "naïve", "€", "\u0080\u0099", "Ã©", "&amp;", "&lt;b&gt;", "'quote'", '"dq"',
                         "  spaced  ", "\n", "\t", "https://example.org/x?a=1&b=2", "@acme", "#tag"])
HTML = st.sampled_from(["<p>", "</p>", "<b>", "</b>", "<br/>", "<a href=\"https://example.org/p\">", "</a>",
                        "<script>alert(1)</script>", "<style>p{}</style>", "<ul><li>one</li></ul>", "<img src=x>",
                        "<iframe src=\"https://x\"></iframe>", "<!-- c -->", "&nbsp;", "&eacute;", "<em>", "</em>"])
TEXT = st.lists(WORDS, min_size=0, max_size=8).map(" ".join)
MARKUP = st.lists(st.one_of(WORDS, HTML), min_size=0, max_size=12).map(" ".join)
WHEN = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(timezone.utc))
ZONE = st.sampled_from([timedelta(0), timedelta(hours=2), timedelta(hours=-5, minutes=-30)])


def _rfc822(moment: datetime, zone: timedelta) -> str:
    local = moment.astimezone(timezone(zone))
    return local.strftime("%a, %d %b %Y %H:%M:%S ") + local.strftime("%z")


@st.composite
def rss_items(draw):
    parts = ["<item>"]
    if draw(st.booleans()):
        parts.append(f"<title>{escape(draw(TEXT))}</title>")
    if draw(st.booleans()):
        parts.append(f"<link>https://example.org/{draw(st.integers(0, 99))}</link>")
    guid = draw(st.sampled_from(["", "https://example.org/g1", "tag:x,2020:1"]))
    if guid:
        permalink = draw(st.sampled_from(["", ' isPermaLink="false"', ' isPermaLink="true"']))
        parts.append(f"<guid{permalink}>{guid}</guid>")
    if draw(st.booleans()):
        markup = draw(MARKUP)
        parts.append(f"<description><![CDATA[{markup}]]></description>" if draw(st.booleans()) and "]]>" not in markup
                     else f"<description>{escape(markup)}</description>")
    if draw(st.booleans()):
        parts.append(f"<content:encoded>{escape(draw(MARKUP))}</content:encoded>")
    if draw(st.booleans()):
        parts.append(f"<pubDate>{_rfc822(draw(WHEN), draw(ZONE))}</pubDate>")
    if draw(st.booleans()):
        parts.append(f"<dc:creator>{escape(draw(st.sampled_from(['ann', 'Bob B', 'acme', '/u/carl'])))}</dc:creator>")
    for term in draw(st.lists(st.sampled_from(["crm", "help", "Acme"]), max_size=2)):
        parts.append(f"<category>{term}</category>")
    parts.append("</item>")
    return "".join(parts)


@st.composite
def atom_entries(draw):
    parts = ["<entry>", f"<id>tag:example.org,2020:{draw(st.integers(0, 999))}</id>"]
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["", ' type="text"', ' type="html"']))
        parts.append(f"<title{kind}>{escape(draw(MARKUP if 'html' in kind else TEXT))}</title>")
    if draw(st.booleans()):
        parts.append(f'<link rel="alternate" href={quoteattr("https://example.org/e?a=1&b=2")}/>')
    for tag in ("published", "updated"):
        if draw(st.booleans()):
            parts.append(f"<{tag}>{draw(WHEN).astimezone(timezone(draw(ZONE))).isoformat()}</{tag}>")
    if draw(st.booleans()):
        parts.append(f"<author><name>{escape(draw(st.sampled_from(['ann', '/u/bob', 'Acme'])))}</name></author>")
    for tag in draw(st.lists(st.sampled_from(["content", "summary"]), max_size=2, unique=True)):
        kind = draw(st.sampled_from(["", ' type="text"', ' type="html"']))
        parts.append(f"<{tag}{kind}>{escape(draw(MARKUP))}</{tag}>")
    for term in draw(st.lists(st.sampled_from(["crm", "help"]), max_size=2)):
        parts.append(f'<category term="{term}" label="r/{term}"/>')
    parts.append("</entry>")
    return "".join(parts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(rss_items(), max_size=4), language=st.sampled_from(["", "en-us", "de"]))
def test_generated_rss_reads_the_same(items: list[str], language: str) -> None:
    head = f"<language>{language}</language>" if language else ""
    body = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/'
            'content/" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>t</title>'
            f"{head}{''.join(items)}</channel></rss>").encode("utf-8")
    fast, expected = mentions_both_ways(body)
    if fast is not None:
        assert fast == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(atom_entries(), max_size=4), language=st.sampled_from(["", "en", "pt_BR"]))
def test_generated_atom_reads_the_same(entries: list[str], language: str) -> None:
    lang = f' xml:lang="{language}"' if language else ""
    body = (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"{lang}><title>t</title>'
            f"{''.join(entries)}</feed>").encode("utf-8")
    fast, expected = mentions_both_ways(body)
    if fast is not None:
        assert fast == expected
