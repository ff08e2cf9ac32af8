"""Keys that make two mentions "the same item" although they differ.

A syndicated article, a crosspost or a link shared with tracking parameters
must produce one alert, not five. Two cheap keys catch most of it:

* `canonical_url`: the URL with tracking parameters, AMP and mobile
  variants, fragments and trailing slashes removed, so every copy of a link
  compares equal;
* `text_fingerprint`: a hash of the text reduced to its words, so the same
  post copied to another forum or feed compares equal even when markup,
  punctuation, case or a trailing "submitted by" line differ.

Both are plain strings stored in indexed columns: lookup cost stays flat as
history grows.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid", "igsh",
    "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok", "ref_src", "ref_url", "si", "spm", "amp",
    "s_cid", "cmpid", "ncid", "sr_share", "share", "feature", "__twitter_impression",
})
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "oly_")
MOBILE_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.", "old.", "np.", "i.")
MIN_FINGERPRINT_WORDS = 8  # shorter texts ("thanks!", "+1") are too common to cluster

_WORD = re.compile(r"\w+")
_URL_IN_TEXT = re.compile(r"https?://\S+")


def canonical_url(url: str) -> str:
    """A comparable form of `url`; empty string for empty input, `url` itself
    (not canonicalised) when it is not http(s) or does not parse (a bad port
    or IPv6 literal must not fail the batch it came in)."""
    url = (url or "").strip()
    while url:
        try:
            parts = urlsplit(url)
            host, port = (parts.hostname or "").lower(), parts.port
        except ValueError:
            return url
        if parts.scheme not in ("http", "https") or not host:
            return url
        inner = _unwrapped_amp(host, parts.path or "/")
        if inner is None:
            return _canonical(host, port, parts.path or "/", parts.query)
        url = "https://" + inner
    return ""


def _unwrapped_amp(host: str, path: str) -> str | None:
    """The page an AMP cache URL serves ("example.com/a"), or None when `host` is no AMP cache."""
    # Google's AMP cache: https://www.google.com/amp/s/example.com/a -> example.com/a
    if host in ("www.google.com", "google.com") and path.startswith("/amp/"):
        inner = path[len("/amp/"):]
        return inner[2:] if inner.startswith("s/") else inner
    if host.endswith(".cdn.ampproject.org"):
        rest = path.lstrip("/")
        for prefix in ("c/s/", "v/s/", "c/", "v/"):
            if rest.startswith(prefix):
                return rest[len(prefix):]
    return None


def _canonical(host: str, port: int | None, path: str, query_string: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in MOBILE_HOST_PREFIXES:
            if host.startswith(prefix) and host.count(".") >= 2:
                host, changed = host[len(prefix):], True
    path = unquote(path)
    path = re.sub(r"/amp/?$", "/", path)
    path = re.sub(r"\.amp(\.html?)?$", r"\1", path)
    path = re.sub(r"/{2,}", "/", path).rstrip("/") or "/"
    query = [
        (k, v) for k, v in parse_qsl(query_string, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    ]
    query.sort()
    netloc = f"{host}:{port}" if port and port not in (80, 443) else host
    return urlunsplit(("https", netloc, path, urlencode(query), ""))


_ASCII = bytes(range(128))
_COMBINING: dict[str, bool] = {}  # per distinct code point: is it a combining mark? (bounded by Unicode)


def _strip_accents(body: str) -> str:
    """NFKD, then drop combining marks: looping over distinct non-ASCII characters only
    (found with byte operations in C), not over every character of the text."""
    body = unicodedata.normalize("NFKD", body)
    distinct = set(body.encode("utf-8", "surrogatepass").translate(None, _ASCII).decode("utf-8", "surrogatepass"))
    for char in distinct:
        drop = _COMBINING.get(char)
        if drop is None:
            drop = _COMBINING[char] = bool(unicodedata.combining(char))
        if drop:
            body = body.replace(char, "")
    return body


def text_fingerprint(title: str, text: str) -> str:
    """Hash of the words of a mention, or "" when there are too few to trust."""
    body = _URL_IN_TEXT.sub(" ", f"{title} {text}")
    if not body.isascii():
        body = _strip_accents(body)
    words = _WORD.findall(body.casefold())
    if len(words) < MIN_FINGERPRINT_WORDS:
        return ""
    return hashlib.blake2b(" ".join(words).encode(), digest_size=12).hexdigest()
