"""A monitor's query pushed down to a source's own search.

A monitor's `query` is written in earful's rule language and read by its
one parser (`earful.core.query`): implicit AND binds *looser* than OR
(`acme broken OR refund` is `acme (broken OR refund)`), `-x`/`NOT x`
exclude, `"never respond*"` and `respon*` are wildcards, `title:`,
`author:`, `lang:`, `site:`, `source:`, `type:`, `rating:` are fields.

The rules engine filters the mentions precisely afterwards, so a pushed
query only has to be a *superset*, never exact. What a source cannot
express is dropped in a way that only widens the search: a dropped
AND-operand or negation makes the search broader, and an OR-group with an
inexpressible alternative is dropped as a whole. A query with nothing
left to search for (`acme OR -spam`, `source:reddit`) is refused with
`ValueError`: searching everything is never what the admin meant.

Syntax errors never fail a fetch: `earful check` reports them, and here
the query is parsed leniently, so an unreadable part counts as "anything"
and widens the search (a query nested too deeply is refused).

Two reductions, one per kind of source:

* `compile_query`: X's and Reddit's boolean syntax. Their precedence
  differs from ours (X applies AND before OR), so every compound is
  emitted with explicit parentheses.
* `all_words_queries`: sources with no OR, where every word must match
  (Hacker News' Algolia, Mastodon, Bluesky). The query is expanded into
  OR-branches of required terms; a branch containing another is implied by
  it (`acme OR "acme crm"` -> `acme`); several branches left share one
  query made of the terms, else the words, they all have in common
  (`"acme crm" OR "acme api"` -> `acme`); only branches with nothing in
  common cost one search each.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Literal

from earful.core.query import And, Filter, Node, Not, Or, QueryError, Term, parse

Dialect = Literal["x", "reddit"]
Branch = tuple[str, ...]  # required terms: words, or phrases in double quotes

MAX_BRANCHES = 64
_OPERATORS = frozenset({"AND", "OR", "NOT"})
_X_SAFE_WORD = re.compile(r"^[\w.@#$'&+/-]+$", re.UNICODE)


def _tree(query: str) -> Node | None:
    """`query` read leniently; None when even that fails (it nests too deeply)."""
    try:
        return parse(query, lenient=True)
    except QueryError:
        return None


def _searchable(term: Term) -> bool:
    """Whether a source can search for `term`: no source has our wildcards
    (Algolia prefix-matches only the last word), so those are dropped."""
    return not (term.prefix_wildcard or term.suffix_wildcard) and bool(term.written.strip())


# -- X and Reddit ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Out:
    text: str
    positive: bool  # contains something to search for, not only exclusions
    compound: bool  # needs parentheses when nested


def _word(term: Term, dialect: Dialect) -> _Out | None:
    if not _searchable(term):
        return None
    text = term.written
    quoted = _Out('"' + text.replace('"', "") + '"', True, False)
    if term.is_phrase or " " in text:
        return quoted
    if text in _OPERATORS:  # a literal "OR" left over by a broken query is a word, not an operator
        return quoted
    if dialect == "x" and not _X_SAFE_WORD.match(text):
        return quoted  # a colon or bracket would read as an operator
    return _Out(text, True, False)


def _term(term: Term, dialect: Dialect) -> _Out | None:
    out = _word(term, dialect)
    if out is not None and term.field == "title" and dialect == "reddit":
        return _Out(f"title:{out.text}", True, False)
    return out  # tweets have no title: the words themselves are a superset


def _filter(node: Filter, dialect: Dialect) -> _Out | None:
    value = str(node.value)
    if node.field == "author":
        if not re.fullmatch(r"[\w-]+", value):
            return None
        return _Out(f"from:{value}" if dialect == "x" else f"author:{value}", True, False)
    if node.field == "lang" and dialect == "x" and re.fullmatch(r"[a-z]{2,3}", value.split("-")[0]):
        return _Out(f"lang:{value.split('-')[0]}", True, False)
    if node.field == "site" and dialect == "reddit" and node.raw.lower().lstrip("/").startswith("r/"):
        if re.fullmatch(r"\w+", value):
            return _Out(f"subreddit:{value}", True, False)
    return None  # source:, type:, rating:, site: ... have no search equivalent: widen


def _not(node: Not, dialect: Dialect) -> _Out | None:
    if dialect == "reddit":
        return None  # Reddit's NOT is unreliable across its search backends; leaving it out widens
    inner = _emit(node.child, dialect)
    if inner is None or not inner.positive or inner.compound:
        return None
    return _Out("-" + inner.text, False, False)


def _all(node: And, dialect: Dialect) -> _Out | None:
    parts = [p for p in (_emit(c, dialect) for c in node.children) if p is not None]
    if not any(p.positive for p in parts):
        return None  # only exclusions left: X rejects that, and it would not narrow anything useful
    if len(parts) == 1:
        return parts[0]
    joiner = " " if dialect == "x" else " AND "
    return _Out(joiner.join(_wrap(p) for p in parts), True, True)


def _any(node: Or, dialect: Dialect) -> _Out | None:
    parts = [_emit(c, dialect) for c in node.children]
    if any(p is None or not p.positive for p in parts):
        return None  # an alternative we cannot search for makes the whole group "anything"
    unique = list(dict.fromkeys(_wrap(p) for p in parts if p is not None))
    if len(unique) == 1:
        return _Out(unique[0], True, False)
    return _Out("(" + " OR ".join(unique) + ")", True, False)


def _wrap(out: _Out) -> str:
    return f"({out.text})" if out.compound else out.text


def _emit(node: Node, dialect: Dialect) -> _Out | None:
    """`node` in the source's syntax, or None for "cannot narrow here" (matches anything)."""
    if isinstance(node, Term):
        return _term(node, dialect)
    if isinstance(node, Filter):
        return _filter(node, dialect)
    if isinstance(node, Not):
        return _not(node, dialect)
    if isinstance(node, And):
        return _all(node, dialect)
    return _any(node, dialect)


