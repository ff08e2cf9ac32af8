"""Compiles every rule of every pack into one matcher that runs on each mention.

Cost per mention must not grow with the number of rules, so:

* Title and text are normalised once, together, into words separated by
  single spaces (`earful.core.normalize.normalize_pair`) and searched as
  " title \\x01 text ", and a keyword carries its own word boundaries:
  ``acme`` is " acme ", ``respon*`` is " respon", ``*soft`` is "soft ",
  ``*soft*`` is "soft". Finding the keyword in that string IS the match,
  with no boundary check per hit, and the separator keeps a phrase from
  spanning title and text.
* Every keyword of every enabled rule (text keywords; `title:` words are
  searched in the title alone) has a number and sits in ONE Aho-Corasick
  automaton. One pass over the text gives the set S of the numbers of the
  keywords present, built in C (`set(map(itemgetter(1), automaton.iter(text)))`),
  so a hit costs no Python work, however common the word.
* Each rule gets a *trigger set*: keywords one of which must be present for
  the rule to hold (for ``acme (broken OR refund)`` just "acme"). For each
  trigger keyword, one generated function tests every rule it triggers;
  only the functions of the trigger keywords in S run, so the work per
  mention follows the rules its words select, not the number of rules.
* Rules that can hold with no keyword (pure filters such as
  ``rating:<=2 source:g2``, pure negations) are indexed by the source, type
  or author they require when they require one; the rest (a short list)
  is evaluated on every mention.
* A rule's boolean structure is compiled to one Python expression:
  ``(4 in S or 9 in S) and not (12 in S) and M.rating <= C[2]``, where S is
  the set above, T the padded title, M the mention and C a table of
  constants. A word test is a set lookup, a title word a substring search
  in T, with exactly the automaton's semantics; inside a trigger keyword's
  function a top-level test of that keyword is left out (it is known to
  hold). Rules with the same query share one test. The generated code holds
  only numbers, indices into C, attribute names and operators chosen here;
  no text from a query reaches it.

`never_matches` finds rules that cannot match any mention (``acme -acme``,
``rating:<=2 rating:>=4``) so that `earful check` can report them.
"""

from __future__ import annotations

import dataclasses
import operator
import types
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, Sequence, Union

from earful.core import KINDS, Match, Mention
from earful.core.normalize import (
    SEPARATOR,
    language_matches,
    normalize_author,
    normalize_pair,
    normalize_site,
    site_matches,
    url_host,
)
from earful.core.query import (
    RATING_RANGE,
    And,
    Atom,
    Filter,
    Node,
    Not,
    Or,
    QueryError,
    Term,
    atoms,
    parse,
)

from .models import Rule, RulePack

MAX_SEARCH_ATOMS = 14  # never_matches tries assignments only for queries this small


@dataclass(frozen=True)
class RuleProblem:
    """Something wrong with rule number `index` (0-based) of `pack`."""

    pack: str
    index: int
    rule_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.pack or '<rules>'}: rule {self.index + 1} ({self.rule_id}): {self.message}"


