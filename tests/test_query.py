"""The query language: its tree, its precedence and its error messages."""

from __future__ import annotations

import pytest

from earful.core.normalize import normalize
from earful.core.query import (
    ANYTHING,
    And,
    Filter,
    Not,
    Or,
    QueryError,
    Term,
    atoms,
    parse,
    parse_search,
)


def t(text: str, **kw: object) -> Term:
    return Term(text, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "query, tree",
    [
        ("acme", t("acme")),
        ("Acme", t("acme")),
        ("acme crm", And((t("acme"), t("crm")))),
        ("acme AND crm", And((t("acme"), t("crm")))),
        ('"Acme CRM"', t("acme crm", is_phrase=True)),
        ("acme OR crm", Or((t("acme"), t("crm")))),
        ("acme | crm", Or((t("acme"), t("crm")))),
        ("acme|crm", Or((t("acme"), t("crm")))),
        ("-acme", Not(t("acme"))),
        ("NOT acme", Not(t("acme"))),
        ('-"job offer"', Not(t("job offer", is_phrase=True))),
        ("-(a b)", Not(And((t("a"), t("b"))))),
        ("NOT NOT acme", t("acme")),
        ("--acme", t("acme")),
        ("respon*", t("respon", suffix_wildcard=True)),
        ("*soft", t("soft", prefix_wildcard=True)),
        ("*soft*", t("soft", prefix_wildcard=True, suffix_wildcard=True)),
        ('"never respond*"', t("never respond", is_phrase=True, suffix_wildcard=True)),
        ('"*soft rocks"', t("soft rocks", is_phrase=True, prefix_wildcard=True)),
        ("acme.com", t("acme com")),
        ("e-mail", t("e mail")),
        ("http://acme.com", t("http acme com")),
        ("café", t("cafe")),
        ("title:acme", t("acme", field="title")),
        ('title:"acme crm"', t("acme crm", field="title", is_phrase=True)),
        ("Title:respon*", t("respon", field="title", suffix_wildcard=True)),
        ("title:(a OR -b)", Or((t("a", field="title"), Not(t("b", field="title"))))),
        ("-title:acme", Not(t("acme", field="title"))),
        ("author:@Jane", Filter("author", "=", "jane")),
        ("author:u/Jane", Filter("author", "=", "jane")),
        ("author:/u/Jane", Filter("author", "=", "jane")),
        ('author:"Jane Doe"', Filter("author", "=", "jane doe")),
        ("source:Reddit", Filter("source", "=", "reddit")),
        ("type:review", Filter("type", "=", "review")),
        ("type:post|comment", Or((Filter("type", "=", "post"), Filter("type", "=", "comment")))),
        ("type:(post OR reply)", Or((Filter("type", "=", "post"), Filter("type", "=", "reply")))),
        ("lang:en", Filter("lang", "=", "en")),
        ("lang:pt_BR", Filter("lang", "=", "pt-br")),
        ("site:example.com", Filter("site", "=", "example.com")),
        ("site:https://www.Example.com/pricing", Filter("site", "=", "example.com")),
        ("site:r/CRM", Filter("site", "=", "crm")),
        ("site:crm", Filter("site", "=", "crm")),
        ("rating:<=2", Filter("rating", "<=", 2.0)),
        ("rating:>=4", Filter("rating", ">=", 4.0)),
        ("rating:<3", Filter("rating", "<", 3.0)),
        ("rating:>3.5", Filter("rating", ">", 3.5)),
        ("rating:5", Filter("rating", "=", 5.0)),
        ("rating:=1", Filter("rating", "=", 1.0)),
        ("“acme crm”", t("acme crm", is_phrase=True)),
        ("acme or crm", And((t("acme"), t("or"), t("crm")))),  # lower-case operators are words
    ],
)
def test_trees(query: str, tree: object) -> None:
    assert parse(query) == tree


