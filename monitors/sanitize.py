"""Make whatever a source sent storable and deliverable, one mention at a time.

A single post with a lone surrogate (`"\\ud800"` in JSON), a NUL, a link
with a port of 99999 or a half-open IPv6 literal, or a 300 MB body must
not fail the batch it came in: that blocks the monitor's cursor for good
and silences every good item fetched beside it. The runner therefore
passes every mention a connector returns through `sanitize` (ONE place, so
rules, store and destinations all see the same cleaned mention) and
`storable` before it reaches the rules and the store:

* text fields: lone surrogates become U+FFFD (a valid surrogate pair is
  joined into its character), NULs are dropped; identity fields
  (`external_id`, thread and parent ids) keep a lone surrogate visible as
  `\\ud800` instead, so two ids never collapse into one key;
* absurd lengths are cut, with a marker that says how much was cut; an id
  too long to be a real id keeps a prefix plus a hash of the whole;
* a URL that cannot be parsed (bad port, bad IPv6 literal) leaves the
  link fields, so no dedupe key, Slack link or ticket field ever parses
  it, and is kept as plain text at the end of the mention's text;
* `raw` becomes plain JSON data with clean strings; a NaN rating is
  dropped and a naive time taken as UTC.

What still cannot be stored after that is reported by `storable`, and the
runner quarantines it (monitors/store/quarantine.py) with that reason.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from earful.core import Mention

# Generous for any real post, review or title; a source sending more is broken or hostile.
LIMITS: dict[str, int] = {"title": 2_000, "text": 100_000, "author": 500, "site": 500, "language": 50, "kind": 50,
                          "url": 8_000, "link_url": 8_000}
ID_LIMIT = 500
RAW_LIMIT = 200_000  # characters of `raw` as JSON; beyond it only a note of its size is kept
TEXT_FIELDS = ("source", "author", "title", "text", "site", "language", "kind")
ID_FIELDS = ("external_id", "thread_id", "parent_id")
URL_FIELDS = ("url", "link_url")


def clean_text(value: str) -> str:
    """`value` without lone surrogates (each becomes U+FFFD) or NULs."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value.replace("\x00", "") if "\x00" in value else value


