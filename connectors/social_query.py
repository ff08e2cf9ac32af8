"""Monitor queries translated into the search syntax of Reddit and X.

A monitor's `query` is written in earful's rule language (see
`earful.core.query`, which connectors may not import): implicit AND binds
*looser* than OR (`acme broken OR refund` is `acme (broken OR refund)`),
`-x`/`NOT x` exclude, `"never respond*"` and `respon*` are wildcards,
`title:`, `author:`, `lang:`, `site:`, `source:`, `type:`, `rating:` are
fields.

Sources have their own precedence (X applies AND before OR, the opposite
of ours), so every compound is emitted with explicit parentheses. What a
source cannot express is dropped in a way that only *widens* the search:
a dropped AND-operand or negation makes the search broader, and an
OR-group with an inexpressible alternative is dropped as a whole. The
rules engine filters the mentions precisely afterwards, so a pushed-down
query only has to be a superset, never exact. A query with nothing left
to search for (`acme OR -spam`, `source:reddit`) is refused with
`ValueError`: searching everything is never what the admin meant.

The parser never fails on syntax: `earful check` reports syntax errors; a
broken query here degrades to a broader search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Union

Dialect = Literal["x", "reddit"]

_TOKEN = re.compile(
    r"""\s*(?:(?P<phrase>["“”„][^"“”„]*["“”„]?)|(?P<open>\()|(?P<close>\))|(?P<bar>\|)|(?P<neg>-)(?=[^\s)|])"""
    r"""|(?P<field>[A-Za-z]+):(?!//)(?=\S)|(?P<word>[^\s()|"“”„]+))"""
)
_X_SAFE_WORD = re.compile(r"^[\w.@#$'&+/-]+$", re.UNICODE)
_OPERATORS = {"AND", "OR", "NOT"}


@dataclass(frozen=True)
class Term:
    text: str
    phrase: bool


@dataclass(frozen=True)
class Field:
    name: str
    value: "Node"


@dataclass(frozen=True)
class Not:
    child: "Node"


@dataclass(frozen=True)
class And:
    children: tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    children: tuple["Node", ...]


Node = Union[Term, Field, Not, And, Or, None]  # None: an empty group, matches anything


class _Parser:
    """Recursive descent over the rule language, forgiving stray tokens."""

    def __init__(self, query: str):
        self.tokens: list[tuple[str, str, int, int]] = []
        pos = 0
        while (m := _TOKEN.match(query, pos)) and m.end() > pos:
            kind = next(k for k, v in m.groupdict().items() if v is not None)
            self.tokens.append((kind, m.group(kind), m.start(kind), m.end()))
            pos = m.end()
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos][:2] if self.pos < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str, int, int]:
        self.pos += 1
        return self.tokens[self.pos - 1]

    def parse(self) -> Node:
        parts = [self.conjunction()]
        while self.peek()[0] != "end":  # a stray ")": read on
            self.take()
            parts.append(self.conjunction())
        return _and(parts)

    def conjunction(self) -> Node:
        parts: list[Node] = []
        while self.peek()[0] not in ("end", "close"):
            if self.peek() == ("word", "AND"):
                self.take()
                continue
            parts.append(self.disjunction())
        return _and(parts)

    def disjunction(self) -> Node:
        parts = [self.unary()]
        while self.peek()[0] == "bar" or self.peek() == ("word", "OR"):
            self.take()
            if self.peek()[0] in ("end", "close"):
                break
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def unary(self) -> Node:
        if self.peek()[0] == "neg" or self.peek() == ("word", "NOT"):
            self.take()
            if self.peek()[0] in ("end", "close"):
                return None
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        kind, text, _, _ = self.take()
        if kind == "open":
            node = self.conjunction()
            if self.peek()[0] == "close":
                self.take()
            return node
        if kind == "field":
            value = self.unary() if self.peek()[0] not in ("end", "close") else None
            alternatives = [value]
            while self.glued_bar():  # `type:post|comment` belongs to the field
                self.take()
                alternatives.append(self.unary())
            value = alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives))
            return Field(text.lower(), value)
        if kind in ("close", "bar"):
            return None
        if kind == "phrase":
            return Term(" ".join(text.strip('"“”„').split()), phrase=True)
        return Term(text, phrase=False)

    def glued_bar(self) -> bool:
        if self.pos + 1 >= len(self.tokens):
            return False
        before, bar, after = self.tokens[self.pos - 1], self.tokens[self.pos], self.tokens[self.pos + 1]
        return bar[0] == "bar" and bar[2] == before[3] and after[2] == bar[3]


