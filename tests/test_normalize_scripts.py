"""Normalisation in every script: which marks are optional (folded away) and
which make another word (kept), real words matched through the rules
engine, and the fast paths of `normalize` against its plain definition."""

from __future__ import annotations

import random
import unicodedata

import pytest

from earful.core import Mention
from earful.core import normalize as normalize_module
from earful.core.normalize import normalize, normalize_pair
from earful.rules.engine import Matcher
from earful.rules.models import Rule, RulePack

# (a, b, why): a and b must read the same.
SAME = [
    # Latin and Greek: every accent is optional
    ("café", "cafe", "French accent"),
    ("Œuvre", "oeuvre", "French ligature"),
    ("garçon", "garcon", "cedilla"),
    ("über", "uber", "German umlaut"),
    ("Straße", "STRASSE", "German sharp s"),
    ("señor", "senor", "Spanish tilde"),
    ("Việt Nam", "viet nam", "Vietnamese stacked marks"),
    ("İstanbul", "istanbul", "Turkish dotted capital I"),
    ("Łódź", "lodz", "Polish stroke"),
    ("cafe\u0301", "café", "decomposed accent"),
    ("Ａｃｍｅ", "acme", "full-width Latin"),
    ("ﬁle", "file", "ligature"),
    ("καφές", "ΚΑΦΕΣ", "Greek accent and final sigma"),
    # Cyrillic: ё and stress marks are optional
    ("ёлка", "елка", "Russian yo is written ye"),
    ("ВСЁ", "все", "Russian yo, upper case"),
    ("за́мок", "замок", "Russian stress mark"),
    ("ѝ", "и", "Bulgarian accented i"),
    ("и\u0306од", "йод", "decomposed short i composes"),
    # Arabic, Hebrew: vowel points and tatweel are optional
    ("مُحَمَّد", "محمد", "Arabic harakat"),
    ("مـــرحبا", "مرحبا", "Arabic tatweel"),
    ("ا\u0654كمي", "أكمي", "decomposed hamza composes"),
    ("שָׁלוֹם", "שלום", "Hebrew niqqud"),
    ("\ufb2aבת", "שבת", "Hebrew presentation form"),
    ("בְּרֵאשִׁית", "בראשית", "Hebrew points"),
    # kana: compatibility and decomposed forms compose
    ("ｶﾞｽ", "ガス", "half-width katakana with voicing mark"),
    ("ﾊﾟﾝ", "パン", "half-width katakana with semi-voicing mark"),
    ("カ\u3099ス", "ガス", "decomposed voicing mark (macOS)"),
    ("ｱｸﾐｰ", "アクミー", "half-width katakana and long vowel mark"),
    # Hangul: syllables stay whole, decomposed jamo compose
    ("\u1112\u1161\u11ab\u1100\u116e\u11a8", "한국", "decomposed Hangul (macOS)"),
    # Han: compatibility ideographs are the unified ones
    ("\uf900", "\u8c48", "CJK compatibility ideograph"),
    ("艾克米，公司！", "艾克米,公司!", "full-width punctuation"),
    # Thai: a precomposed vowel equals its parts
    ("น้ำ", "น\u0e49\u0e4d\u0e32", "sara am"),
    # Devanagari: a precomposed nukta letter equals its parts
    ("\u0958", "\u0915\u093c", "qa with nukta"),
    # invisible characters inside a word
    ("Ac\u00adme", "acme", "soft hyphen"),
    ("ac\u200dme", "acme", "zero-width joiner"),
    ("\u200facme\u200e", "acme", "direction marks"),
]

# (a, b, why): a and b must read differently.
DIFFERENT = [
    # kana voicing marks make other words
    ("バグ", "ハグ", "bug / hug"),
    ("バグ", "バク", "bug / tapir"),
    ("ガス", "カス", "gas / dregs"),
    ("パン", "バン", "bread / van"),
    ("パン", "ハン", "handakuten"),
    ("ぶた", "ふた", "pig / lid"),
    ("ｶﾞｽ", "カス", "half-width keeps its voicing"),
    ("あ", "ア", "hiragana and katakana are not merged"),
    # Hangul syllables are not split into jamo
    ("삼성", "삼선", "different final consonant"),
    ("한", "하", "a syllable is not its prefix"),
    # Cyrillic letters with marks that are letters
    ("мой", "мои", "my / my (plural): short i"),
    ("йод", "иод", "short i"),
    ("її", "іі", "Ukrainian yi"),
    ("ўсё", "усё", "Belarusian short u"),
    ("ѓ", "г", "Macedonian gje"),
    # Arabic and Hebrew letters stay
    ("سأل", "سال", "asked / flowed: hamza is a letter"),
    ("مسئول", "مسول", "hamza on yeh"),
    ("كتاب", "كتب", "book / books"),
    ("בית", "בת", "house / daughter"),
    ("שׁ", "ס", "shin / samekh"),
    # Thai vowel signs and tone marks are letters
    ("ใกล้", "ใกล", "near / far"),
    ("ไม่", "ไม", "not / (nothing)"),
    ("ข้าว", "ขาว", "rice / white"),
    ("ข้าว", "ข่าว", "rice / news"),
    # Devanagari vowel signs, anusvara and nukta are letters
    ("हिंदी", "हद", "Hindi / limit"),
    ("काल", "कल", "time / tomorrow"),
    ("\u0958", "\u0915", "nukta"),
    # Han: simplified and traditional are not merged
    ("爱", "愛", "simplified / traditional"),
]


