"""The rules engine: normalisation, every operator against real text, the
pack/rule plumbing, dead-rule detection, and a property test proving the
automaton path equal to a naive per-rule regex evaluator."""

from __future__ import annotations

import random
import re
import unicodedata
from datetime import timedelta
from functools import lru_cache

import pytest

from earful.core import KINDS, Mention
from earful.core.normalize import normalize
from earful.core.query import Filter, Node, Not, QueryError, Term, parse
from earful.rules.engine import (
    Matcher,
    RuleCompileError,
    RuleProblem,
    keyword,
    matches_query,
    never_matches,
)
from earful.rules.models import Rule, RulePack


def mention(text: str = "", title: str = "", **fields: object) -> Mention:
    fields = {"source": "reddit", "external_id": "1", **fields}
    return Mention(text=text, title=title, **fields)  # type: ignore[arg-type]


def pack(name: str, *queries: str, **rule_fields: object) -> RulePack:
    return RulePack(name=name, rules=tuple(Rule(id=f"r{i}", query=q, **rule_fields) for i, q in enumerate(queries)))  # type: ignore[arg-type]


# --- normalisation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, normal",
    [
        ("Acme CRM", "acme crm"),
        ("  acme \t\n crm  ", "acme crm"),
        ("acme-crm acme_crm acme/crm", "acme crm acme crm acme crm"),
        ("Café CRÈME brûlée", "cafe creme brulee"),
        ("Straße ﬁle Øre Łódź", "strasse file ore lodz"),
        ("Ａｃｍｅ", "acme"),
        ("“Acme’s” support… 😡", "acme s support"),
        ("#acme @acme acme. acme's", "acme acme acme acme s"),
        ("acme[.]com acme(.)com", "acme com acme com"),
        ("acme[dot]com acme(dot)com acme dot com ACME DOT IO", "acme com acme com acme com acme io"),
        ("connect the dot and polka dot dress", "connect the dot and polka dot dress"),
        ("I love 艾克米公司!", "i love 艾 克 米 公 司"),
        ("broken \ud83d surrogate", "broken surrogate"),
        ("", ""),
        ("!!! ...", ""),
    ],
)
def test_normalize(raw: str, normal: str) -> None:
    assert normalize(raw) == normal


def test_unicode_path_agrees_with_ascii_fast_path() -> None:
    rng = random.Random(7)
    alphabet = "abcXYZ019 .,-_'#@()[]!?\t\n"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert normalize(text + "…") == normalize(text + " ")  # "…" forces the non-ASCII path


# --- operators against text -------------------------------------------------------------

