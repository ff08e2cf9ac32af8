"""The one text normalisation shared by rule queries and mention text.

Matching is only as good as the agreement between how a query term and a
post are reduced to comparable strings, so both go through `normalize`:

* case is folded (`str.casefold`, so ``ß`` equals ``ss``);
* accents are folded: NFKD, then every combining mark is dropped
  (``Café`` -> ``cafe``, ``ﬁ`` -> ``fi``, ``Ａｃｍｅ`` -> ``acme``), plus a
  few Latin letters that have no decomposition (``ø`` -> ``o``, ``æ`` ->
  ``ae``, ``ł`` -> ``l``). This is lossy in scripts whose marks carry
  meaning (``й`` reads ``и``), but queries and text lose the same marks;
* every run of characters that are not letters or digits becomes one space.
  Text is therefore a sequence of words, and punctuation never matters:
  the phrase ``"acme crm"`` matches "Acme CRM", "acme  crm", "acme-crm",
  "acme_crm" and "acme, crm"; ``acme`` matches "acme's", "#acme", "@acme"
  and "acme." but not "acmeville" (words are compared whole). A query term
  that contains punctuation is a phrase of its words: ``acme.com`` is the
  words ``acme com``. Underscore is punctuation here, so ``acme`` matches
  the handle "@acme_support";
* obfuscated dots are restored: "acme[.]com" and "acme(.)com" already read
  ``acme com`` by the rule above; the spelled-out "acme dot com",
  "acme[dot]com" and "acme(dot)com" lose their "dot" when the next word is
  a common top-level domain, so a query for ``acme.com`` finds all of them.
  The price: the word "dot" right before such a word ("the dot com
  bubble") is gone from both queries and text;
* CJK ideographs and kana (written without spaces) become one word per
  character, so a brand name written in them is still found as a phrase
  inside a sentence.

This runs on every mention, so it avoids per-character Python work: ASCII
text (most posts) is one `bytes.translate` plus a split and join; other
text first has each *distinct* non-ASCII character folded once, with
`str.replace` (about 2-3 µs for a 300-character English post, 4 µs with a
curly quote).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

# Byte table: ASCII letters and digits map to lower case, other ASCII bytes
# to a space, and bytes of multi-byte UTF-8 sequences (>= 0x80) to themselves.
_TABLE = bytes(
    b if b >= 128 else ord(chr(b).lower()) if chr(b).isalnum() else ord(" ") for b in range(256)
)
_ASCII_BYTES = bytes(range(128))

# Latin letters that NFKD leaves alone but readers treat as accented forms.
_LETTERS = {"ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ł": "l", "ħ": "h", "ı": "i", "þ": "th", "ð": "d"}
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")

_TLDS = "com|net|org|io|co|ai|app|dev|info|biz|xyz|edu|gov|uk|de|fr|eu|ca|au|nl|ch|tv|ly|gg"
_SPELLED_DOT = re.compile(rf"(?<=\S) dot (?=(?:{_TLDS})(?: |$))")

_FOLDED: dict[str, str] = {}  # non-ASCII character -> its folded form, filled on first sight


def _fold_char(char: str) -> str:
    """One non-ASCII character (already NFKD) as it should read after folding."""
    out = []
    for ch in unicodedata.normalize("NFKD", char.casefold()):
        if ch.isascii():
            out.append(ch)
        elif unicodedata.category(ch)[0] == "M":  # combining mark: an accent
            continue
        elif ch in _LETTERS:
            out.append(_LETTERS[ch])
        elif _CJK.match(ch):
            out.append(f" {ch} ")
        else:
            out.append(ch if ch.isalnum() else " ")
    return "".join(out)


def _fold_non_ascii(text: str) -> str:
    """Fold the few distinct non-ASCII characters of `text`, one `replace` each.

    Per-character work in Python would cost ~50 ns a character; a post with
    one curly quote would pay it for all 300. Instead the distinct non-ASCII
    characters are found with C-level byte operations and each is replaced
    once, so the cost follows the number of distinct unusual characters.
    """
    text = unicodedata.normalize("NFKD", text)
    unusual = text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES)
    for char in set(unusual.decode("utf-8", "surrogatepass")):
        folded = _FOLDED.get(char)
        if folded is None:
            folded = _FOLDED[char] = _fold_char(char)
        if folded != char:
            text = text.replace(char, folded)
    return text


def normalize(text: str) -> str:
    """`text` as lower-case, accent-free words separated by single spaces."""
    if not text.isascii():
        text = _fold_non_ascii(text)
    words = b" ".join(text.encode().translate(_TABLE).split()).decode()
    if " dot " in words:
        words = _SPELLED_DOT.sub(" ", words)
    return words


def normalize_author(name: str) -> str:
    """An account name as compared by `author:`: no case, no `@`, `u/` or `/u/`."""
    name = name.strip().casefold().lstrip("@")
    return name.removeprefix("/u/").removeprefix("u/")


def normalize_site(value: str) -> str:
    """A domain or subreddit as compared by `site:`.

    "https://www.Example.com/x" -> "example.com"; "r/CRM" and "/r/crm" ->
    "crm". Subdomains are matched by the caller (`site_matches`).
    """
    value = value.strip().casefold()
    if value.startswith(("r/", "/r/")):
        return value.removeprefix("/").removeprefix("r/").strip("/")
    if "://" in value:
        value = value.split("://", 1)[1]
    host = value.split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
    return host.rstrip(".").removeprefix("www.")


def url_host(url: str) -> str:
    """The host of `url`, normalised like a `site:` value ('' if none)."""
    if not url:
        return ""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".").removeprefix("www.")


def site_matches(site: str, wanted: str) -> bool:
    """True when normalised `site` is `wanted` or one of its subdomains."""
    return site == wanted or site.endswith("." + wanted)


def normalize_language(code: str) -> str:
    """'pt_BR' -> 'pt-br': language tags compared without case, `_` as `-`."""
    return code.strip().casefold().replace("_", "-")


def language_matches(language: str | None, wanted: str) -> bool:
    """`lang:en` matches en, en-US and en-GB but not eng; None matches nothing."""
    if not language:
        return False
    language = normalize_language(language)
    return language == wanted or language.startswith(wanted + "-")