@pytest.mark.parametrize(
    "query, tree",
    [
        # OR binds tighter than AND, implicit or explicit (as in Google search).
        ("a OR b c", And((Or((t("a"), t("b"))), t("c")))),
        ("a b OR c", And((t("a"), Or((t("b"), t("c")))))),
        ("a OR b AND c", And((Or((t("a"), t("b"))), t("c")))),
        ("a OR b OR c d", And((Or((t("a"), t("b"), t("c"))), t("d")))),
        # NOT binds tightest.
        ("-a OR b", Or((Not(t("a")), t("b")))),
        ("NOT a b", And((Not(t("a")), t("b")))),
        # Parentheses override, at any depth.
        ("(a OR b) c", And((Or((t("a"), t("b"))), t("c")))),
        ("a OR (b c)", Or((t("a"), And((t("b"), t("c")))))),
        ("((a OR (b -(c OR d))))", Or((t("a"), And((t("b"), Not(Or((t("c"), t("d"))))))))),
        # A field's '|' alternatives bind to the field only when glued to it.
        ("title:a|b", Or((t("a", field="title"), t("b", field="title")))),
        ("title:a | b", Or((t("a", field="title"), t("b")))),
        ("type:post|comment acme", And((Or((Filter("type", "=", "post"), Filter("type", "=", "comment"))), t("acme")))),
    ],
)
def test_precedence(query: str, tree: object) -> None:
    assert parse(query) == tree


def test_design_example() -> None:
    tree = parse('acme (broken OR refund OR "never respond*") -"job offer"')
    assert tree == And(
        (
            t("acme"),
            Or((t("broken"), t("refund"), t("never respond", is_phrase=True, suffix_wildcard=True))),
            Not(t("job offer", is_phrase=True)),
        )
    )


def test_terms_keep_their_spelling_for_messages() -> None:
    assert str(parse('"Never Respond*"')) == '"Never Respond*"'
    assert str(parse("title:Acme")) == "title:Acme"
    assert str(parse("rating:<=2")) == "rating:<=2"
    assert str(parse("type:post")) == "type:post"
    assert parse("Acme") == parse("ACME")  # the spelling does not take part in equality


def test_atoms_lists_every_leaf_in_order() -> None:
    assert [str(a) for a in atoms(parse("a (b OR -title:c) rating:5 -a"))] == ["a", "b", "title:c", "rating:5", "a"]


def test_term_text_is_normalised_like_mention_text() -> None:
    for raw in ["Café-Crème", "ACME[.]com", "acme dot com", "Straße"]:
        assert parse(f'"{raw}"') == t(normalize(raw), is_phrase=True)


def test_a_term_of_only_punctuation_parses_to_empty_text() -> None:
    assert parse('"!!!"') == t("", is_phrase=True)