CASES = [
    # words, case, accents and word boundaries
    ("acme", "I like Acme", True),
    ("acme", "ACME!", True),
    ("acme", "acme's support", True),
    ("acme", "#acme rocks", True),
    ("acme", "ping @acme", True),
    ("acme", "I use acme.", True),
    ("acme", "(acme)", True),
    ("acme", "@acme_support", True),
    ("acme", "acmeville", False),
    ("acme", "macme", False),
    ("acme", "acme2", False),
    ("acme", "", False),
    ("café", "CAFE", True),
    ("café", "Café", True),
    ("cafe", "café crème", True),
    ("CAFÉ", "cafes", False),
    # phrases and punctuation inside them
    ('"acme crm"', "Acme CRM", True),
    ('"acme crm"', "acme  crm", True),
    ('"acme crm"', "acme-crm", True),
    ('"acme crm"', "acme_crm", True),
    ('"acme crm"', "acme, crm", True),
    ('"acme crm"', "crm acme", False),
    ('"acme crm"', "acme the crm", False),
    ('"acme crm"', "acme crms", False),
    # AND, OR, NOT
    ("acme crm", "crm by acme", True),
    ("acme crm", "acme only", False),
    ("acme AND crm", "crm, acme", True),
    ("acme OR crm", "just crm", True),
    ("acme OR crm", "neither", False),
    ("acme | crm", "acme", True),
    ("acme -crm", "acme", True),
    ("acme -crm", "acme crm", False),
    ("acme NOT crm", "acme crm", False),
    ('acme -"job offer"', "acme job", True),
    ('acme -"job offer"', "acme job offer", False),
    ("acme -(job offer)", "acme job", True),
    ("acme -(job offer)", "acme offer job", False),
    ("-acme", "anything else", True),
    ("-acme", "acme", False),
    # wildcards, both sides, on words and phrases
    ("respon*", "they never responded", True),
    ("respon*", "respon", True),
    ("respon*", "irresponsible", False),
    ("*soft", "Microsoft", True),
    ("*soft", "soft", True),
    ("*soft", "software", False),
    ("*soft*", "microsoftware", True),
    ("*soft*", "sofa", False),
    ('"never respond*"', "they NEVER responded to me", True),
    ('"never respond*"', "never, ever respond", False),
    ('"*soft rocks"', "microsoft rocks", True),
    ('"*soft rocks"', "microsoft rockstar", False),
    ('"*soft rock*"', "microsoft rockstar", True),
    # obfuscated domains
    ("acme.com", "visit acme.com", True),
    ("acme.com", "visit acme[.]com", True),
    ("acme.com", "visit acme(.)com", True),
    ("acme.com", "visit acme[dot]com", True),
    ("acme.com", "visit acme(dot)com", True),
    ("acme.com", "visit acme dot com", True),
    ("acme.com", "visit ACME DOT COM today", True),
    ("acme.com", "visit acme.co", False),
    ("acme.com", "visit notacme.com", False),
    ('"acme dot com"', "acme.com", True),
    # nested groups
    ("acme (broken OR (refund -partial))", "acme refund", True),
    ("acme (broken OR (refund -partial))", "acme partial refund", False),
    ("acme (broken OR (refund -partial))", "acme partial refund, broken", True),
    ("(a OR b) (c OR (d -(e OR f)))", "b d", True),
    ("(a OR b) (c OR (d -(e OR f)))", "b d f", False),
    # precedence: OR binds tighter than AND
    ("acme broken OR refund", "refund please", False),
    ("acme broken OR refund", "acme refund please", True),
    ("-acme OR crm", "acme crm", True),
    ("-acme OR crm", "acme", False),
    # CJK text has no spaces; each character is a word
    ("艾克米", "我喜欢艾克米公司", True),
    ("艾克米", "我喜欢艾克公司", False),
    # a term with no letters or digits matches nothing
    ('"!!!"', "!!! wow !!!", False),
]


@pytest.mark.parametrize("query, text, expected", CASES)
def test_operators(query: str, text: str, expected: bool) -> None:
    assert matches_query(query, mention(text)) is expected


def test_all_cases_in_one_matcher_agree_with_one_rule_matchers() -> None:
    """The same cases through one shared automaton (keywords of other rules present)."""
    queries = sorted({q for q, _, _ in CASES})
    matcher = Matcher.compile([pack("all", *queries)])
    for query, text, expected in CASES:
        hit = {m.rule_id for m in matcher.match(mention(text))}
        assert (f"r{queries.index(query)}" in hit) is expected, (query, text)


@pytest.mark.parametrize(
    "query, title, text, expected",
    [
        ("title:acme", "Acme is down", "", True),
        ("title:acme", "Down again", "acme", False),
        ('title:"acme crm"', "The Acme-CRM review", "", True),
        ("title:respon*", "No response", "", True),
        ("acme", "Acme", "", True),  # unfielded terms see the title too
        ("acme", "", "acme", True),
        ('"acme crm"', "acme", "crm", False),  # a phrase never spans title and text
        ('"*cme crm*"', "acme", "crms", False),
        ('"*cme crm*"', "", "acme crms", True),
        ("acme -title:acme", "", "acme", True),
        ("acme -title:acme", "acme", "acme", False),
        ("title:(down OR outage) acme", "Outage", "acme is down", True),
        ("title:(down OR outage) acme", "Question", "acme is down", False),
    ],
)
def test_title(query: str, title: str, text: str, expected: bool) -> None:
    assert matches_query(query, mention(text, title)) is expected


