"""The rule query language admins write in `rules/*.yaml`.

    acme (broken OR refund OR "never respond*") -"job offer" type:post|comment

Syntax, loosest binding first:

* ``a b`` or ``a AND b``: both. Implicit and explicit AND are the same
  operator, and it binds *looser* than OR, as in Google search:
  ``acme broken OR refund`` means ``acme (broken OR refund)``, which is
  what someone listing alternatives after a brand name means. Use
  parentheses when in doubt.
* ``a OR b`` or ``a | b``: either.
* ``NOT a``, ``-a``, ``-"a phrase"``, ``-(a b)``, ``-title:a``: not. It
  binds tightest: ``-a OR b`` is ``(NOT a) OR b``.
* ``( ... )`` groups, nested to any reasonable depth.
* ``word``, ``"a phrase"``: matched as whole words, ignoring case, accents
  and punctuation (see `earful.core.normalize`). ``respon*`` and
  ``*soft`` are wildcards at the end or start of a word, ``"never
  respond*"`` at the end or start of a phrase. ``acme.com`` also finds the
  obfuscated "acme[.]com", "acme(dot)com", "acme dot com".
* ``field:value`` restricts what is compared:

  ``title:word``, ``title:"a phrase"``, ``title:(a OR b)`` only look at
  the title; ``author:name`` (no case, no ``@``/``u/``), ``source:reddit``,
  ``type:post`` (post, comment, reply, review, message), ``lang:en``
  (also en-US), ``site:example.com`` (and its subdomains) or
  ``site:r/crm``, ``rating:<=2`` / ``>=4`` / ``<3`` / ``>3`` / ``5``.
  ``type:post|comment`` (no spaces around ``|``) is ``type:post OR
  type:comment``; the same holds for every field.

Upper-case ``AND``, ``OR``, ``NOT`` are operators; lower-case they are
words. Errors raise `QueryError` with a message that names the column.
The parser produces a tree of small frozen dataclasses (`Term`, `Filter`,
`And`, `Or`, `Not`) that the engine compiles; it never evaluates anything.

Two other readers share this one parser, so every piece of query syntax is
read in one place:

* connectors push a monitor's query down to a source's own search with
  ``parse(query, lenient=True)``: a fetch must not fail on a typo that
  `earful check` reports anyway, so an unreadable part becomes `ANYTHING`
  (which only widens a search) and an operator where a word should be is
  read as that word;
* the sandbox's fake X and Reddit read their services' search syntax with
  `parse_search`: the same words, phrases, ``-``, ``NOT``, ``OR`` and
  parentheses, but AND binds *tighter* than OR there, and ``name:value``
  operators are the service's own, kept verbatim.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Callable, Collection, Iterator, NamedTuple, Union

from .mention import KINDS
from .normalize import normalize, normalize_author, normalize_language, normalize_site

TEXT_FIELDS = ("title",)
FILTER_FIELDS = ("author", "source", "type", "lang", "site", "rating")
FIELDS = TEXT_FIELDS + FILTER_FIELDS
RATING_RANGE = (1.0, 5.0)
RATING_OPS = ("<=", ">=", "<", ">", "=")
MAX_DEPTH = 50  # parentheses, NOTs and fields; keeps recursion and generated code bounded

_EXAMPLES = {
    "title": 'title:acme or title:"acme crm"',
    "author": "author:jane_doe",
    "source": "source:reddit",
    "type": "type:review or type:post|comment",
    "lang": "lang:en",
    "site": "site:example.com or site:r/crm",
    "rating": "rating:<=2",
}


class QueryError(ValueError):
    """A query that cannot be parsed. `position` is the 0-based offset of
    the problem in the query; `message` already names it as a 1-based column."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Term:
    """Words to find. `text` is normalised (lower-case words, single spaces);
    `field` is None for title and text, or "title"; `raw` is how the admin
    wrote it, for messages."""

    text: str
    field: str | None = None
    prefix_wildcard: bool = False
    suffix_wildcard: bool = False
    is_phrase: bool = False
    raw: str = dataclasses.field(default="", compare=False)

    @property
    def written(self) -> str:
        """What the admin wrote, without quotes, wildcards or extra spaces: "Acme  CRM*" -> "Acme CRM"."""
        return " ".join((self.raw[1:-1] if self.is_phrase else self.raw).strip("* ").split()) or self.text

    def __str__(self) -> str:
        shown = self.raw or (f'"{self.text}"' if self.is_phrase else self.text)
        return f"{self.field}:{shown}" if self.field else shown


