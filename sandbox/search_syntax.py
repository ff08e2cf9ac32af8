"""Boolean search queries as Reddit's and X's search endpoints read them (fakes only).

Both fakes need to answer `q=(acme OR "acme crm") -is:retweet` the way the
real services do, closely enough that a connector's query compilation is
tested for real: whole-word, case-insensitive words; "quoted phrases"
(consecutive words); `OR`; `AND` or a space (binding tighter than OR, as
both services document); `NOT x` / `-x`; parentheses; and `field:value`
operators that each fake defines (`from:`, `lang:`, `is:retweet`,
`subreddit:`, `title:` ...). Punctuated terms such as `acme.com` match
the word sequence `acme com`, which is how both services tokenise. An
unknown operator or unbalanced parentheses raise `QuerySyntaxError`, which
the fakes turn into the services' 400 answers.

Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Union

_TOKEN = re.compile(r'\s*(?:(?P<phrase>"[^"]*")|(?P<open>\()|(?P<close>\))|(?P<neg>-)(?=[^\s)])'
                    r'|(?P<field>[A-Za-z_]+):(?=\S)|(?P<word>[^\s()"]+))')
_WORD = re.compile(r"\w+", re.UNICODE)


class QuerySyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Words:
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class FieldOp:
    name: str
    value: str


@dataclass(frozen=True)
class NotOp:
    child: "Node"


@dataclass(frozen=True)
class AndOp:
    children: tuple["Node", ...]


@dataclass(frozen=True)
class OrOp:
    children: tuple["Node", ...]


Node = Union[Words, FieldOp, NotOp, AndOp, OrOp]


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


class _Parser:
    def __init__(self, query: str, known_fields: set[str]):
        self.known = known_fields
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        query = query.replace("“", '"').replace("”", '"')
        while pos < len(query):
            m = _TOKEN.match(query, pos)
            if not m or m.end() == pos:
                if query[pos:].strip():
                    raise QuerySyntaxError(f"cannot read the query at character {pos + 1}")
                break
            kind = next(k for k, v in m.groupdict().items() if v is not None)
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        self.pos += 1
        return self.tokens[self.pos - 1]

    def parse(self) -> Node:
        node = self.disjunction()
        if self.peek()[0] != "end":
            raise QuerySyntaxError(f"unexpected {self.peek()[1]!r}")
        return node

    def disjunction(self) -> Node:
        parts = [self.conjunction()]
        while self.peek() == ("word", "OR"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else OrOp(tuple(parts))

    def conjunction(self) -> Node:
        parts = [self.unary()]
        while self.peek()[0] not in ("end", "close") and self.peek() != ("word", "OR"):
            if self.peek() == ("word", "AND"):
                self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else AndOp(tuple(parts))

    def unary(self) -> Node:
        if self.peek()[0] == "neg" or self.peek() == ("word", "NOT"):
            self.take()
            return NotOp(self.unary())
        return self.primary()

    def primary(self) -> Node:
        kind, text = self.take() if self.pos < len(self.tokens) else ("end", "")
        if kind == "open":
            node = self.disjunction()
            if self.peek()[0] != "close":
                raise QuerySyntaxError("missing ')'")
            self.take()
            return node
        if kind == "field":
            name = text.lower()
            if name not in self.known:
                raise QuerySyntaxError(f"unknown operator {name}:")
            value_kind, value = self.take() if self.pos < len(self.tokens) else ("end", "")
            if value_kind not in ("word", "phrase"):
                raise QuerySyntaxError(f"{name}: needs a value")
            return FieldOp(name, value.strip('"'))
        if kind == "phrase":
            return Words(tuple(words(text)))
        if kind == "word":
            return Words(tuple(words(text)))
        raise QuerySyntaxError("the query is empty or ends too early" if kind == "end" else f"unexpected {text!r}")


def parse(query: str, known_fields: set[str]) -> Node:
    if not query.strip():
        raise QuerySyntaxError("the query is empty")
    return _Parser(query, known_fields).parse()


def matches(node: Node, doc: Document) -> bool:
    if isinstance(node, Words):
        return doc.has(node.tokens)
    if isinstance(node, FieldOp):
        test = doc.operators.get(node.name)
        return bool(test and test(node.value))
    if isinstance(node, NotOp):
        return not matches(node.child, doc)
    if isinstance(node, AndOp):
        return all(matches(c, doc) for c in node.children)
    return any(matches(c, doc) for c in node.children)


def positive(node: Node) -> bool:
    """Whether the query asks for something (X refuses queries made only of exclusions)."""
    if isinstance(node, (Words, FieldOp)):
        return True
    if isinstance(node, NotOp):
        return False
    if isinstance(node, AndOp):
        return any(positive(c) for c in node.children)
    return all(positive(c) for c in node.children)