@pytest.mark.parametrize(
    "query, fields, expected",
    [
        ("author:jane", {"author": "Jane"}, True),
        ("author:@jane", {"author": "jane"}, True),
        ("author:jane", {"author": "@Jane"}, True),
        ("author:jane", {"author": "u/jane"}, True),
        ("author:jane", {"author": "/u/jane"}, True),
        ("author:jane", {"author": "janet"}, False),
        ("author:jane", {}, False),
        ("source:reddit", {"source": "reddit"}, True),
        ("source:g2", {"source": "reddit"}, False),
        ("type:review", {"kind": "review"}, True),
        ("type:review", {"kind": "post"}, False),
        ("type:post|comment", {"kind": "comment"}, True),
        ("type:post|comment", {"kind": "reply"}, False),
        ("-type:post", {"kind": "reply"}, True),
        ("lang:en", {"language": "en"}, True),
        ("lang:en", {"language": "en-US"}, True),
        ("lang:en", {"language": "en_GB"}, True),
        ("lang:en-us", {"language": "EN-us"}, True),
        ("lang:en-us", {"language": "en"}, False),
        ("lang:en", {"language": "eng"}, False),
        ("lang:en", {"language": None}, False),
        ("-lang:en", {"language": None}, True),
        ("site:example.com", {"site": "example.com"}, True),
        ("site:example.com", {"site": "blog.example.com"}, True),
        ("site:example.com", {"site": "badexample.com"}, False),
        ("site:example.com", {"url": "https://www.example.com/a"}, True),
        ("site:example.com", {"url": "https://forum.example.com:8443/a"}, True),
        ("site:example.com", {"url": "https://example.org/example.com"}, False),
        ("site:r/crm", {"site": "r/CRM"}, True),
        ("site:crm", {"site": "r/crm"}, True),
        ("site:r/crm", {"site": "r/crmhelp"}, False),
        ("site:reddit.com", {"site": "r/crm", "url": "https://old.reddit.com/r/crm/1"}, True),
        ("site:example.com", {}, False),
        ("rating:<=2", {"rating": 2.0}, True),
        ("rating:<=2", {"rating": 2.5}, False),
        ("rating:<3", {"rating": 2.5}, True),
        ("rating:<3", {"rating": 3.0}, False),
        ("rating:>=4", {"rating": 4.0}, True),
        ("rating:>=4", {"rating": 3.9}, False),
        ("rating:>3", {"rating": 3.5}, True),
        ("rating:5", {"rating": 5.0}, True),
        ("rating:5", {"rating": 4.5}, False),
        ("rating:<=2", {"rating": None}, False),
        ("rating:>=1", {"rating": None}, False),
        ("-rating:<=2", {"rating": None}, True),
        ("rating:<=2 source:g2", {"rating": 1.0, "source": "g2"}, True),
        ("rating:<=2 source:g2", {"rating": 1.0, "source": "capterra"}, False),
        ("rating:<=2 OR acme", {"rating": 4.0}, False),
    ],
)
def test_filters(query: str, fields: dict[str, object], expected: bool) -> None:
    assert matches_query(query, mention("some text", **fields)) is expected


def test_matches_query_raises_for_a_bad_query() -> None:
    with pytest.raises(QueryError):
        matches_query('acme "broken', mention("acme"))


# --- compiling packs ----------------------------------------------------------------------


def test_match_carries_the_rules_routing() -> None:
    rules = RulePack(
        name="acme",
        rules=(
            Rule(
                id="complaint",
                query='acme (broken OR refund OR "never respond*") -"job offer"',
                labels=("complaint",),
                severity="high",
                reply_within="2h",
                notify=("support",),
                escalate=("oncall",),
            ),
        ),
    )
    m = mention("Acme never responded to my refund", source="g2", external_id="9")
    [found] = Matcher.compile([rules]).match(m)
    assert found.mention_key == "g2:9"
    assert (found.pack, found.rule_id, found.labels, found.severity) == ("acme", "complaint", ("complaint",), "high")
    assert found.destinations == ("support",)
    assert found.reply_within == timedelta(hours=2)
    assert found.escalate == ("oncall",)
    assert Matcher.compile([rules]).match(mention("Acme job offer: never respond to spam, refund")) == []


def test_order_is_pack_then_rule_and_packs_restrict() -> None:
    matcher = Matcher.compile([pack("b", "acme", "-nothing", "rating:<=2"), pack("a", "crm OR acme", "acme")])
    m = mention("acme crm", rating=1.0)
    assert [(x.pack, x.rule_id) for x in matcher.match(m)] == [("b", "r0"), ("b", "r1"), ("b", "r2"), ("a", "r0"), ("a", "r1")]
    assert [(x.pack, x.rule_id) for x in matcher.match(m, packs=["a"])] == [("a", "r0"), ("a", "r1")]
    assert [(x.pack, x.rule_id) for x in matcher.match(m, packs={"b"})] == [("b", "r0"), ("b", "r1"), ("b", "r2")]
    assert matcher.match(m, packs=[]) == []
    assert matcher.match(m, packs=["unknown"]) == []


def test_disabled_rules_never_match() -> None:
    rules = RulePack(name="p", rules=(Rule(id="on", query="acme"), Rule(id="off", query="acme", enabled=False)))
    assert [x.rule_id for x in Matcher.compile([rules]).match(mention("acme"))] == ["on"]
    only_off = RulePack(name="p", rules=(Rule(id="off", query="-acme rating:5", enabled=False),))
    assert Matcher.compile([only_off]).match(mention("x", rating=5.0)) == []