@dataclass(frozen=True)
class Filter:
    """A condition on a mention's metadata. `value` is normalised (see
    `earful.core.normalize`) or, for rating, a float; `op` is "=" except
    for rating, which may also use <, <=, >, >=. `raw` is the value as
    written (`site:r/CRM` and `site:crm` both have the value "crm")."""

    field: str
    op: str
    value: str | float
    raw: str = dataclasses.field(default="", compare=False)

    def __str__(self) -> str:
        if isinstance(self.value, float):
            return f"{self.field}:{'' if self.op == '=' else self.op}{self.value:g}"
        return f"{self.field}:{self.value}"


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Union[Term, Filter, And, Or, Not]
Atom = Union[Term, Filter]

ANYTHING: Node = And(())
"""Matches everything: what a lenient parse reads an unreadable part as.
A strict parse never produces it."""


def parse(query: str, *, lenient: bool = False) -> Node:
    """The tree for `query`; raises `QueryError` on any syntax error.

    `lenient` reads past syntax errors instead (see the module doc); it
    still raises for a query nested deeper than `MAX_DEPTH`.
    """
    return _Parser(query, _RULES, lenient).parse()


def parse_search(query: str, operators: Collection[str]) -> Node:
    """The tree for a query in X's or Reddit's search syntax.

    AND, explicit or implicit, binds tighter than OR; each of `operators`
    (``from``, ``is``, ``subreddit`` ...) becomes ``Filter(name, "=", value)``
    with the value verbatim; words and phrases are `Term`s. Raises
    `QueryError` on any syntax error, an unknown operator included.
    """
    return _Parser(query, _Syntax(tuple(operators), (), _SEARCH_OPERATOR, True, _verbatim), False).parse()


def atoms(node: Node) -> Iterator[Atom]:
    """Every `Term` and `Filter` in `node`, left to right, repeats included."""
    if isinstance(node, (Term, Filter)):
        yield node
    elif isinstance(node, Not):
        yield from atoms(node.child)
    else:
        for child in node.children:
            yield from atoms(child)


# --- tokens -----------------------------------------------------------------

_WORD, _PHRASE, _FIELD, _LPAREN, _RPAREN, _AND, _OR, _NOT, _EOF = (
    "word", "phrase", "field", "(", ")", "AND", "OR", "NOT", "end",
)
_QUOTES = '"“”„'
_STOPS = frozenset("()|" + _QUOTES)
_FIELD_PREFIX = re.compile(r"([A-Za-z]+):(?!//)")  # "http://x" is a word, not a field
_SEARCH_OPERATOR = re.compile(r"([A-Za-z_]+):(?!//)")  # X has conversation_id:
_RATING = re.compile(r"(<=|>=|<|>|=)?(\d+(?:\.\d+)?)")
_SOURCE = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_LANG = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")
_SITE = re.compile(r"[\w.-]+")


class _Token(NamedTuple):
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class _Syntax:
    """What differs between the rule language and the services' search syntax."""

    fields: tuple[str, ...]
    text_fields: tuple[str, ...]  # fields whose values are words (Term), not Filters
    field_prefix: re.Pattern[str]
    and_first: bool  # AND binds tighter than OR
    read_filter: Callable[[_Token, str], Filter]  # the value of a field that is not a text field


def _col(position: int) -> str:
    return f"column {position + 1}"


def _tokenize(query: str, field_prefix: re.Pattern[str], lenient: bool) -> list[_Token]:
    """The tokens of `query`. Leniently, an unclosed quote runs to the end
    and a '-' with nothing after it is left out."""
    tokens: list[_Token] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif c in "()|":
            tokens.append(_Token({"(": _LPAREN, ")": _RPAREN, "|": _OR}[c], c, i, i + 1))
            i += 1
        elif c in _QUOTES:
            end = next((j for j in range(i + 1, n) if query[j] in _QUOTES), n if lenient else -1)
            if end < 0:
                raise QueryError(f"unclosed quote at {_col(i)}", i)
            tokens.append(_Token(_PHRASE, query[i + 1 : end], i, end + 1))
            i = end + 1
        elif c == "-":
            if i + 1 == n or query[i + 1].isspace() or query[i + 1] in ")|":
                if not lenient:
                    raise QueryError(
                        f"'-' at {_col(i)} must be followed directly by what it excludes, e.g. -\"job offer\"", i
                    )
            else:
                tokens.append(_Token(_NOT, c, i, i + 1))
            i += 1
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in _STOPS:
                j += 1
            word = query[i:j]
            prefix = field_prefix.match(word)
            if prefix:
                j = i + prefix.end()
                tokens.append(_Token(_FIELD, prefix.group(1), i, j))
            else:
                kind = word if word in (_AND, _OR, _NOT) else _WORD
                tokens.append(_Token(kind, word, i, j))
            i = j
    return tokens


# --- grammar ------------------------------------------------------------------


def _and(parts: list[Node]) -> Node:
    flat = [c for p in parts for c in (p.children if isinstance(p, And) else (p,))]
    return flat[0] if len(flat) == 1 else And(tuple(flat))  # no parts left: ANYTHING