def _and(parts: list[Node]) -> Node:
    kept = [p for p in parts if p is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else And(tuple(kept))


def parse(query: str) -> Node:
    return _Parser(query).parse()


# -- emitting -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Out:
    text: str
    positive: bool  # contains something to search for, not only exclusions
    compound: bool  # needs parentheses when nested


def _term(term: Term, dialect: Dialect) -> _Out | None:
    text = term.text.strip()
    if not text or "*" in text:  # neither source has wildcards: drop, which widens
        return None
    if term.phrase or " " in text:
        return _Out('"' + text.replace('"', "") + '"', True, False)
    if text in _OPERATORS:  # a literal "OR" left over by a broken query is a word, not an operator
        return _Out(f'"{text}"', True, False)
    if dialect == "x" and not _X_SAFE_WORD.match(text):
        return _Out(f'"{text}"', True, False)  # a colon or bracket would read as an operator
    return _Out(text, True, False)


def _plain_value(node: Node) -> str | None:
    """The single word or phrase a field applies to, or None for anything more complex."""
    if isinstance(node, Term) and node.text.strip() and "*" not in node.text:
        return node.text.strip()
    return None


def _field(node: Field, dialect: Dialect) -> _Out | None:
    name, value = node.name, node.value
    if name == "title":
        inner = _emit(value, dialect)
        plain = _plain_value(value)
        if dialect == "reddit" and plain is not None and inner is not None:
            return _Out(f"title:{inner.text}", True, False)
        return inner  # tweets have no title: the words themselves are a superset
    plain = _plain_value(value)
    if plain is None:
        return None
    if name == "author":
        who = plain.lstrip("@").removeprefix("u/").removeprefix("/u/")
        if not re.fullmatch(r"[\w-]+", who):
            return None
        return _Out(f"from:{who}" if dialect == "x" else f"author:{who}", True, False)
    if name == "lang" and dialect == "x" and re.fullmatch(r"[A-Za-z]{2,3}", plain.split("-")[0]):
        return _Out(f"lang:{plain.split('-')[0].lower()}", True, False)
    if name == "site" and dialect == "reddit" and plain.lower().lstrip("/").startswith("r/"):
        sub = plain.lower().lstrip("/")[2:].strip("/")
        if re.fullmatch(r"\w+", sub):
            return _Out(f"subreddit:{sub}", True, False)
    return None  # source:, type:, rating:, site: ... have no search equivalent: widen


def _emit(node: Node, dialect: Dialect) -> _Out | None:
    """`node` in the source's syntax, or None for "cannot narrow here" (matches anything)."""
    if node is None:
        return None
    if isinstance(node, Term):
        return _term(node, dialect)
    if isinstance(node, Field):
        return _field(node, dialect)
    if isinstance(node, Not):
        if dialect == "reddit":
            return None  # Reddit's NOT is unreliable across its search backends; leaving it out widens
        inner = _emit(node.child, dialect)
        if inner is None or not inner.positive or inner.compound:
            return None
        return _Out("-" + inner.text, False, False)
    if isinstance(node, And):
        parts = [p for p in (_emit(c, dialect) for c in node.children) if p is not None]
        if not parts or not any(p.positive for p in parts):
            return None  # only exclusions left: X rejects that, and it would not narrow anything useful
        if len(parts) == 1:
            return parts[0]
        joiner = " " if dialect == "x" else " AND "
        return _Out(joiner.join(_wrap(p) for p in parts), True, True)
    if isinstance(node, Or):
        parts = [_emit(c, dialect) for c in node.children]
        if any(p is None or not p.positive for p in parts):
            return None  # an alternative we cannot search for makes the whole group "anything"
        unique = list(dict.fromkeys(p.text for p in parts if p is not None))
        if len(unique) == 1:
            return _Out(unique[0], True, False)
        return _Out("(" + " OR ".join(unique) + ")", True, False)
    return None


def _wrap(out: _Out) -> str:
    return f"({out.text})" if out.compound else out.text


def compile_query(query: str, dialect: Dialect) -> str:
    """`query` (rule language) as a search string for `dialect`; ValueError if nothing is searchable."""
    out = _emit(parse(query), dialect)
    if out is None or not out.positive:
        raise ValueError(
            f"the query {query!r} leaves nothing {'X' if dialect == 'x' else 'Reddit'} can search for "
            "(every alternative needs a plain word or phrase)"
        )
    return out.text  # an OR keeps its parentheses, so terms appended later (X's -is:retweet) AND the whole