def test_rules_that_need_no_keyword_are_always_checked() -> None:
    matcher = Matcher.compile([pack("p", "rating:<=2 source:g2", "-acme", "acme OR type:review", "acme")])
    assert [x.rule_id for x in matcher.match(mention("", source="g2", rating=1.0))] == ["r0", "r1"]
    assert [x.rule_id for x in matcher.match(mention("great", kind="review"))] == ["r1", "r2"]
    assert [x.rule_id for x in matcher.match(mention("acme", kind="review"))] == ["r2", "r3"]


def test_no_rules_match_nothing() -> None:
    assert Matcher.compile([]).match(mention("acme")) == []


def test_only_filter_rules_build_no_automaton() -> None:
    matcher = Matcher.compile([pack("p", "type:review rating:>=4")])
    assert [x.rule_id for x in matcher.match(mention("whatever", kind="review", rating=4.5))] == ["r0"]


def test_compile_reports_every_problem_of_every_pack() -> None:
    good = pack("good", "acme")
    bad = RulePack(
        name="bad",
        rules=(
            Rule(id="ok", query="acme"),
            Rule(id="quote", query='acme "broken'),
            Rule(id="field", query="titel:acme"),
            Rule(id="ok", query="crm"),
            Rule(id="off", query="rating:9", enabled=False),
        ),
    )
    worse = pack("worse", "(acme")
    with pytest.raises(RuleCompileError) as caught:
        Matcher.compile([good, bad, worse])
    problems = caught.value.problems
    assert [(p.pack, p.index, p.rule_id) for p in problems] == [
        ("bad", 1, "quote"),
        ("bad", 2, "field"),
        ("bad", 3, "ok"),
        ("bad", 4, "off"),
        ("worse", 0, "r0"),
    ]
    assert problems[0].message == "query: unclosed quote at column 6"
    assert "did you mean 'title:'" in problems[1].message
    assert problems[2].message == "duplicate rule id (first used by rule 1)"
    assert "rating needs a number 1-5" in problems[3].message
    assert "unbalanced parenthesis" in problems[4].message
    assert str(problems[0]) == "bad: rule 2 (quote): query: unclosed quote at column 6"
    assert "worse: rule 1 (r0)" in str(caught.value)


# --- rules that can never match ---------------------------------------------------------


@pytest.mark.parametrize(
    "query, reason",
    [
        ("acme -acme", "acme is both required and excluded"),
        ("source:x -source:x", "source:x is both required and excluded"),
        ("rating:<=2 rating:>=4", "no rating from 1 to 5 fits rating:<=2 and rating:>=4"),
        ("rating:<1", "no rating from 1 to 5 fits rating:<1"),
        ("rating:>=3 -rating:>2", "no rating from 1 to 5 fits rating:>=3 and -rating:>2"),
        ("type:review type:post", "a mention has one type, so type:review and type:post cannot both hold"),
        ("source:g2 source:reddit acme", "a mention has one source"),
        ("author:a author:b", "a mention has one author"),
        ("lang:en lang:de", "a mention has one language"),
        ("lang:en-us -lang:en", "lang:en-us is a form of lang:en, which is excluded"),
        ("site:blog.acme.com -site:acme.com", "site:blog.acme.com is part of site:acme.com, which is excluded"),
        ("-type:post -type:comment -type:reply -type:review -type:message", "every type is excluded"),
        ('"!!!"', '"!!!" has no letters or digits, so it never matches'),
        ('acme "!!!"', '"!!!" has no letters or digits'),
        ('(acme OR crm) "?"', '"?" has no letters or digits'),
        ("acme -acm*", "every text with acme also has acm*, which is excluded"),
        ('"acme crm" -acme', 'every text with "acme crm" also has acme, which is excluded'),
        ("title:acme -acme", "every text with title:acme also has acme, which is excluded"),
        ("(acme OR crm) -acme -crm", "is both required and excluded"),
        ("(type:post type:reply) OR (type:review type:reply)", "a mention has one type"),
        ("(a OR b) (c OR d) -a -b", "is both required and excluded"),
    ],
)
def test_never_matches(query: str, reason: str) -> None:
    found = never_matches(parse(query))
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "query",
    [
        "acme",
        "-acme",
        "acme OR -acme",
        'acme OR "!!!"',
        "-\"!!!\"",
        "acme -title:acme",
        "respon* -respond",
        "acm* -acme",
        "rating:<=2 rating:>=1.5",
        "rating:>2 -rating:>=3",
        "lang:en -lang:en-us",
        "lang:en lang:en-gb",
        "site:acme.com -site:blog.acme.com",
        "site:acme.com site:reddit.com",
        "type:post|comment -type:post",
        "author:a -author:b",
        "(type:post rating:5) OR (type:review -type:review)",
        # too many atoms to search: only the top level is checked
        " ".join(f"w{i}" for i in range(20)) + " (x OR -x)",
    ],
)
def test_can_match(query: str) -> None:
    assert never_matches(parse(query)) is None