def _or(parts: list[Node]) -> Node:
    flat = [c for p in parts for c in (p.children if isinstance(p, Or) else (p,))]
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def _not(node: Node) -> Node:
    return node.child if isinstance(node, Not) else Not(node)


class _Parser:
    """Recursive descent. In the rule language conjunction := disjunction
    ([AND] disjunction)*, disjunction := unary ((OR | '|') unary)*; in the
    search syntax (`and_first`) the two swap places. unary := (NOT | -)
    unary | primary.

    `field` is the field a surrounding `title:( ... )` applies to the words
    inside; `depth` counts nesting to refuse pathological queries. Every
    syntax error goes through `recover`, which raises it unless the parse
    is lenient; each recovery consumes at least one token, so it ends.
    """

    def __init__(self, query: str, syntax: _Syntax, lenient: bool):
        self.query = query
        self.syntax = syntax
        self.lenient = lenient
        self.tokens = _tokenize(query, syntax.field_prefix, lenient)
        self.tokens.append(_Token(_EOF, "", len(query), len(query)))
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def recover(self, error: QueryError) -> Node:
        """`ANYTHING` in place of the unreadable part when lenient, else the error."""
        if not self.lenient:
            raise error
        return ANYTHING

    def parse(self) -> Node:
        if len(self.tokens) == 1:
            return self.recover(QueryError("empty query", 0))
        parts = [self.expression(None, 0)]
        while self.peek().kind == _RPAREN:
            stray = self.advance()
            self.recover(QueryError(f"unbalanced parenthesis: ')' at {_col(stray.start)} has no matching '('", stray.start))
            parts.append(self.expression(None, 0) if self.peek().kind != _EOF else ANYTHING)
        return _and(parts)

    def expression(self, field: str | None, depth: int) -> Node:
        return self.disjunction(field, depth) if self.syntax.and_first else self.conjunction(field, depth)

    def has_operand(self, operator: _Token) -> bool:
        """Operators need a term on their right. Leniently, a missing one makes
        the operator count for nothing, and AND or OR there are read as words."""
        after = self.peek().kind
        if after in (_EOF, _RPAREN, _AND, _OR) and not (self.lenient and after in (_AND, _OR)):
            self.recover(QueryError(f"{operator.text} at {_col(operator.start)} needs a term after it", operator.start))
            return False
        return True

    def conjunction(self, field: str | None, depth: int) -> Node:
        operand = self.unary if self.syntax.and_first else self.disjunction
        ends = (_EOF, _RPAREN, _OR) if self.syntax.and_first else (_EOF, _RPAREN)
        parts = [operand(field, depth)]
        while self.peek().kind not in ends:
            if self.peek().kind == _AND and not self.has_operand(self.advance()):
                break
            parts.append(operand(field, depth))
        return _and(parts)

    def disjunction(self, field: str | None, depth: int) -> Node:
        operand = self.conjunction if self.syntax.and_first else self.unary
        parts = [operand(field, depth)]
        while self.peek().kind == _OR and self.has_operand(self.advance()):
            parts.append(operand(field, depth))
        return _or(parts)

    def unary(self, field: str | None, depth: int) -> Node:
        if self.peek().kind == _NOT:
            operator = self.advance()
            if not self.has_operand(operator):
                return ANYTHING  # lenient: a NOT of nothing excludes nothing
            self.check_depth(operator, depth)
            return _not(self.unary(field, depth + 1))
        return self.primary(field, depth)

    def check_depth(self, token: _Token, depth: int) -> None:
        if depth >= MAX_DEPTH:
            raise QueryError(f"query nests too deeply at {_col(token.start)} (at most {MAX_DEPTH} levels)", token.start)

    def primary(self, field: str | None, depth: int) -> Node:
        token = self.advance()
        if token.kind == _LPAREN:
            return self.group(token, field, depth)
        if token.kind == _RPAREN:
            return self.recover(
                QueryError(f"unbalanced parenthesis: ')' at {_col(token.start)} has no matching '('", token.start)
            )
        if token.kind in (_AND, _OR) and not self.lenient:
            raise QueryError(f"{token.text} at {_col(token.start)} needs a term before it", token.start)
        if token.kind == _FIELD:
            return self.fielded(token, depth)
        try:
            if field is None or field in self.syntax.text_fields:
                return _term(token, field)
            return self.syntax.read_filter(token, field)
        except QueryError as error:
            return self.recover(error)

    def group(self, token: _Token, field: str | None, depth: int) -> Node:
        """`( ... )`, its opening parenthesis already read."""
        self.check_depth(token, depth)
        if self.peek().kind == _RPAREN:
            self.advance()
            return self.recover(QueryError(f"empty parentheses at {_col(token.start)}", token.start))
        unclosed = QueryError(f"unbalanced parenthesis: '(' at {_col(token.start)} is never closed", token.start)
        if self.peek().kind == _EOF:
            return self.recover(unclosed)
        node = self.expression(field, depth + 1)
        if self.peek().kind != _RPAREN:
            self.recover(unclosed)  # lenient: closed by the end of the query
        else:
            self.advance()
        return node

    def fielded(self, token: _Token, depth: int) -> Node:
        name = token.text.lower()
        fields = self.syntax.fields
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"did you mean '{close[0]}:'? " if close else ""
            unknown = QueryError(
                f"unknown field '{token.text}:' at {_col(token.start)}; {hint}(known: {', '.join(fields)})",
                token.start,
            )
            value = self.peek()
            if self.lenient and value.start == token.end and value.kind not in (_EOF, _RPAREN, _AND, _OR):
                self.unary(None, depth + 1)  # the field and its value are both left out
            return self.recover(unknown)
        value = self.peek()
        if value.start != token.end or value.kind in (_EOF, _RPAREN, _AND, _OR):
            example = f", e.g. {_EXAMPLES[name]}" if name in _EXAMPLES else ""
            return self.recover(
                QueryError(f"{name}: at {_col(token.start)} needs a value right after the colon{example}", token.start)
            )
        self.check_depth(token, depth)
        parts = [self.unary(name, depth + 1)]
        # `type:post|comment`: alternatives glued to the value by '|' share its field.
        while self.glued_alternative():
            self.advance()
            parts.append(self.unary(name, depth + 1))
        return _or(parts)

    def glued_alternative(self) -> bool:
        bar, after = self.tokens[self.i], self.tokens[min(self.i + 1, len(self.tokens) - 1)]
        return (
            bar.kind == _OR
            and bar.text == "|"
            and bar.start == self.tokens[self.i - 1].end
            and after.start == bar.end
            and after.kind in (_WORD, _PHRASE)
        )