@pytest.mark.parametrize("a, b, why", SAME, ids=[w for _, _, w in SAME])
def test_same(a: str, b: str, why: str) -> None:
    assert normalize(a) == normalize(b) != ""


@pytest.mark.parametrize("a, b, why", DIFFERENT, ids=[w for _, _, w in DIFFERENT])
def test_different(a: str, b: str, why: str) -> None:
    assert normalize(a) != normalize(b)
    assert normalize(a) and normalize(b)


@pytest.mark.parametrize(
    "raw, normal",
    [
        ("我喜欢艾克米公司", "我 喜 欢 艾 克 米 公 司"),  # unspaced scripts: one word per letter
        ("最近Acme CRMで問題", "最 近 acme crm で 問 題"),
        ("バグ", "バ グ"),
        ("삼성이", "삼 성 이"),
        ("ฉันชอบกาแฟ", "ฉั น ช อ บ ก า แ ฟ"),  # a combining sign stays with its letter
        ("ใกล้", "ใ ก ล้"),
        ("हिंदी समाचार", "हिंदी समाचार"),  # Devanagari is written with spaces
        ("Привет, МИР!", "привет мир"),
        ("شركة أكمي؟", "شركة أكمي"),
        ("אקמי, שלום!", "אקמי שלום"),
    ],
)
def test_normal_form(raw: str, normal: str) -> None:
    assert normalize(raw) == normal


# --- through the engine ---------------------------------------------------------------

ENGINE_CASES = [
    # Japanese: kana and kanji are found inside a run of text, voicing counts
    ("バグ", "アプリにバグがあります", True),
    ("バグ", "ハグしたい", False),
    ("ハグ", "バグが多すぎる", False),
    ("ガス", "ｶﾞｽ代が高い", True),
    ("ガス", "カスタマーサポートが最悪", False),
    ("エクスポート", "三日前にエクスポートが壊れている", True),
    ('"返信 ない"', "誰も返信ない", True),  # spaces between Han or kana words do not matter
    ('"返信 ない"', "返信がない", False),
    ("返信*", "誰も返信してくれません", True),
    ("acme", "最近Acme CRMで問題が発生", True),
    # Chinese: a keyword is a run of characters anywhere in the text
    ("艾克米", "我喜欢艾克米公司的产品", True),
    ("艾克米", "艾克公司", False),
    ("公司", "艾克米公司", True),
    ("退款", "申请退款，没人回复！", True),
    ("acme", "我在用Acme的产品", True),
    # Thai: no spaces between words either
    ("กาแฟ", "ฉันชอบกาแฟมาก", True),
    ("ใกล้", "บ้านอยู่ใกลมาก", False),
    ("ใกล", "บ้านอยู่ใกล้มาก", False),
    ("ข่าว", "ซื้อข้าวที่ตลาด", False),
    ("acme", "ซื้อacmeวันนี้", True),
    # Korean: a name is found with its particle attached
    ("삼성", "삼성이 또 고장났어요", True),
    ("삼성", "삼선 짜장 주세요", False),
    ("고객센터", "에이크미 고객센터에 전화했는데", True),
    ("한국", unicodedata.normalize("NFD", "한국 지사"), True),
    # Russian
    ("мой", "это мои деньги", False),
    ("ёлка", "Елка стоит", True),
    ("елка", "новогодняя ёлка", True),
    ("замок", "за́мок сломан", True),
    ("поддержка", "Ужасная поддержка!", True),
    ("йод", "иод", False),
    # Arabic
    ("محمد", "مُحَمَّد يسأل", True),
    ("سأل", "سال الماء", False),
    ("مرحبا", "مـــرحبا بكم", True),
    ("أكمي", "شركة أكمي سيئة", True),
    # Hebrew: prefixes are written onto the word, a wildcard finds them
    ("שלום", "שָׁלוֹם לכולם", True),
    ("בית", "הבת שלי", False),
    ("אקמי", "פניתי לאקמי", False),
    ("*אקמי", "פניתי לאקמי", True),
    # German
    ("strasse", "Hauptstraße 5", False),  # a compound is one word
    ("*strasse", "Hauptstraße 5", True),
    ("müller", "Herr Muller", True),
    ("kündigung", "KÜNDIGUNG sofort!", True),
    ("acme", "Acme-Kundenservice", True),
    # French
    ("café", "un cafe noir", True),
    ("oeuvre", "un chef-d'œuvre", True),
    ("acme", "l'acme", True),
    ("remboursement", "Remboursement ?!", True),
]