@pytest.mark.parametrize(
    "query, message, position",
    [
        ("", "empty query", 0),
        ("   ", "empty query", 0),
        ('acme "broken', "unclosed quote at column 6", 5),
        ('acme AND "broken OR x', "unclosed quote at column 10", 9),
        ("(acme broken", "unbalanced parenthesis: '(' at column 1 is never closed", 0),
        ("acme (broken", "unbalanced parenthesis: '(' at column 6 is never closed", 5),
        ("acme broken)", "unbalanced parenthesis: ')' at column 12 has no matching '('", 11),
        (")", "unbalanced parenthesis: ')' at column 1 has no matching '('", 0),
        ("()", "empty parentheses at column 1", 0),
        ("acme OR", "OR at column 6 needs a term after it", 5),
        ("acme |", "| at column 6 needs a term after it", 5),
        ("OR acme", "OR at column 1 needs a term before it", 0),
        ("acme AND", "AND at column 6 needs a term after it", 5),
        ("acme AND OR b", "AND at column 6 needs a term after it", 5),
        ("(a OR) b", "OR at column 4 needs a term after it", 3),
        ("acme NOT", "NOT at column 6 needs a term after it", 5),
        ("acme - x", "'-' at column 6 must be followed directly by what it excludes", 5),
        ("acme -", "'-' at column 6 must be followed directly by what it excludes", 5),
        ("re*spond", "'*' in re*spond at column 1 can only start or end a word", 0),
        ('"never * respond"', "can only start or end a word", 0),
        ('"never respond *"', 'the * in "never respond *" at column 1 must touch a word', 0),
        ("acme *", "a lone * at column 6 would match everything", 5),
        ('""', "empty quotes at column 1", 0),
        ("titel:acme", "unknown field 'titel:' at column 1; did you mean 'title:'? (known: title, author, source, type, lang, site, rating)", 0),
        ("x foo:bar", "unknown field 'foo:' at column 3; (known: title, author", 2),
        ("title: acme", "title: at column 1 needs a value right after the colon", 0),
        ("acme title:", "title: at column 6 needs a value right after the colon", 5),
        ("rating:", "rating: at column 1 needs a value", 0),
        ("rating:bad", "rating needs a number 1-5", 7),
        ("rating:<=9", "rating needs a number 1-5", 7),
        ("rating:0", "rating needs a number 1-5", 7),
        ("rating:=<2", "rating needs a number 1-5", 7),
        ("type:tweet", "type must be one of post, comment, reply, review, message (got 'tweet' at column 6)", 5),
        ("type:post|tweet", "type must be one of post, comment", 10),
        ("lang:english!", "lang needs a language code", 5),
        ("source:!x", "source needs a connector name", 7),
        ("site:!!", "site needs a domain", 5),
        ("author:@", "author needs an account name", 7),
        ("author:jo*", "author: takes no wildcards", 7),
        ("(" * 60 + "a" + ")" * 60, "query nests too deeply at column 51", 50),
    ],
)
def test_syntax_errors(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert message in caught.value.message
    assert caught.value.position == position
    assert str(caught.value) == caught.value.message


def test_deep_but_reasonable_nesting_is_fine() -> None:
    assert parse("(" * 20 + "a" + ")" * 20) == t("a")


@pytest.mark.parametrize(
    "query, tree",
    [
        ("", ANYTHING),
        ('acme "broken', And((t("acme"), t("broken", is_phrase=True)))),
        ("acme (broken", And((t("acme"), t("broken")))),
        ("acme broken)", And((t("acme"), t("broken")))),
        ("acme ) ) b", And((t("acme"), t("b")))),
        ("()", ANYTHING),
        ("acme OR", t("acme")),
        ("acme NOT", t("acme")),
        ("acme - x", And((t("acme"), t("x")))),
        ("acme AND OR b", And((t("acme"), t("or"), t("b")))),  # an operator where a word should be is that word
        ("re*spond OR acme", Or((ANYTHING, t("acme")))),
        ("x foo:(a b) y", And((t("x"), t("y")))),  # an unknown field and its value
        ("acme title:", t("acme")),
        ("type:post|tweet", Or((Filter("type", "=", "post"), ANYTHING))),
        ("-rating:9", Not(ANYTHING)),
    ],
)
def test_a_lenient_parse_reads_past_syntax_errors(query: str, tree: object) -> None:
    assert parse(query, lenient=True) == tree


def test_a_lenient_parse_still_refuses_deep_nesting() -> None:
    with pytest.raises(QueryError, match="nests too deeply"):
        parse("(" * 60 + "a" + ")" * 60, lenient=True)


def test_spelling_is_kept_for_pushdown() -> None:
    assert parse('"Acme   CRM*"').written == "Acme CRM"
    assert parse("Acme.com").written == "Acme.com"
    site = parse("site:r/CRM")
    assert site == parse("site:crm") and isinstance(site, Filter) and site.raw == "r/CRM"


def test_search_syntax_binds_and_tighter_and_keeps_operators_verbatim() -> None:
    tree = parse_search('acme crm OR globex -is:retweet conversation_id:"7"', {"is", "conversation_id"})
    assert tree == Or(
        (
            And((t("acme"), t("crm"))),
            And((t("globex"), Not(Filter("is", "=", "retweet")), Filter("conversation_id", "=", "7"))),
        )
    )
    assert parse_search("title:Acme", {"title"}) == Filter("title", "=", "Acme")
    with pytest.raises(QueryError, match="unknown field 'from:'"):
        parse_search("from:acme", {"is"})
