"""A fast path for plain RSS 2.0 and Atom 1.0 feeds, with feedparser as the reference.

feedparser reads every feed ever served, and pays for it: a SAX parse in
Python callbacks, HTML sanitising and URI resolution on every text, date
guessing. It was three quarters of a feed monitor's CPU. Most feeds are
well-formed RSS 2.0 or Atom 1.0 that use a handful of elements, and for
those lxml gives the same entries at a fraction of the cost.

`parse(body)` returns entries shaped like feedparser's (the keys
`rss.entry_mention` reads: title/title_detail, summary/summary_detail,
content, link, id, published_parsed/updated_parsed, tags, author,
feedburner_origlink) or None, and None means "ask feedparser": a body lxml
rejects, RSS 1.0 or anything but RSS 2.0/Atom 1.0, `xml:base`/`xml:lang`,
an element in an entry that this module does not know to be harmless (one
that feedparser might file under a field `entry_mention` reads, such as
`media:description`), an author with an e-mail address, an RSS title that
looks like HTML, a relative Atom link, XHTML or out-of-line content, a date
without a zone or in a format the standard library does not read. So an odd
feed is never read differently, only more slowly.

Where feedparser post-processes a text and the result could differ after
`entry_mention`, this module does the same: it repairs UTF-8 read as
Latin-1 and maps the Windows-1252 code points (feedparser's two fixes), and
it relies on `html_to_text` dropping `<script>`/`<style>` content as the
sanitiser does. tests/test_feedfast.py proves the Mentions equal on every
feed the tests and the recorded references hold, plus generated ones.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
FEEDBURNER = "{http://rssnamespace.org/feedburner/ext/1.0}"
XML = "{http://www.w3.org/XML/1998/namespace}"

# Entry children that feedparser files under no field entry_mention reads.
_HARMLESS_RSS = frozenset({
    "comments", "enclosure", "source",
    "{http://purl.org/rss/1.0/modules/slash/}comments", "{http://wellformedweb.org/CommentAPI/}commentRss",
    MEDIA + "content", MEDIA + "thumbnail", MEDIA + "rating",
})
_HARMLESS_ATOM = frozenset({
    ATOM + "contributor", ATOM + "rights", ATOM + "source",
    MEDIA + "thumbnail", MEDIA + "content", MEDIA + "rating",
    "{http://www.youtube.com/xml/schemas/2015}videoId", "{http://www.youtube.com/xml/schemas/2015}channelId",
    "{http://purl.org/atompub/rank/1.0}rank",
})
_MEDIA_CHILDREN_OK = frozenset({MEDIA + "rating", MEDIA + "thumbnail"})

# Tags feedparser's sanitiser keeps (a subset of its `acceptable_elements`): with any other tag, comment or
# processing instruction in HTML, what survives sanitising (and so whether html_to_text reads HTML or plain
# text) is feedparser's to say.
_KEPT_TAGS = frozenset({
    "a", "abbr", "b", "big", "blockquote", "br", "caption", "center", "cite", "code", "dd", "del", "div", "dl", "dt",
    "em", "figcaption", "figure", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
    "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "tt", "u", "ul", "var",
})
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)|<(!--)?")
_CLOSE_TAG = re.compile(r"</(\w+)>")
_ENTITY = re.compile(r"&#?\w+;")
_EMAIL = re.compile(r"@")
# feedparser's map of the Windows-1252 extensions, applied to every text it returns.
_CP1252 = str.maketrans({chr(c): bytes([c]).decode("cp1252") for c in range(0x80, 0xA0)
                         if c not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)})


class FastFeed:
    """What `parse` read: `feed` (the channel's fields) and `entries`, as feedparser names them."""

    __slots__ = ("version", "feed", "entries")

    def __init__(self, version: str, feed: dict[str, Any], entries: list[dict[str, Any]]):
        self.version = version
        self.feed = feed
        self.entries = entries


class _Odd(Exception):
    """Something only feedparser should judge."""


def parse(body: bytes) -> FastFeed | None:
    """The feed's entries, or None when feedparser must read it (see the module docstring)."""
    from lxml import etree

    try:
        root = etree.fromstring(body, parser=_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None
    try:
        if root.tag == "rss" and root.get("version") in ("2.0", "2.0.1", "0.92", "0.91"):
            return _rss(root)
        if root.tag == ATOM + "feed":
            return _atom(root)
    except _Odd:
        return None
    return None


def _parser() -> Any:
    from lxml import etree

    # No network, no entities from outside the document, no huge-tree tricks: a feed is untrusted input.
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True,
                           remove_pis=True, recover=False)


def _no_base_or_lang(root: Any, allow_root_lang: bool = False) -> None:
    for element in root.iter():
        if element.get(XML + "base") is not None:
            raise _Odd
        if element.get(XML + "lang") is not None and not (allow_root_lang and element is root):
            raise _Odd


def _text(element: Any) -> str:
    """An element's text as feedparser returns it: stripped, its two encoding repairs applied."""
    if len(element):
        raise _Odd  # markup inside a text element: feedparser's serialisation decides
    return _repair((element.text or "").strip())


def _repair(value: str) -> str:
    try:
        value = value.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return value.translate(_CP1252)


def _html(value: str) -> str:
    kept = comments = False
    for tag in _TAG.finditer(value):
        if tag.group(2) is not None:
            if tag.group(2).lower() not in _KEPT_TAGS:
                raise _Odd
            kept = True
        elif tag.group(3):
            comments = True  # dropped by both; harmless while a kept tag makes both read the value as HTML
        elif value[tag.end():tag.end() + 1] in ("!", "?"):
            raise _Odd
    if comments and not kept:
        raise _Odd
    return value


def _looks_like_html(value: str) -> bool:
    # feedparser's guess for RSS titles; when it might say HTML, let it decide
    return bool(_CLOSE_TAG.search(value) or _ENTITY.search(value))


def _utc_tuple(moment: datetime | None) -> Any:
    if moment is None or moment.tzinfo is None:
        raise _Odd
    return moment.astimezone(timezone.utc).timetuple()


def _rfc822(value: str) -> Any:
    try:
        return _utc_tuple(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError):
        raise _Odd from None


def _w3c(value: str) -> Any:
    try:
        return _utc_tuple(datetime.fromisoformat(value))
    except ValueError:
        raise _Odd from None


def _author(value: str) -> str:
    if _EMAIL.search(value):
        raise _Odd  # feedparser splits "name (email)" forms its own way
    return value


# -- RSS 2.0 ---------------------------------------------------------------


def _rss(root: Any) -> FastFeed:
    _no_base_or_lang(root)
    channel = root.find("channel")
    if channel is None:
        raise _Odd
    language = channel.findtext("language")
    lang = language.strip() if language is not None else None
    feed: dict[str, Any] = {"language": lang} if lang else {}
    entries = [_rss_item(item, lang) for item in channel.iter("item")]
    if any(True for _ in root.iter(ATOM + "entry")):
        raise _Odd
    return FastFeed("rss20", feed, entries)


def _rss_item(item: Any, lang: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    guid: str | None = None
    guid_is_link = False
    for child in item:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag == "title":
            value = _text(child)
            if _looks_like_html(value):
                raise _Odd
            entry["title"] = value
            entry["title_detail"] = {"type": "text/plain", "language": lang, "base": "", "value": value}
        elif tag == "link":
            entry["link"] = _text(child)
        elif tag == "description":
            value = _html(_text(child))
            entry["summary"] = value
            entry["summary_detail"] = {"type": "text/html", "language": lang, "base": "", "value": value}
        elif tag == CONTENT + "encoded":
            _add_content(entry, {"type": "text/html", "language": lang, "base": "", "value": _html(_text(child))})
        elif tag == "guid":
            guid = _text(child)
            guid_is_link = child.get("isPermaLink", "true") == "true"
            entry["id"] = guid
        elif tag == "pubDate":
            entry["published_parsed"] = _rfc822(_text(child))
        elif tag == DC + "date":
            entry["updated_parsed"] = _w3c(_text(child))
        elif tag in ("author", DC + "creator"):
            if "author" in entry:
                raise _Odd
            entry["author"] = _author(_text(child))
        elif tag == "category":
            term = _text(child)
            if term:
                entry.setdefault("tags", []).append({"term": term, "scheme": child.get("domain"), "label": None})
        elif tag == FEEDBURNER + "origLink":
            entry["feedburner_origlink"] = _text(child)
        elif tag == MEDIA + "content" or tag == MEDIA + "group":
            _check_media(child)
        elif tag not in _HARMLESS_RSS:
            raise _Odd
    if guid and guid_is_link and "link" not in entry:
        entry["link"] = guid
    return _identified(entry)


def _add_content(entry: dict[str, Any], detail: dict[str, Any]) -> None:
    """feedparser also files a content's value as the summary when none came before it (a later one replaces it)."""
    entry.setdefault("content", []).append(detail)
    entry.setdefault("summary", detail["value"])


def _identified(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry with neither id nor link is known by a hash of its raw HTML, which feedparser re-serialises."""
    if not entry.get("id") and not entry.get("link"):
        raise _Odd
    return entry


def _check_media(element: Any) -> None:
    """media:content/group carry descriptions feedparser files as content: only bare ones are harmless."""
    for child in element.iter():
        if child is element:
            continue
        if child.tag == MEDIA + "content":
            continue
        if child.tag not in _MEDIA_CHILDREN_OK:
            raise _Odd


# -- Atom 1.0 --------------------------------------------------------------


def _atom(root: Any) -> FastFeed:
    _no_base_or_lang(root, allow_root_lang=True)  # GitHub's feeds set xml:lang on <feed>: it applies to every text
    lang = root.get(XML + "lang")
    lang = lang.replace("_", "-") if lang else None
    entries = [_atom_entry(entry, lang) for entry in root.iter(ATOM + "entry")]
    return FastFeed("atom10", {"language": lang} if lang else {}, entries)


def _construct(element: Any, lang: str | None) -> dict[str, Any]:
    kind = element.get("type", "text")
    if element.get("src") is not None:
        raise _Odd
    if kind == "html":
        mime = "text/html"
    elif kind == "text":
        mime = "text/plain"
    else:
        raise _Odd  # xhtml, base64 and other media types: feedparser's own handling
    value = _text(element)
    return {"type": mime, "language": lang, "base": "", "value": _html(value) if kind == "html" else value}


def _atom_entry(element: Any, lang: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag == ATOM + "title":
            detail = _construct(child, lang)
            entry["title"] = detail["value"]
            entry["title_detail"] = detail
        elif tag == ATOM + "id":
            entry["id"] = _text(child)
        elif tag == ATOM + "link":
            rel = child.get("rel", "alternate")
            href = child.get("href")
            if href is None:
                raise _Odd
            if not href.startswith(("http://", "https://")):
                raise _Odd  # feedparser resolves it against a base this module does not know
            if rel == "alternate" and child.get("type", "text/html") in ("text/html", "application/xhtml+xml"):
                entry["link"] = _repair(href)
        elif tag == ATOM + "published":
            entry["published_parsed"] = _w3c(_text(child))
        elif tag == ATOM + "updated":
            entry["updated_parsed"] = _w3c(_text(child))
        elif tag == ATOM + "author":
            if "author" in entry:
                raise _Odd
            for part in child:
                if part.tag == ATOM + "name":
                    entry["author"] = _author(_text(part))
                elif part.tag == ATOM + "email":
                    raise _Odd
        elif tag == ATOM + "content":
            _add_content(entry, _construct(child, lang))
        elif tag == ATOM + "summary":
            detail = _construct(child, lang)
            entry["summary"] = detail["value"]
            entry["summary_detail"] = detail
        elif tag == ATOM + "category":
            term = child.get("term")
            if term:
                entry.setdefault("tags", []).append({"term": term, "scheme": child.get("scheme"),
                                                     "label": child.get("label")})
        elif tag == FEEDBURNER + "origLink":
            entry["feedburner_origlink"] = _text(child)
        elif tag == MEDIA + "group":
            _check_media(child)
        elif tag not in _HARMLESS_ATOM:
            raise _Odd
    if entry.get("id") and "link" not in entry:
        entry["link"] = entry["id"]  # feedparser treats an Atom id like an RSS permalink guid
    return _identified(entry)
