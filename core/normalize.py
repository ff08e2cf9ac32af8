"""The one text normalisation shared by rule queries and mention text.

Matching is only as good as the agreement between how a query term and a
post are reduced to comparable strings, so both go through `normalize`:

* compatibility forms are unified (NFKC: ``ﬁ`` -> ``fi``, ``Ａｃｍｅ`` ->
  ``acme``, half-width ``ｶﾞ`` -> ``ガ``) and case is folded
  (`str.casefold`, so ``ß`` equals ``ss``);
* accents are folded where readers treat them as optional, and kept where
  they make another word:
  - Latin and Greek letters lose every mark (``Café`` -> ``cafe``, ``über``
    -> ``uber``, ``ά`` -> ``α``), and a few Latin letters with no
    decomposition are folded too (``ø`` -> ``o``, ``æ`` -> ``ae``,
    ``ł`` -> ``l``);
  - Cyrillic letters keep theirs (``й`` is not ``и``, ``ї`` is not ``і``),
    except ``ё`` -> ``е`` (Russian writes ``е`` for it most of the time)
    and the stress accents (``ѝ`` -> ``и``, ``за́мок`` -> ``замок``);
  - Arabic harakat, Hebrew niqqud and cantillation, Syriac vowel points and
    the Arabic tatweel are dropped (``مُحَمَّد`` -> ``محمد``); letters,
    including hamza forms such as ``أ`` and ``ئ``, stay;
  - kana keep their voicing marks (``バグ`` is not ``ハグ`` or ``バク``),
    Hangul syllables stay whole, and the vowel signs, tone marks and
    viramas of Thai, Devanagari and the other Brahmic scripts are letters
    (``ใกล้`` is not ``ใกล``, ``हिंदी`` keeps every sign);
  - invisible format characters inside a word (soft hyphen, zero-width
    joiner, direction marks) are removed; the zero-width space and
    non-joiner separate words;
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
* scripts written without spaces between words (Han, kana, Hangul, Thai,
  Lao, Khmer, Myanmar, Yi) become one word per letter, its combining signs
  attached: "我喜欢艾克米公司" reads ``我 喜 欢 艾 克 米 公 司``, so the
  query 艾克米 (the phrase ``艾 克 米``) is found inside a sentence, and so
  is a Latin name written into it ("最近Acme CRMで"). A keyword in these
  scripts therefore matches as a run of letters, also across the word
  boundaries that a reader sees (``กา`` is found inside ``กาแฟ``), and a
  Korean name is found with its particle attached (삼성 in 삼성이).

This runs on every mention, so no Python code loops over characters. By
definition the text is NFKC-normalised as a whole, each character replaced
by its folding (`_FOLD`, computed once per character and cached) and the
spaces collapsed. It is computed as: ASCII text, one `bytes.translate`;
mostly-ASCII text with a few distinct other characters (accented Latin),
that plus one `bytes.replace` per distinct character; any other text, NFC
or NFKC of the whole only where it can change the result (decomposed
input, `_NEEDS_NFKC`), then one `str.translate`. The cost per character is
constant in every script. `normalize`, µs, before this version -> now
(CPython 3.11, shared 2-CPU machine, best of 15): 300 characters: en 1.6 ->
1.7, de 4.4 -> 5.1, fr 5.1 -> 5.4, es 6.3 -> 6.8, ru 16 -> 14, ja 185 ->
27 (395 -> 61 with half-width katakana), zh 230 -> 30; 3 KB: en 15 -> 15,
de 36 -> 36, fr 43 -> 42, es 61 -> 62, ru 134 -> 135, ja 1833 -> 255, zh
5324 -> 405.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

# Byte table for ASCII: letters and digits to lower case, other ASCII bytes to
# a space, bytes of multi-byte UTF-8 sequences (>= 0x80) to themselves.
_ASCII_TABLE = bytes(
    b if b >= 128 else ord(chr(b).lower()) if chr(b).isalnum() else ord(" ") for b in range(256)
)
_ASCII_BYTES = bytes(range(128))

# Scripts written without spaces between words: each letter is a word.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f\ua9e0-\ua9ff\uaa60-\uaa7f"  # Myanmar
    "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7ff"  # Hangul jamo and syllables
    "\u1780-\u17ff\u19e0-\u19ff"  # Khmer
    "\u3005-\u3007\u3021-\u3029\u3038-\u303b"  # ideographic iteration marks and numerals
    "\u3040-\u30ff\u31f0-\u31ff\U0001b000-\U0001b16f"  # kana
    "\u3100-\u312f\u31a0-\u31bf"  # Bopomofo
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"  # Han
    "\ua000-\ua4cf]"  # Yi
)
# Combining marks that readers treat as optional, dropped wherever they stand
# after composition: generic diacritics (on Latin, Greek and Cyrillic letters
# they are accents and stress marks), variation selectors, Cyrillic titlo,
# Hebrew points and cantillation, Arabic harakat and Koranic marks, Syriac
# vowels. Every other combining mark (kana voicing, Brahmic vowel signs,
# Thai tone marks, ...) is part of its letter.
_OPTIONAL_MARK = re.compile(
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\ufe00-\ufe0f\U000e0100-\U000e01ef"
    "\u0483-\u0489\u2de0-\u2dff\ua66f-\ua67d\ua69e\ua69f"
    "\u0591-\u05c7\ufb1e"
    "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0898-\u089f\u08ca-\u08ff"
    "\u0711\u0730-\u074a]"
)
# Compatibility characters whose NFKC form composes with a neighbour in a
# script that keeps its marks (half-width katakana and their voicing marks,
# circled and squared katakana, compatibility, circled and half-width Hangul
# jamo, Arabic presentation forms) or holds marks that a following mark is
# sorted among (Greek ypogegrammeni, two Tibetan vowel signs): text holding
# one needs NFKC as a whole. Any other character of the BMP folds the same
# alone as in context, which tests/test_normalize_scripts.py checks for each.
# (Beyond the BMP only Arabic mathematical letters and squared hiragana
# followed by a combining mark would need it; a BMP-only class is three
# times faster for `re`.)
_NEEDS_NFKC = re.compile(
    "[\u037a\u0f77\u0f79\u30ff\u3131-\u318e\u3260-\u327e\u32d0-\u32fe\u3300-\u3357"
    "\ufb50-\ufdff\ufe70-\ufefc\uff65-\uffdc]"
)
_SPECIAL = {
    # Latin letters that NFKD leaves alone but readers treat as accented forms
    "ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ł": "l", "ħ": "h", "ı": "i", "þ": "th", "ð": "d",
    # Cyrillic: ё is written е in most Russian text; ѐ and ѝ are е and и with a stress accent
    "ё": "е", "ѐ": "е", "ѝ": "и",
    # Arabic tatweel only stretches a word
    "\u0640": "",
    # invisible inside a word: soft hyphen, joiners, direction marks and embeddings, BOM
    **dict.fromkeys("\u00ad\u034f\u061c\u180e\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff", ""),
}
_ATTACH = "\x02"  # marks a combining sign whose letter is a word of its own; removed with the space before it

_TLDS = "com|net|org|io|co|ai|app|dev|info|biz|xyz|edu|gov|uk|de|fr|eu|ca|au|nl|ch|tv|ly|gg"
# " dot " between a word and a top-level domain. The literal comes first and the
# look-behind after it (same meaning as `(?<=\S) dot `): `re` then searches for
# the literal, several times faster than trying the look-behind at every position.
_SPELLED_DOT = re.compile(rf" dot (?<=\S dot )(?=(?:{_TLDS})(?: |$))")

_FEW = 24  # at most this many distinct non-ASCII characters: the bytes path is cheaper


def _is_latin_or_greek(char: str) -> bool:
    return char.isascii() or unicodedata.name(char, "").startswith(("LATIN", "GREEK"))


def _fold_one(char: str) -> str:
    """One character of NFKC, case-folded text as it reads after folding."""
    if char in _SPECIAL:
        return _SPECIAL[char]
    if char.isascii():
        return char if char.isalnum() else " "
    if unicodedata.category(char)[0] == "M":
        if _OPTIONAL_MARK.match(char):
            return ""
        return _ATTACH + char if _UNSPACED.match(char) else char
    if not char.isalnum():
        return " "
    base = unicodedata.normalize("NFD", char)[0]
    if base != char and _is_latin_or_greek(base):
        return _fold_one(base)
    return f" {char} " if _UNSPACED.match(char) else char


class _FoldTable(dict):
    """Code point -> folded string, for `str.translate`; each code point is
    computed on first sight and kept (bounded by the size of Unicode)."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        cased = unicodedata.normalize("NFKC", char).casefold()
        folded = self[code] = "".join(map(_fold_one, unicodedata.normalize("NFKC", cased)))
        return folded