def compile_query(query: str, dialect: Dialect) -> str:
    """`query` (rule language) as a search string for `dialect`; ValueError if nothing is searchable."""
    tree = _tree(query)
    out = _emit(tree, dialect) if tree is not None else None
    if out is None or not out.positive:
        raise ValueError(
            f"the query {query!r} leaves nothing {'X' if dialect == 'x' else 'Reddit'} can search for "
            "(every alternative needs a plain word or phrase)"
        )
    return out.text  # an OR keeps its parentheses, so terms appended later (X's -is:retweet) AND the whole


# -- sources without OR ----------------------------------------------------------------------


def _product(left: list[Branch], right: list[Branch]) -> list[Branch]:
    branches = [tuple(dict.fromkeys(a + b)) for a, b in itertools.product(left, right)]
    if len(branches) > MAX_BRANCHES:
        raise ValueError("the query has too many OR combinations to search with")
    return branches


def _branches(node: Node) -> list[Branch]:
    """OR-branches of required terms whose union includes every match of `node`."""
    if isinstance(node, Term):
        if not _searchable(node) or node.raw in _OPERATORS:
            return [()]
        text = node.written.lower()
        return [(f'"{text}"',) if node.is_phrase and " " in text else (text,)]
    if isinstance(node, And):
        branches: list[Branch] = [()]
        for child in node.children:
            branches = _product(branches, _branches(child))
        return branches
    if isinstance(node, Or):
        return [branch for child in node.children for branch in _branches(child)]
    return [()]  # a filter has no search equivalent, and an exclusion only narrows: leaving either out widens


def _fewest_searches(branches: list[Branch]) -> list[str]:
    """One search for all `branches` when they share terms (else words), else one search each."""
    minimal = [b for b in branches if not any(set(other) < set(b) for other in branches)]
    if len(minimal) == 1:
        return [" ".join(minimal[0])]
    common = [term for term in minimal[0] if all(term in b for b in minimal[1:])]
    if not common:
        words = [set(re.findall(r"\w+", " ".join(b))) for b in minimal]  # Algolia splits acme.com into acme, com
        common = sorted(set.intersection(*words))
    if common:
        return [" ".join(common)]
    return [" ".join(b) for b in minimal]


def all_words_queries(query: str) -> list[str]:
    """Searches, every word of each required, whose hits together include every item `query` can match."""
    tree = _tree(query)
    branches = list({frozenset(b): b for b in _branches(tree)}.values()) if tree is not None else [()]
    if any(not branch for branch in branches):
        raise ValueError(f"the query {query!r} has an OR-branch without a plain word or phrase to search for")
    return _fewest_searches(branches)
