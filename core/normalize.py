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

This runs on every mention, so it avoids per-character Python work. The
text is encoded to UTF-8 once and ASCII is folded by one `bytes.translate`
(letters and digits to lower case, everything else to a space). Each
*distinct* non-ASCII character is then folded once per process (cached) and
substituted with one `bytes.replace`, so the cost follows the number of
distinct unusual characters, not the length of the text; a split and join
collapses the spaces (about 3 µs for a 300-character English post, 5 µs
with accents and emoji). Folding character by character equals folding the
NFKD form of the whole text: NFKD only decomposes characters and reorders
combining marks among themselves, and every combining mark is dropped. The
non-ASCII characters a folding produces fold to themselves (true for every
code point), so the order of the substitutions does not matter either.
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
# " dot " between a word and a top-level domain. The literal comes first and the
# look-behind after it (same meaning as `(?<=\S) dot `): `re` then searches for
# the literal, several times faster than trying the look-behind at every position.
_SPELLED_DOT = re.compile(rf" dot (?<=\S dot )(?=(?:{_TLDS})(?: |$))")

_FOLDED: dict[str, tuple[bytes, bytes] | None] = {}  # non-ASCII character -> see `_fold_pair`, filled on first sight
_MISSING = object()


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


def _fold_pair(char: str) -> tuple[bytes, bytes] | None:
    """An original non-ASCII character of a text and what it reads after
    folding, both as UTF-8 (the folded form passed through the ASCII table
    like the rest of the text); None when folding leaves it alone.

    The character's NFKD decomposition is folded character by character.
    """
    folded = "".join(d if d.isascii() else _fold_char(d) for d in unicodedata.normalize("NFKD", char))
    encoded = char.encode("utf-8", "surrogatepass")
    result = folded.encode("utf-8", "surrogatepass").translate(_TABLE)
    return None if result == encoded else (encoded, result)


def _fold_bytes(data: bytes) -> bytes:
    """`data` (UTF-8, ASCII already translated) with every non-ASCII character folded.

    The distinct non-ASCII characters are found with C-level byte operations
    and each is replaced once; `_FOLDED` caches a character's folding for the
    life of the process. UTF-8 is self-synchronising, so replacing a
    character's bytes never touches part of another character.
    """
    for char in set(data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")):
        pair = _FOLDED.get(char, _MISSING)
        if pair is _MISSING:
            pair = _FOLDED[char] = _fold_pair(char)
        if pair is not None:
            data = data.replace(*pair)
    return data


def normalize(text: str) -> str:
    """`text` as lower-case, accent-free words separated by single spaces."""
    if text.isascii():
        words = b" ".join(text.encode().translate(_TABLE).split()).decode()
    else:
        data = _fold_bytes(text.encode("utf-8", "surrogatepass").translate(_TABLE))
        words = b" ".join(data.split()).decode("utf-8", "surrogatepass")
    if " dot " in words:
        words = _SPELLED_DOT.sub(" ", words)
    return words


# The separator between title and text in `normalize_pair`: a byte that the
# ASCII table never produces (it maps every non-alphanumeric ASCII byte to a
# space) and that no keyword contains, so no keyword can span it.
SEPARATOR = "\x01"
_SPELLED_DOT_PAIR = re.compile(rf" dot (?<=[^\s\x01] dot )(?=(?:{_TLDS})(?: |$))")


def normalize_pair(title: str, text: str) -> str:
    """What the engine searches: the words of `normalize(title)`, the
    separator and the words of `normalize(text)`, joined and padded with one
    space each (" acme crm \\x01 it is broken "; " \\x01 text " without a
    title), computed in one pass. A keyword (words and spaces) is found in it
    exactly when it is found in " title " or in " text "."""
    if title.isascii() and text.isascii():
        data = title.encode().translate(_TABLE) + b" \x01 " + text.encode().translate(_TABLE)
        words = b" ".join(data.split()).decode()
    else:
        data = (title.encode("utf-8", "surrogatepass").translate(_TABLE) + b" \x01 "
                + text.encode("utf-8", "surrogatepass").translate(_TABLE))
        words = b" ".join(_fold_bytes(data).split()).decode("utf-8", "surrogatepass")
    if " dot " in words:
        words = _SPELLED_DOT_PAIR.sub(" ", words)
    return f" {words} "


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