@pytest.fixture(scope="module")
def matcher_and_queries() -> tuple[Matcher, list[str]]:
    queries = sorted({q for q, _, _ in ENGINE_CASES})
    pack = RulePack(name="scripts", rules=tuple(Rule(id=f"r{i}", query=q) for i, q in enumerate(queries)))  # type: ignore[arg-type]
    return Matcher.compile([pack]), queries


@pytest.mark.parametrize("query, text, expected", ENGINE_CASES)
def test_engine(matcher_and_queries: tuple[Matcher, list[str]], query: str, text: str, expected: bool) -> None:
    matcher, queries = matcher_and_queries
    for title, body in ((text, ""), ("", text)):  # the title and the text are searched alike
        mention = Mention(source="x", external_id="1", title=title, text=body)
        hit = {m.rule_id for m in matcher.match(mention)}
        assert (f"r{queries.index(query)}" in hit) is expected


def test_pair_is_title_separator_text() -> None:
    for title, text in [("バグ報告", "Acme のバグ"), ("", "ёлка"), ("Café", ""), ("", ""), ("", "\u0e33"), ("acme", "\u3099x")]:
        expected = " ".join(filter(None, [normalize(title), "\x01", normalize(text)]))
        assert normalize_pair(title, text) == f" {expected} "


# --- the fast paths equal the definition ------------------------------------------------


def reference(text: str) -> str:
    """What `normalize` means without its shortcuts: NFKC of the whole text,
    each character folded, spaces collapsed (no spelled-out dots here)."""
    folded = unicodedata.normalize("NFKC", text).translate(normalize_module._FOLD)
    folded = folded.replace(" " + normalize_module._ATTACH, "").replace(normalize_module._ATTACH, "")
    return " ".join(folded.split())


TRICKY = (
    "aZ09 .,-_'#@é\u0301\u0306\u0308ёйиЁ\u0483ß\u0130ıøæ\u00ad\u200d\u200b"
    "カガｶﾞﾟ\u3099\u309aあ艾克\uf900ㄱㅏ\u1112\u1161\u11ab한"
    "ใก\u0e49\u0e33\u0e4d\u0e32หิ\u0915\u093c\u0958"
    "ا\u0654\u064e\u0640أש\u05b8\ufb2a…😡\ud83d\uff21\uff0c"
)


def test_fast_paths_equal_the_definition() -> None:
    rng = random.Random(15)
    ascii_words = "acme crm support refund broken the of and".split()
    for _ in range(3000):
        if rng.random() < 0.5:  # mostly ASCII, a few others: the bytes path
            parts = [rng.choice(ascii_words) if rng.random() < 0.8 else rng.choice(TRICKY) for _ in range(rng.randint(0, 12))]
            text = rng.choice(["", " ", "-"]).join(parts)
        else:  # anything: the str.translate path
            text = "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 40)))
        assert normalize_module._words(text) == reference(text), ascii(text)
        title, body = text[: len(text) // 2], text[len(text) // 2 :]
        expected = " ".join(filter(None, [normalize(title), "\x01", normalize(body)]))
        assert normalize_pair(title, body) == f" {expected} ", ascii(text)


def _bmp() -> list[str]:
    return [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"]


def test_compatibility_characters_fold_alike_alone_and_in_context() -> None:
    """Every BMP character with a compatibility form, between neighbours it
    could compose with, folds as NFKC of the whole text would: so
    `_NEEDS_NFKC` lists every character whose text needs that."""
    neighbours = ["", "a", "カ", "ا", "\u1112", "\u1100\u1161", "ㅎ", "ｶ"]
    marks = ["", "\u3099", "\u309a", "\u0654", "\u0653", "\u0301", "\u0306", "\u1161", "\u11ab", "ﾞ"]
    for char in _bmp():
        if not unicodedata.decomposition(char).startswith("<"):
            continue
        for before in neighbours:
            for after in marks:
                text = before + char + after
                assert normalize_module._words(text) == reference(text), ascii(text)


def test_normalize_is_idempotent_for_every_character() -> None:
    for char in _bmp():
        once = normalize(char)
        assert normalize(once) == once, ascii(char)
