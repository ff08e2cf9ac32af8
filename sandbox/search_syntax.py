"""Boolean search queries as Reddit's and X's search endpoints read them (fakes only).

Both fakes need to answer `q=(acme OR "acme crm") -is:retweet` the way the
real services do, closely enough that a connector's query compilation is
tested for real: whole-word, case-insensitive words; "quoted phrases"
(consecutive words); `OR`; `AND` or a space (binding tighter than OR, as
both services document); `NOT x` / `-x`; parentheses; and `field:value`
operators that each fake defines (`from:`, `lang:`, `is:retweet`,
`subreddit:`, `title:` ...). The query is read by earful's one query
parser (`earful.core.query.parse_search`); this module only evaluates the
tree. Punctuated terms such as `acme.com` match the word sequence `acme
com`, which is how both services tokenise. An unknown operator or
unbalanced parentheses raise `QuerySyntaxError`, which the fakes turn into
the services' 400 answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Collection

from earful.core.query import And, Filter, Node, Not, QueryError, Term, parse_search

QuerySyntaxError = QueryError  # what the fakes catch
_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-case word tokens of `text`, the unit both services match on."""
    return _WORD.findall(text.casefold())


@dataclass
class Document:
    """What one item offers to a query: its words and its operators."""

    text: str
    operators: dict[str, Callable[[str], bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens = words(self.text)

    def has(self, sequence: tuple[str, ...]) -> bool:
        n = len(sequence)
        if n == 0:
            return True
        return any(tuple(self.tokens[i : i + n]) == sequence for i in range(len(self.tokens) - n + 1))


def parse(query: str, known_fields: Collection[str]) -> Node:
    """The tree of `query` in the services' syntax, whose operators are `known_fields`."""
    return parse_search(query, known_fields)


def matches(node: Node, doc: Document) -> bool:
    if isinstance(node, Term):
        return doc.has(tuple(words(node.written)))  # as written: the services fold neither accents nor "dot"
    if isinstance(node, Filter):
        test = doc.operators.get(node.field)
        return bool(test and test(str(node.value)))
    if isinstance(node, Not):
        return not matches(node.child, doc)
    if isinstance(node, And):
        return all(matches(c, doc) for c in node.children)
    return any(matches(c, doc) for c in node.children)


def positive(node: Node) -> bool:
    """Whether the query asks for something (X refuses queries made only of exclusions)."""
    if isinstance(node, (Term, Filter)):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(positive(c) for c in node.children)
    return all(positive(c) for c in node.children)