# --- atoms --------------------------------------------------------------------


def _term(token: _Token, field: str | None) -> Term:
    if token.kind == _PHRASE:
        body, shown, is_phrase = token.text.strip(), f'"{token.text}"', True
    else:
        body, shown, is_phrase = token.text, token.text, False
    prefix, suffix = body.startswith("*"), body.endswith("*")
    stem = body.strip("*")
    where = _col(token.start)
    if not stem.strip():
        if prefix or suffix:
            raise QueryError(f"a lone * at {where} would match everything; attach it to a word, e.g. respon*", token.start)
        raise QueryError(f"empty quotes at {where}", token.start)
    if "*" in stem:
        raise QueryError(f"'*' in {shown} at {where} can only start or end a word, e.g. respon* or *soft", token.start)
    if stem != stem.strip():
        raise QueryError(f"the * in {shown} at {where} must touch a word, e.g. \"never respond*\"", token.start)
    return Term(normalize(stem), field, prefix, suffix, is_phrase, raw=shown)


def _filter(token: _Token, field: str) -> Filter:
    raw = token.text.strip()
    where = f"(got '{raw}' at {_col(token.start)})"
    if "*" in raw:
        raise QueryError(f"{field}: takes no wildcards {where}", token.start)
    if field == "rating":
        m = _RATING.fullmatch(raw)
        low, high = RATING_RANGE
        if not m or not low <= float(m.group(2)) <= high:
            raise QueryError(f"rating needs a number 1-5, e.g. rating:<=2 or rating:5 {where}", token.start)
        return Filter("rating", m.group(1) or "=", float(m.group(2)), raw=raw)
    if field == "type":
        value = raw.lower()
        if value not in KINDS:
            raise QueryError(f"type must be one of {', '.join(KINDS)} {where}", token.start)
    elif field == "source":
        value = raw.lower()
        if not _SOURCE.fullmatch(value):
            raise QueryError(f"source needs a connector name such as reddit or g2 {where}", token.start)
    elif field == "lang":
        value = normalize_language(raw)
        if not _LANG.fullmatch(value):
            raise QueryError(f"lang needs a language code such as en or pt-BR {where}", token.start)
    elif field == "site":
        value = normalize_site(raw)
        if not _SITE.fullmatch(value):
            raise QueryError(f"site needs a domain such as example.com or a subreddit such as r/crm {where}", token.start)
    else:
        value = normalize_author(raw)
        if not value:
            raise QueryError(f"author needs an account name {where}", token.start)
    return Filter(field, "=", value, raw=raw)


def _verbatim(token: _Token, field: str) -> Filter:
    return Filter(field, "=", token.text, raw=token.text)


_RULES = _Syntax(FIELDS, TEXT_FIELDS, _FIELD_PREFIX, False, _filter)