_FOLD = _FoldTable()
_NOT_HERE = b""  # see `_replacement`
_UNCHANGED = ()
_REPLACE: dict[str, tuple[bytes, bytes] | tuple[()] | bytes] = {}  # char -> see `_replacement`, filled on first sight


def _replacement(char: str) -> tuple[bytes, bytes] | tuple[()] | bytes:
    """How the bytes path treats `char`: (its UTF-8, its folding's UTF-8),
    `_UNCHANGED` when folding leaves it alone, or `_NOT_HERE` when only the
    str path can fold it: it may compose with the character before it (a
    combining mark, a Hangul vowel or final jamo, see also `_NEEDS_NFKC`),
    which only NFC or NFKC of the whole text can tell, or its folding
    attaches a sign to the letter before (Thai ``ำ``)."""
    replacement = _REPLACE.get(char)
    if replacement is None:
        encoded, folded = char.encode("utf-8", "surrogatepass"), _FOLD[ord(char)].encode("utf-8", "surrogatepass")
        if (unicodedata.category(char)[0] == "M" or "\u1160" <= char <= "\u11ff" or _NEEDS_NFKC.match(char)
                or _ATTACH.encode() in folded):
            replacement = _NOT_HERE
        else:
            replacement = _UNCHANGED if folded == encoded else (encoded, folded)
        _REPLACE[char] = replacement
    return replacement