def test_large_queries_still_get_top_level_contradictions() -> None:
    query = " ".join(f"w{i}" for i in range(20)) + " -w3"
    assert never_matches(parse(query)) == "w3 is both required and excluded"


def test_dead_rules_lists_all_dead_rules() -> None:
    matcher = Matcher.compile(
        [pack("p", "acme", "acme -acme"), RulePack(name="q", rules=(Rule(id="z", query="type:post type:review", enabled=False),))]
    )
    assert matcher.dead_rules() == [
        RuleProblem("p", 1, "r1", "acme is both required and excluded"),
        RuleProblem("q", 0, "z", "a mention has one type, so type:post and type:review cannot both hold"),
    ]


# --- property: the automaton path equals a per-rule regex evaluator --------------------------


@lru_cache(maxsize=None)
def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=None)
def _term_regex(raw: str, prefix: bool, suffix: bool) -> re.Pattern[str] | None:
    words = re.findall(r"[^\W_]+", _fold(raw.strip('"').strip("*")))
    if not words:
        return None
    left = "" if prefix else r"(?<![^\W_])"
    right = "" if suffix else r"(?![^\W_])"
    return re.compile(left + r"[\W_]+".join(map(re.escape, words)) + right)


def _reference(node: Node, m: Mention) -> bool:
    """What a query means, written the slow and obvious way."""
    if isinstance(node, Term):
        pattern = _term_regex(node.raw, node.prefix_wildcard, node.suffix_wildcard)
        if node.field == "title":
            places = [m.title]
        elif m.kind in ("comment", "reply"):  # a comment's title is its thread's: only `title:` looks at it
            places = [m.text]
        else:
            places = [m.title, m.text]
        return pattern is not None and any(pattern.search(_fold(p)) for p in places)
    if isinstance(node, Filter):
        value = node.value
        if node.field == "rating":
            ops = {"=": float.__eq__, "<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}
            return m.rating is not None and ops[node.op](float(m.rating), float(value))
        if node.field == "source":
            return m.source.lower() == value
        if node.field == "type":
            return m.kind == value
        if node.field == "author":
            return re.sub(r"^@*(/?u/)?", "", m.author.lower()) == value
        if node.field == "lang":
            return m.language is not None and re.match(rf"{re.escape(str(value))}(-|$)", m.language.lower().replace("_", "-")) is not None
        hosts = [re.sub(r"^(/?r/|www\.)", "", m.site.lower())]
        hosts += re.findall(r"^https?://(?:www\.)?([^/:]+)", m.url.lower())
        return any(h == value or h.endswith("." + str(value)) for h in hosts if h)
    if isinstance(node, Not):
        return not _reference(node.child, m)
    results = [_reference(child, m) for child in node.children]
    return all(results) if type(node).__name__ == "And" else any(results)


VOCAB = ["acme", "acmeville", "macme", "crm", "refund", "refunds", "broken", "never", "respond", "responded",
         "café", "cafe", "soft", "microsoft", "job", "offer", "ok", "a"]
JOINERS = [" ", " ", " ", "  ", "-", "_", ", ", ". ", "'s ", " #", " @", "/", "\n", "…"]


def _random_text(rng: random.Random, words: int) -> str:
    out = []
    for _ in range(words):
        word = rng.choice(VOCAB)
        word = rng.choice([word, word.upper(), word.capitalize()])
        out.append(word + rng.choice(JOINERS))
    return "".join(out)


def _random_atom(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.55:
        word = rng.choice(VOCAB)
        if rng.random() < 0.5:
            word = rng.choice(VOCAB) + rng.choice([" ", "-", " "]) + word
            word = f'"{word}"'
        if rng.random() < 0.25:
            word = word[:-1] + '*"' if word.endswith('"') else word + "*"
        elif rng.random() < 0.15:
            word = '"*' + word[1:] if word.startswith('"') else "*" + word
        return ("title:" if rng.random() < 0.15 else "") + word
    return rng.choice(
        ["type:post", "type:review", "type:post|comment", "source:reddit", "source:g2", "rating:<=2",
         "rating:>=4", "rating:3", "rating:>2.5", "lang:en", "lang:de", "site:acme.com", "site:r/crm",
         "author:jane", '"!!!"']
    )


def _random_query(rng: random.Random, depth: int = 0) -> str:
    if depth >= 3 or rng.random() < 0.35:
        atom = _random_atom(rng)
        return rng.choice(["-", "NOT ", ""]) + atom if rng.random() < 0.2 else atom
    parts = [_random_query(rng, depth + 1) for _ in range(rng.randint(2, 3))]
    joined = rng.choice([" ", " AND ", " OR ", " | "]).join(f"({p})" for p in parts)
    return ("-" if rng.random() < 0.15 else "") + f"({joined})"


def _random_mention(rng: random.Random, i: int) -> Mention:
    return Mention(
        source=rng.choice(["reddit", "g2", "Reddit"]),
        external_id=str(i),
        title=_random_text(rng, rng.randint(0, 3)),
        text=_random_text(rng, rng.randint(0, 12)),
        kind=rng.choice(KINDS),  # type: ignore[arg-type]
        rating=rng.choice([None, 1.0, 2.0, 2.5, 3.0, 4.0, 5.0]),
        language=rng.choice([None, "en", "en-US", "de", "EN_gb", "eng"]),
        site=rng.choice(["", "r/crm", "r/CRMhelp", "acme.com", "blog.acme.com"]),
        url=rng.choice(["", "https://www.acme.com/x", "https://notacme.com/", "https://old.reddit.com/r/crm/1"]),
        author=rng.choice(["", "Jane", "@jane", "u/jane", "janet"]),
    )


def test_engine_equals_reference_evaluator() -> None:
    rng = random.Random(20240601)
    queries = [_random_query(rng) for _ in range(400)]
    packs = [
        RulePack(
            name=f"pack{p}",
            rules=tuple(
                Rule(id=f"q{i}", query=q, enabled=rng.random() > 0.1)
                for i, q in enumerate(queries)
                if i % 3 == p
            ),
        )
        for p in range(3)
    ]
    matcher = Matcher.compile(packs)
    trees = {(p.name, r.id): parse(r.query) for p in packs for r in p.rules}
    mentions = [_random_mention(rng, i) for i in range(300)]
    positives = 0
    for m in mentions:
        expected = [(p.name, r.id) for p in packs for r in p.rules if r.enabled and _reference(trees[p.name, r.id], m)]
        assert [(x.pack, x.rule_id) for x in matcher.match(m)] == expected, m
        only = {"pack0", "pack2"}
        assert [(x.pack, x.rule_id) for x in matcher.match(m, packs=only)] == [e for e in expected if e[0] in only]
        positives += len(expected)
    assert positives > 2000  # the generated rules really do match, not only miss

    for key, tree in trees.items():  # a rule called dead never matches a generated mention
        if never_matches(tree) is not None:
            assert not any(_reference(tree, m) for m in mentions), key


def test_keywords_carry_their_word_boundaries() -> None:
    assert keyword(Term("acme")) == " acme "
    assert keyword(Term("respon", suffix_wildcard=True)) == " respon"
    assert keyword(Term("soft", prefix_wildcard=True)) == "soft "
    assert keyword(Term("soft", prefix_wildcard=True, suffix_wildcard=True)) == "soft"
    assert keyword(Term("never respond", suffix_wildcard=True)) == " never respond"


def test_negated_filter_literal_shape() -> None:
    assert parse("-rating:5") == Not(Filter("rating", "=", 5.0))


def test_a_comment_matches_on_what_it_says_not_on_its_thread_title() -> None:
    """'Good question, following.' under 'How do I export from Acme?' is not a question about Acme."""
    matcher = Matcher.compile([pack("p", 'acme ("how do i" OR refund)', "title:acme following")])
    thread = "How do I export from Acme?"
    comment = mention("Good question, following.", title=thread, kind="comment")
    assert [m.rule_id for m in matcher.match(comment)] == ["r1"]
    post = mention("", title=thread, kind="post")
    assert [m.rule_id for m in matcher.match(post)] == ["r0"]
    answering = mention("acme refunds take a week; how do i know? ask support", title=thread, kind="comment")
    assert [m.rule_id for m in matcher.match(answering)] == ["r0"]