def clean_id(value: str) -> str:
    """An identifier made storable without merging two different ones: lone surrogates and NULs are spelled
    out (`\\ud800`, `\\x00`), and an absurdly long one keeps a prefix plus a hash of the whole."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    if len(value) > ID_LIMIT:
        value = value[:ID_LIMIT - 33] + "~" + hashlib.blake2b(value.encode(), digest_size=16).hexdigest()
    return value


def trim(value: str, limit: int) -> str:
    """`value` in at most `limit` characters: when longer, cut, with a marker saying how many were cut."""
    if len(value) <= limit:
        return value
    keep = max(0, limit - len(_cut_marker(len(value))))  # the real count is smaller: the marker fits
    return value[:keep] + _cut_marker(len(value) - keep)


def _cut_marker(count: int) -> str:
    return f"… [{count:,} more characters cut by earful]"


def parses(url: str) -> bool:
    """True when `url` survives everything earful does with a URL (split, host, port)."""
    try:
        parts = urlsplit(url)
        parts.hostname, parts.port  # noqa: B018 - each raises ValueError on a bad literal or port
    except ValueError:
        return False
    return True


def clean_json(value: Any, depth: int = 0) -> Any:
    """`value` as plain JSON data (what `json.dumps(..., default=str)` would have written) with clean strings."""
    if depth > 50:
        return "[nested too deeply]"
    if isinstance(value, str):
        return clean_text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v, depth + 1) for v in value]
    return clean_text(str(value))


def sanitize(mention: Mention) -> Mention:
    """`mention` with every field in a shape the store and every destination accept (the same object when
    nothing needed changing)."""
    changes, links = _links(mention)
    changes.update(_texts(mention, links))
    changes.update(_ids(mention))
    raw = _clean_raw(mention.raw)
    if raw is not mention.raw:
        changes["raw"] = raw
    if rating_is_bad(mention.rating):
        changes["rating"] = None
    created = mention.created_at
    if created is not None and not isinstance(created, datetime):
        changes["created_at"] = None
    elif created is not None and created.utcoffset() is None:  # naive: sorting it among aware times would raise
        changes["created_at"] = created.replace(tzinfo=timezone.utc)
    return mention.replace(**changes) if changes else mention


def _links(mention: Mention) -> tuple[dict[str, Any], str]:
    """Changed URL fields, and the URLs that do not parse (one a line), which leave the link fields."""
    changes: dict[str, Any] = {}
    unparsed: list[str] = []
    for name in URL_FIELDS:
        value = getattr(mention, name)
        cleaned = trim(clean_text(value), LIMITS[name]) if isinstance(value, str) else value
        if isinstance(cleaned, str) and cleaned and not parses(cleaned):
            unparsed.append(cleaned)
            cleaned = ""
        if cleaned != value:
            changes[name] = cleaned
    return changes, "\n".join(dict.fromkeys(unparsed))


def _texts(mention: Mention, links: str) -> dict[str, str]:
    """Changed text fields; `links` (unparseable URLs) stay readable as plain text at the end of the text."""
    changes = {}
    for name in TEXT_FIELDS:
        value = getattr(mention, name)
        if not isinstance(value, str):
            continue
        limit = LIMITS.get(name, ID_LIMIT)
        if name == "text" and links:
            cleaned = trim(clean_text(value), limit - len(links) - 2)
            cleaned = f"{cleaned}\n\n{links}" if cleaned else links
        else:
            cleaned = trim(clean_text(value), limit)
        if cleaned != value:
            changes[name] = cleaned
    return changes


def _ids(mention: Mention) -> dict[str, str]:
    changes = {}
    for name in ID_FIELDS:
        value = getattr(mention, name)
        if isinstance(value, str) and clean_id(value) != value:
            changes[name] = clean_id(value)
    return changes


def rating_is_bad(rating: Any) -> bool:
    return isinstance(rating, float) and not math.isfinite(rating)


def _clean_raw(raw: Any) -> Any:
    """`raw` unchanged when it is already clean JSON within `RAW_LIMIT`, else a clean copy (or a size note)."""
    try:
        text = json.dumps(dict(raw), default=str, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        cleaned = clean_json(dict(raw))
        text = json.dumps(cleaned, ensure_ascii=False)
    else:
        cleaned = raw
    if len(text) > RAW_LIMIT:
        return {"earful": f"raw source data of {len(text):,} characters not kept"}
    return cleaned


@dataclass(frozen=True)
class Quarantined:
    """A mention that could not be taken in, and why."""

    key: str
    reason: str
    sample: str  # the mention as far as it can be shown, for the operator who looks into it


def storable(mention: Mention) -> None:
    """Raise ValueError naming the field when the store could still not write `mention` as it is."""
    for name in TEXT_FIELDS + ID_FIELDS + URL_FIELDS:
        value = getattr(mention, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} is a {type(value).__name__}, not text")
        if value is not None:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"{name} is not valid Unicode ({exc.reason})") from None
    if not mention.external_id:
        raise ValueError("the source gave no id")
    json.dumps(dict(mention.raw), default=str, ensure_ascii=False).encode("utf-8")


def quarantined(mention: Any, exc: BaseException) -> Quarantined:
    """The quarantine record of `mention`, whose preparation raised `exc`; never raises itself."""
    try:
        key = clean_id(f"{mention.source}:{mention.external_id}")
    except Exception:  # noqa: BLE001 - a mention too broken to name still gets recorded
        key = f"unknown:{id(mention)}"
    try:
        sample = clean_text(repr(mention))
    except Exception:  # noqa: BLE001
        sample = f"<{type(mention).__name__} that cannot be shown>"
    return Quarantined(key, clean_text(f"{type(exc).__name__}: {exc}")[:500], sample[:2_000])
