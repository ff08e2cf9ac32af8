"""A monitor's query pushed down to X, Reddit and the all-words searches (Algolia, Mastodon, Bluesky)."""

from __future__ import annotations

import pytest

from earful.connectors.pushdown import MAX_BRANCHES, all_words_queries, compile_query
from earful.core import Mention
from earful.core.query import QueryError
from earful.rules.engine import matches_query
from earful.sandbox import search_syntax


@pytest.mark.parametrize(
    "query, x, reddit",
    [
        ("acme", "acme", "acme"),
        ('"Acme   CRM"', '"Acme CRM"', '"Acme CRM"'),  # as written, spaces collapsed
        ('"acme"', '"acme"', '"acme"'),
        # wildcards: neither source has ours, so the term is dropped (AND) or the group is (OR)
        ("acme respon*", "acme", "acme"),
        ('acme (broken OR "never respond*")', "acme", "acme"),
        # negation: X keeps a simple one, Reddit drops every one
        ("acme -spam", "acme -spam", "acme"),
        ('acme -"job offer"', 'acme -"job offer"', "acme"),
        ("acme NOT NOT crm", "acme crm", "acme AND crm"),
        ("acme -(spam scam)", "acme", "acme"),  # a compound exclusion: dropped
        # OR groups: always parenthesised, duplicates folded
        ("acme OR globex", "(acme OR globex)", "(acme OR globex)"),
        ("acme OR acme", "acme", "acme"),
        ("acme broken OR refund", "acme (broken OR refund)", "acme AND (broken OR refund)"),
        ("(acme crm) OR globex", "((acme crm) OR globex)", "((acme AND crm) OR globex)"),
        ("(acme OR globex) (crm OR (erp -spam))", "(acme OR globex) (crm OR (erp -spam))",
         "(acme OR globex) AND (crm OR erp)"),
        # fields
        ("title:acme crm", "acme crm", "title:acme AND crm"),
        ("title:(acme OR globex)", "(acme OR globex)", "(title:acme OR title:globex)"),
        ("-title:spam acme", "-spam acme", "acme"),
        ("acme author:@JDoe", "acme from:jdoe", "acme AND author:jdoe"),
        ('acme author:"Jane Doe"', "acme", "acme"),  # not a handle: dropped
        ("acme lang:pt_BR", "acme lang:pt", "acme"),
        ("acme site:r/CRM", "acme", "acme AND subreddit:crm"),
        ("acme site:crm.example.com", "acme", "acme"),
        ("acme source:reddit type:post|comment rating:<=2", "acme", "acme"),
        # words that would read as operators are quoted
        ("acme[dot]com OR acme.com", '("acme[dot]com" OR acme.com)', "(acme[dot]com OR acme.com)"),
    ],
)
def test_dialects(query: str, x: str, reddit: str) -> None:
    assert compile_query(query, "x") == x
    assert compile_query(query, "reddit") == reddit


@pytest.mark.parametrize(
    "query, sent",
    [
        ('acme OR "Acme CRM"', ["acme"]),
        ('"acme crm" OR "acme api"', ["acme"]),
        ("acme.com OR acme", ["acme"]),
        ("acme OR globex", ["acme", "globex"]),
        ("(acme OR globex) (crm OR erp)", ["acme crm", "acme erp", "globex crm", "globex erp"]),
        ('acme -spam title:"acme crm" author:jdoe', ['acme "acme crm"']),
        ("title:(acme OR globex) crm", ["crm"]),
        ("acme respon*", ["acme"]),
    ],
)
def test_all_words(query: str, sent: list[str]) -> None:
    assert all_words_queries(query) == sent


def test_too_many_combinations_are_refused() -> None:
    groups = " ".join(f"(a{n} OR b{n})" for n in range(MAX_BRANCHES.bit_length()))
    with pytest.raises(ValueError, match="too many OR combinations"):
        all_words_queries(groups)


@pytest.mark.parametrize(
    "query, x, reddit, words",
    [
        ("acme OR", "acme", "acme", ["acme"]),  # a dangling operator counts for nothing
        ("acme NOT", "acme", "acme", ["acme"]),
        ("acme (crm", "acme crm", "acme AND crm", ["acme crm"]),  # closed by the end
        ("acme ) crm", "acme crm", "acme AND crm", ["acme crm"]),
        ("acme ()", "acme", "acme", ["acme"]),
        ('"acme crm', '"acme crm"', '"acme crm"', ['"acme crm"']),
        ("acme foo:bar", "acme", "acme", ["acme"]),  # unknown field: it and its value left out
        ("acme type:bogus rating:9", "acme", "acme", ["acme"]),
        ("acme a*b *", "acme", "acme", ["acme"]),
        ("acme AND OR", 'acme "OR"', 'acme AND "OR"', ["acme"]),  # an operator where a word should be
    ],
)
def test_syntax_errors_degrade_to_a_broader_search(query: str, x: str, reddit: str, words: list[str]) -> None:
    assert compile_query(query, "x") == x
    assert compile_query(query, "reddit") == reddit
    assert all_words_queries(query) == words


@pytest.mark.parametrize(
    "query",
    ["", "   ", "acme OR -spam", "NOT acme", "acm*", "source:reddit", "type:post|comment", "foo:bar", "(((",
     "(" * 60 + "acme" + ")" * 60],
)
def test_nothing_to_search_for_is_refused(query: str) -> None:
    for push in (lambda q: compile_query(q, "x"), lambda q: compile_query(q, "reddit"), all_words_queries):
        with pytest.raises(ValueError) as refused:
            push(query)
        assert not isinstance(refused.value, QueryError)  # refused, not a parser error leaking out


TEXTS = [
    "Acme CRM is broken again", "acme never responds to my refund request", "Globex ERP outage", "acme job offer",
    "spam from acme", "the acme api", "acme-crm export", "nothing to see", "ACME refund please", "acme.com is down",
]
QUERIES = [
    'acme OR "acme crm"', "acme broken OR refund", 'acme (broken OR refund OR "never respond*") -"job offer"',
    "(acme OR globex) (crm OR erp) -spam", "acme -(spam OR job)", "acme.com OR globex", 'title:"acme crm" OR globex',
]


@pytest.mark.parametrize("query", QUERIES)
def test_pushed_query_is_a_superset_on_the_fake_x(query: str) -> None:
    """Whatever the rule matches, the fake X's search (X's precedence) finds too."""
    pushed = search_syntax.parse(compile_query(query, "x"), {"from", "lang"})
    for text in TEXTS:
        if matches_query(query, Mention(source="x", external_id="1", text=text)):
            assert search_syntax.matches(pushed, search_syntax.Document(text)), (query, text)


def test_fake_search_reads_the_services_precedence_and_operators() -> None:
    tree = search_syntax.parse('acme crm OR globex -is:retweet conversation_id:7', {"is", "conversation_id"})
    doc = search_syntax.Document("Globex rocks", {"is": lambda v: False, "conversation_id": lambda v: v == "7"})
    assert search_syntax.matches(tree, doc)  # (acme crm) OR (globex -is:retweet conversation_id:7)
    assert not search_syntax.matches(tree, search_syntax.Document("acme only", {"is": lambda v: False}))
    assert not search_syntax.positive(search_syntax.parse("-acme -is:retweet", {"is"}))
    for broken in ("acme OR", "(acme", "acme)", "from:acme", 'acme "crm', "is:"):
        with pytest.raises(search_syntax.QuerySyntaxError):
            search_syntax.parse(broken, {"is"})