def _words_few(text: str, head: bytes) -> str | None:
    """`_words(text, head)` through bytes, for text that is mostly ASCII with
    at most `_FEW` distinct other characters, none of them `_NOT_HERE`:
    the ASCII is folded by one `bytes.translate` and each other
    character by one `bytes.replace` (UTF-8 is self-synchronising, so no
    replacement touches part of another character). None for other text."""
    data = text.encode("utf-8", "surrogatepass")
    if (len(data) - len(text)) * 4 > len(text):
        return None
    others = set(data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass"))
    if len(others) > _FEW:
        return None
    replacements = [_REPLACE.get(char) or _replacement(char) for char in others]  # cached, mostly
    if _NOT_HERE in replacements:
        return None
    data = head + data.translate(_ASCII_TABLE)
    for replacement in replacements:
        if replacement:
            data = data.replace(*replacement)
    return b" ".join(data.split()).decode("utf-8", "surrogatepass")  # no `_ATTACH`: see `_NOT_HERE`


def _words(text: str, head: bytes = b"") -> str:
    """The folded words of `text`, separated by single spaces, after those of
    `head` (ASCII already folded: `normalize_pair` puts the title there)."""
    if text.isascii():
        return b" ".join((head + text.encode().translate(_ASCII_TABLE)).split()).decode()
    words = _words_few(text, head)
    if words is not None:
        return words
    if _NEEDS_NFKC.search(text):
        text = unicodedata.normalize("NFKC", text)
    elif not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    folded = text.translate(_FOLD)
    if _ATTACH in folded:
        folded = folded.replace(" " + _ATTACH, "").replace(_ATTACH, "")
    folded = head.decode() + folded
    while "  " in folded:  # its only white space is " " (cheaper than split and join)
        folded = folded.replace("  ", " ")
    return folded.strip(" ")


def normalize(text: str) -> str:
    """`text` as lower-case, accent-free words separated by single spaces."""
    words = _words(text)
    if " dot " in words:
        words = _SPELLED_DOT.sub(" ", words)
    return words


# The separator between title and text in `normalize_pair`: a character that
# folding never produces (it turns every control character into a space) and
# that no keyword contains, so no keyword can span it.
SEPARATOR = "\x01"
_SPELLED_DOT_PAIR = re.compile(rf" dot (?<=[^\s\x01] dot )(?=(?:{_TLDS})(?: |$))")


def normalize_pair(title: str, text: str) -> str:
    """What the engine searches: the words of `normalize(title)`, the
    separator and the words of `normalize(text)`, joined and padded with one
    space each (" acme crm \\x01 it is broken "; " \\x01 text " without a
    title). A keyword (words and spaces) is found in it exactly when it is
    found in " title " or in " text "."""
    if title.isascii():  # one pass
        words = _words(text, title.encode().translate(_ASCII_TABLE) + b" \x01 ")
    else:
        words = " ".join(filter(None, (_words(title), SEPARATOR, _words(text))))
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