class RuleCompileError(ValueError):
    """Rules that cannot be compiled; `problems` lists all of them."""

    def __init__(self, problems: Sequence[RuleProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(map(str, self.problems)))


def keyword(term: Term) -> str:
    """The search key for `term`: its words with a boundary space on each
    side that has no wildcard. Text is searched as " words of the text "."""
    return ("" if term.prefix_wildcard else " ") + term.text + ("" if term.suffix_wildcard else " ")


# --- matching -----------------------------------------------------------------


def _author(mention: Mention) -> str:
    return normalize_author(mention.author or "")


def _site(mention: Mention, wanted: str) -> bool:
    """`Mention.site` or the URL's host: `site:reddit.com` and `site:r/crm`
    both hold for a post in r/crm.

    A site that matches contains `wanted`, and the normalised site is part
    of the case-folded site, an ASCII URL's host part of the lower-cased URL;
    so most mentions need no URL parsing for most site rules.
    """
    site, url = mention.site or "", mention.url or ""
    if wanted in site.casefold() and site_matches(normalize_site(site), wanted):
        return True
    if wanted in url.lower() or not url.isascii():
        host = url_host(url)
        return bool(host) and site_matches(host, wanted)
    return False


def _indexed_value(mention: Mention, field: str) -> str:
    """The value of an `_INDEXED` field, as the trigger index keys it."""
    return mention.source.lower() if field == "source" else mention.kind if field == "type" else _author(mention)


_INDEXED = ("source", "type", "author")  # equality filters that can select candidate rules
_PYTHON_OPS = {"=": "==", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FILTER_CODE = {
    "source": "M.source.lower() == {}",
    "type": "M.kind == {}",
    "author": "_author(M) == {}",
    "lang": "_lang(M.language, {})",
    "site": "_site(M, {})",
}

TriggerKey = Union[str, tuple[str, str]]  # a keyword, or (field, value) of an `_INDEXED` filter


def _triggers(node: Node) -> frozenset[TriggerKey] | None:
    """Keys of which one must be present for `node` to hold, or None when
    `node` can hold with none of them (it must then be checked always)."""
    if isinstance(node, Term):
        return frozenset((keyword(node),)) if node.text else frozenset()
    if isinstance(node, Filter):
        return frozenset(((node.field, str(node.value)),)) if node.field in _INDEXED else None
    if isinstance(node, Not):
        return None
    found = [_triggers(child) for child in node.children]
    if isinstance(node, Or):
        return None if None in found else frozenset().union(*found)
    options = [s for s in found if s is not None]
    # Fewest keys; between equals prefer words, which are rarer than a source or type.
    return min(options, key=lambda s: (len(s), any(isinstance(k, tuple) for k in s))) if options else None


class _Codegen:
    """Turns rule trees into Python functions.

    In the generated code S is the set of ids of the keywords found in the
    mention's title and text, T the padded title, M the `Mention`. A word
    test is a set lookup (`7 in S`), a title word a substring search in T, a
    filter a comparison on M; other constants live in the table C.

    `checks` builds one function per trigger keyword. Rule packs are mostly
    templates repeated per brand, so many of those functions differ only in
    their numbers and strings: every such literal becomes a parameter with a
    default value (`_0`, `_1`, ...), each distinct shape is compiled once,
    and the functions are made from the shared code object with their own
    defaults (reading a default costs what reading a constant costs).
    """

    def __init__(self) -> None:
        self.constants: list[str | float] = []
        self.positions: dict[str | float, int] = {}
        self.keywords: dict[str, int] = {}  # keyword -> id, in first-use order
        self.namespace: dict[str, object] = {
            "C": self.constants, "_author": _author, "_lang": language_matches, "_site": _site, "__builtins__": {},
        }
        self._parameters: list[object] | None = None  # collecting literals as parameters (see `checks`)

    def constant(self, value: str | float) -> int:
        if value not in self.positions:
            self.positions[value] = len(self.constants)
            self.constants.append(value)
        return self.positions[value]

    def keyword_id(self, key: str) -> int:
        return self.keywords.setdefault(key, len(self.keywords))

    def _literal(self, value: str | float | int) -> str:
        """`value` in generated code: a parameter while collecting, else an
        int as itself and anything else as its place in C."""
        if self._parameters is not None:
            self._parameters.append(value)
            return f"_{len(self._parameters) - 1}"
        return str(value) if isinstance(value, int) else f"C[{self.constant(value)}]"

    def expression(self, node: Node, known: int | None = None) -> str:
        """Python for `node`; `known` is the id of a keyword known to be in
        the text, so a top-level condition on it is left out."""
        if known is not None:
            if self._is_keyword(node, known):
                return "True"
            if isinstance(node, And):
                rest = [child for child in node.children if not self._is_keyword(child, known)]
                if len(rest) < len(node.children):
                    return "(" + " and ".join(map(self.expression, rest)) + ")" if rest else "True"
        if isinstance(node, Term):
            if not node.text:
                return "False"
            if node.field == "title":
                return f"{self._literal(keyword(node))} in T"
            return f"{self._literal(self.keyword_id(keyword(node)))} in S"
        if isinstance(node, Filter):
            value = self._literal(float(node.value) if node.field == "rating" else str(node.value))
            if node.field == "rating":
                return f"(M.rating is not None and M.rating {_PYTHON_OPS[node.op]} {value})"
            return _FILTER_CODE[node.field].format(value)
        if isinstance(node, Not):
            return f"not ({self.expression(node.child)})"
        joiner = " and " if isinstance(node, And) else " or "
        return "(" + joiner.join(map(self.expression, node.children)) + ")"

    def _is_keyword(self, node: Node, ident: int) -> bool:
        return isinstance(node, Term) and bool(node.text) and node.field != "title" and self.keywords.get(keyword(node)) == ident

    def checks(self, selected: dict[int, list[tuple[Node, Sequence[int]]]]) -> tuple[Callable[..., None] | None, ...]:
        """For each keyword id that selects rules, a function
        `check(S, T, M, add)` that calls `add(rule number)` for each rule it
        selects whose query holds (rules sharing a query share the test);
        None for keywords that select nothing."""
        shapes: dict[str, int] = {}  # function source -> shape number
        made: list[tuple[int, int, tuple[object, ...]]] = []  # (keyword id, shape, defaults)
        for ident, groups in selected.items():
            self._parameters = []
            lines = []
            for query, members in groups:
                condition = self.expression(query, known=ident)
                adds = "; ".join(f"add({self._literal(rule)})" for rule in members)
                lines.append(f"    {adds}" if condition == "True" else f"    if {condition}: {adds}")
            parameters, self._parameters = self._parameters, None
            signature = "".join(f", _{i}" for i in range(len(parameters)))
            body = f"(S, T, M, add{signature}):\n" + "\n".join(lines)
            made.append((ident, shapes.setdefault(body, len(shapes)), tuple(parameters)))
        namespace = dict(self.namespace)
        source = "\n".join(f"def _{number}{body}" for body, number in shapes.items())
        exec(compile(source, "<earful rules>", "exec"), namespace)  # noqa: S102 - see module docstring
        found: list[Callable[..., None] | None] = [None] * len(self.keywords)
        for ident, shape, defaults in made:
            code = namespace[f"_{shape}"].__code__  # type: ignore[attr-defined]
            found[ident] = types.FunctionType(code, namespace, f"rules_{ident}", defaults)
        return tuple(found)

    def function(self, expression: str) -> Callable[[set, str, Mention], bool]:
        return eval(f"lambda S, T, M: {expression}", self.namespace)  # noqa: S307 - see module docstring


@dataclass(frozen=True)
class _Parsed:
    pack: str
    index: int
    rule: Rule
    query: Node


# `Match` is a frozen dataclass; building one through its __init__ costs about
# three times as much as filling its __dict__, and a busy post yields several.
# The fast path is taken only while Match keeps a plain __dict__ and its fields.
_MATCH_FIELDS = ("mention_key", "rule_id", "pack", "labels", "severity", "destinations", "reply_within", "escalate")
_FAST_MATCH = tuple(f.name for f in dataclasses.fields(Match)) == _MATCH_FIELDS and not hasattr(Match, "__slots__")
_new_object = object.__new__
_set_attribute = object.__setattr__


@dataclass(frozen=True)
class _Compiled:
    pack: str
    rule: Rule

    def fields(self) -> dict[str, Any]:
        """The verdict's fields except `mention_key`, in field order."""
        rule = self.rule
        return {
            "rule_id": rule.id,
            "pack": self.pack,
            "labels": rule.labels,
            "severity": rule.severity,
            "destinations": rule.notify,
            "reply_within": rule.reply_within,
            "escalate": rule.escalate,
        }


def _verdict(mention_key: str, fields: dict[str, Any]) -> Match:
    if _FAST_MATCH:
        match = _new_object(Match)
        _set_attribute(match, "__dict__", {"mention_key": mention_key, **fields})
        return match
    return Match(mention_key=mention_key, **fields)


_ids = operator.itemgetter(1)  # (end index, keyword id) -> keyword id
THREAD_KINDS = frozenset({"comment", "reply"})  # their title is the thread's, not theirs


def _nothing(text: str) -> tuple[()]:
    return ()


class Matcher:
    """All enabled rules of some packs, ready to match mentions.

    Build it with `Matcher.compile`; it is immutable afterwards and can be
    shared by every monitor of a run.
    """

    def __init__(self, parsed: Sequence[_Parsed]):
        self._parsed = tuple(parsed)
        codegen = _Codegen()
        rules: list[_Compiled] = []
        # Rules with the same query (templates copied between packs) share one
        # test, evaluated once per mention: a "group".
        group_of: dict[str, int] = {}
        queries: list[Node] = []
        members: list[list[int]] = []
        by_key: dict[TriggerKey, list[int]] = {}
        always: list[int] = []
        for item in self._parsed:
            if not item.rule.enabled:
                continue
            rules.append(_Compiled(item.pack, item.rule))
            expression = codegen.expression(item.query)
            if expression not in group_of:
                group = group_of[expression] = len(queries)
                queries.append(item.query)
                members.append([])
                keys = _triggers(item.query)
                if keys is None:
                    always.append(group)
                for key in keys or ():
                    by_key.setdefault(key, []).append(group)
            members[group_of[expression]].append(len(rules) - 1)
        self._fields = tuple(rule.fields() for rule in rules)
        self._packs = tuple(rule.pack for rule in rules)
        self._members = tuple(map(tuple, members))
        self._uses_title = any(" in T" in expression for expression in group_of)
        expressions = list(group_of)

        # Groups selected by a metadata value (source, type, author) or by
        # nothing at all get one test function each.
        self._by_value = {key: tuple(found) for key, found in by_key.items() if isinstance(key, tuple)}
        self._indexed_fields = tuple(f for f in _INDEXED if any(key[0] == f for key in self._by_value))
        self._always = tuple(always)
        tested = set(always).union(*self._by_value.values())
        self._tests = {group: codegen.function(expressions[group]) for group in sorted(tested)}

        # Groups selected by a keyword: one function per trigger keyword tests
        # every group it selects, knowing the keyword is there.
        words = {codegen.keyword_id(key): found for key, found in by_key.items() if isinstance(key, str)}
        # Comments are tested apart (see `_matching_comment`): keep what that needs.
        self._groups_by_word = {ident: tuple(found) for ident, found in words.items()}
        self._codegen, self._expressions = codegen, expressions
        self._full_tests: dict[int, Callable[..., bool]] = dict(self._tests)
        self._checks: tuple[Callable[..., None] | None, ...] = codegen.checks(
            {ident: [(queries[group], self._members[group]) for group in found] for ident, found in words.items()}
        )
        self._automaton = _automaton(codegen.keywords)
        self._iter = self._automaton.iter if self._automaton is not None else _nothing

    @classmethod
    def compile(cls, packs: Sequence[RulePack]) -> "Matcher":
        """Parse every rule (disabled ones too, so their errors show) and
        compile the enabled ones. Raises `RuleCompileError` listing every
        problem of every pack."""
        problems: list[RuleProblem] = []
        parsed: list[_Parsed] = []
        for pack in packs:
            first_index: dict[str, int] = {}
            for index, rule in enumerate(pack.rules):
                if rule.id in first_index:
                    problems.append(
                        RuleProblem(pack.name, index, rule.id, f"duplicate rule id (first used by rule {first_index[rule.id] + 1})")
                    )
                first_index.setdefault(rule.id, index)
                try:
                    parsed.append(_Parsed(pack.name, index, rule, parse(rule.query)))
                except QueryError as error:
                    problems.append(RuleProblem(pack.name, index, rule.id, f"query: {error.message}"))
        if problems:
            raise RuleCompileError(problems)
        return cls(parsed)

    def match(self, mention: Mention, packs: Collection[str] | None = None) -> list[Match]:
        """The verdicts of every enabled rule that matches `mention`, in pack
        order then rule order; only rules of `packs` when it is given."""
        indices = self._matching(mention)
        return self._verdicts(mention.key, indices, packs) if indices else indices

    def _matching(self, mention: Mention) -> list[int]:
        """Numbers of the enabled rules that match `mention`, ascending."""
        if mention.kind in THREAD_KINDS and mention.title:
            return self._matching_comment(mention)
        both = normalize_pair(mention.title or "", mention.text or "")
        # One C-level pass finds every keyword of every rule in the text.
        found = set(map(_ids, self._iter(both)))
        title = both[: both.index(SEPARATOR)] if self._uses_title else ""  # " title words "
        matched: set[int] = set()
        if found:
            add = matched.add
            for check in filter(None, map(self._checks.__getitem__, found)):
                check(found, title, mention, add)
        if self._tests:
            candidates = set(self._always)
            for field in self._indexed_fields:
                candidates.update(self._by_value.get((field, _indexed_value(mention, field)), ()))
            tests, members = self._tests, self._members
            for group in candidates:
                if tests[group](found, title, mention):
                    matched.update(members[group])
        return sorted(matched) if matched else []

    def _matching_comment(self, mention: Mention) -> list[int]:
        """A comment's title is its thread's title: context, not what the
        commenter wrote. Unfielded words are looked for in the text alone;
        `title:` still sees the thread title. (Else "Good question,
        following." under "How do I ... Acme?" would be a question about
        Acme.) Triggers may sit in the title, so every selected rule is
        tested in full here, without the trigger shortcut of `_matching`."""
        both = normalize_pair(mention.title, mention.text or "")
        cut = both.index(SEPARATOR)
        found_all = set(map(_ids, self._iter(both)))
        found_text = set(map(_ids, self._iter(both[cut:])))
        title = both[:cut]
        candidates: set[int] = set(self._always)
        for ident in found_all:
            candidates.update(self._groups_by_word.get(ident, ()))
        for field in self._indexed_fields:
            candidates.update(self._by_value.get((field, _indexed_value(mention, field)), ()))
        matched: set[int] = set()
        for group in candidates:
            test = self._full_tests.get(group)
            if test is None:
                test = self._full_tests[group] = self._codegen.function(self._expressions[group])
            if test(found_text, title, mention):
                matched.update(self._members[group])
        return sorted(matched)

    def _verdicts(self, key: str, indices: Sequence[int], packs: Collection[str] | None) -> list[Match]:
        fields = self._fields
        if packs is None:
            return [_verdict(key, fields[i]) for i in indices]
        rule_packs = self._packs
        return [_verdict(key, fields[i]) for i in indices if rule_packs[i] in packs]

    def dead_rules(self) -> list[RuleProblem]:
        """Rules (enabled or not) whose query can never match any mention;
        each message is the reason alone ("acme is both required and excluded")."""
        problems = []
        for item in self._parsed:
            reason = never_matches(item.query)
            if reason:
                problems.append(RuleProblem(item.pack, item.index, item.rule.id, reason))
        return problems


def _automaton(keywords: dict[str, int]) -> Any:
    """An Aho-Corasick automaton whose value for each keyword is its id; None without keywords."""
    if not keywords:
        return None
    import ahocorasick  # C extension; only needed once rules are compiled

    automaton = ahocorasick.Automaton()
    for word, ident in keywords.items():
        automaton.add_word(word, ident)
    automaton.make_automaton()
    return automaton


def matches_query(query: str, mention: Mention) -> bool:
    """Whether `query` matches `mention`; for tests and `earful check`.
    Raises `QueryError` for a bad query."""
    rule = Rule(id="query", query=query)
    return bool(Matcher([_Parsed("", 0, rule, parse(query))]).match(mention))


# --- rules that can never match -------------------------------------------------


def _implies(a: Term, b: Term) -> bool:
    """Every text where `a` is found also contains `b` (e.g. "acme crm" -> acme,
    acme -> acm*, title:acme -> acme)."""
    if not a.text or not b.text or (b.field is not None and a.field != b.field):
        return False
    return keyword(b) in keyword(a)


_RATING_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def _rating_conflict(yes: list[Filter], no: list[Filter]) -> str | None:
    """Whether some rating satisfies all of `yes` and none of `no`.

    Every condition is an interval, so testing the interval ends, the
    points between consecutive ends and the scale's ends is exhaustive.
    """
    if not yes:
        return None  # a mention without a rating satisfies every negation
    low, high = RATING_RANGE
    points = sorted({low, high, *(float(f.value) for f in yes + no if low <= float(f.value) <= high)})
    points += [(a + b) / 2 for a, b in zip(points, points[1:])]

    def holds(f: Filter, x: float) -> bool:
        return _RATING_OPS[f.op](x, float(f.value))

    if any(all(holds(f, x) for f in yes) and not any(holds(f, x) for f in no) for x in points):
        return None
    conditions = [str(f) for f in yes] + [f"-{f}" for f in no]
    return f"no rating from {low:g} to {high:g} fits {' and '.join(conditions)}"


def _conflict(assignment: dict[Atom, bool]) -> str | None:
    """Why no mention can make these atoms true/false together, or None.

    Only sure conflicts are reported: a query is called dead only when it is.
    """
    terms_yes = [a for a, v in assignment.items() if v and isinstance(a, Term)]
    terms_no = [a for a, v in assignment.items() if not v and isinstance(a, Term)]
    for a in terms_yes:
        for b in terms_no:
            if _implies(a, b):
                return f"every text with {a} also has {b}, which is excluded"
    by_field: dict[str, tuple[list[Filter], list[Filter]]] = {}
    for atom, value in assignment.items():
        if isinstance(atom, Filter):
            by_field.setdefault(atom.field, ([], []))[0 if value else 1].append(atom)
    for name, (yes, no) in by_field.items():
        if name in ("source", "type", "author") and len({f.value for f in yes}) > 1:
            return f"a mention has one {name}, so {yes[0]} and {yes[1]} cannot both hold"
        if name == "type" and not yes and {f.value for f in no} >= set(KINDS):
            return "every type is excluded"
        if name == "lang" and yes:
            chain = sorted((str(f.value) for f in yes), key=len)
            for shorter, longer in zip(chain, chain[1:]):
                if not language_matches(longer, shorter):
                    return f"a mention has one language, so lang:{shorter} and lang:{longer} cannot both hold"
            for f in no:
                if language_matches(chain[-1], str(f.value)):
                    return f"lang:{chain[-1]} is a form of {f}, which is excluded"
        if name == "site":
            for f in yes:
                for g in no:
                    if site_matches(str(f.value), str(g.value)):
                        return f"{f} is part of {g}, which is excluded"
        if name == "rating":
            reason = _rating_conflict(yes, no)
            if reason:
                return reason
    return None


def _value(node: Node, assignment: dict[Atom, bool]) -> bool | None:
    """`node` under a partial assignment: None while it still depends on unset atoms."""
    if isinstance(node, (Term, Filter)):
        return assignment.get(node)
    if isinstance(node, Not):
        inner = _value(node.child, assignment)
        return None if inner is None else not inner
    decisive = isinstance(node, Or)  # the child value that settles the node
    result: bool | None = not decisive
    for child in node.children:
        value = _value(child, assignment)
        if value is decisive:
            return decisive
        if value is None:
            result = None
    return result


class _Search:
    """Depth-first search for a consistent assignment that makes a query true.

    Conflicts only grow as atoms are added, so a branch stops at its first
    conflict; `reasons` keeps them to explain an unsatisfiable query.
    """

    BUDGET = 20_000

    def __init__(self, query: Node, free: list[Atom], fixed: dict[Atom, bool]):
        self.query, self.free, self.assignment = query, free, dict(fixed)
        self.reasons: list[str] = []
        self.steps = 0

    def satisfiable(self) -> bool | None:
        """True, False, or None when the budget ran out."""
        try:
            return self._extend(0)
        except _OutOfBudget:
            return None

    def _extend(self, i: int) -> bool:
        self.steps += 1
        if self.steps > self.BUDGET:
            raise _OutOfBudget
        reason = _conflict(self.assignment)
        if reason:
            self.reasons.append(reason)
            return False
        value = _value(self.query, self.assignment)
        if value is not None:
            return value
        atom = self.free[i]
        for choice in (True, False):
            self.assignment[atom] = choice
            if self._extend(i + 1):
                return True
        del self.assignment[atom]
        return False


class _OutOfBudget(Exception):
    pass


def _polarities(node: Node, positive: bool = True) -> Iterable[tuple[Atom, bool]]:
    if isinstance(node, (Term, Filter)):
        yield node, positive
    elif isinstance(node, Not):
        yield from _polarities(node.child, not positive)
    else:
        for child in node.children:
            yield from _polarities(child, positive)


def _required_literals(query: Node) -> tuple[dict[Atom, bool], str | None]:
    """Atoms the top level of `query` requires present or absent (`a -b` ...),
    and a reason if they already contradict each other."""
    literals: dict[Atom, bool] = {}
    for child in query.children if isinstance(query, And) else (query,):
        negated = isinstance(child, Not)
        atom = child.child if negated else child
        if isinstance(atom, (Term, Filter)):
            if literals.get(atom, not negated) == negated:
                return literals, f"{atom} is both required and excluded"
            if isinstance(atom, Term) and not atom.text and not negated:
                return literals, f"{atom} has no letters or digits, so it never matches"
            literals[atom] = not negated
    return literals, None


def never_matches(query: Node) -> str | None:
    """Why `query` can never match any mention, or None if it can (or if
    the query is too large to decide quickly: large queries are only
    checked for contradictions among their top-level conditions)."""
    literals, reason = _required_literals(query)
    reason = reason or _conflict(literals)
    if reason:
        return reason
    distinct = list(dict.fromkeys(atoms(query)))
    if len(distinct) > MAX_SEARCH_ATOMS:
        return None
    empty = {a: False for a in distinct if isinstance(a, Term) and not a.text}
    search = _Search(query, [a for a in distinct if a not in empty], empty)
    if search.satisfiable() is not False:
        return None
    if empty and _Search(query, distinct, {}).satisfiable():
        return f"{next(iter(empty))} has no letters or digits, so it never matches"
    if search.reasons:
        return search.reasons[0]
    seen = list(_polarities(query))
    both = [a for a, positive in seen if positive and (a, False) in seen]
    if both:
        return f"{both[0]} is both required and excluded"
    return "its conditions contradict each other"
