"""Compiles every rule of every pack into one matcher that runs on each mention.

Cost per mention must not grow with the number of rules, so:

* Text is normalised into words separated by single spaces
  (`earful.rules.normalize`) and searched as " title \\n text ", and a
  keyword carries its own word boundaries: ``acme`` is " acme ",
  ``respon*`` is " respon", ``*soft`` is "soft ", ``*soft*`` is "soft".
  Finding the keyword in that string IS the match, with no boundary check
  per hit, and the newline keeps a phrase from spanning title and text.
* Each rule gets a *trigger set*: keywords one of which must be present for
  the rule to hold (for ``acme (broken OR refund)`` just "acme"). Every
  trigger keyword of every enabled rule goes into ONE Aho-Corasick
  automaton whose values are the rules it triggers, so one C-level pass
  over the text yields the candidate rules, whatever the number of rules.
  Words that only refine a rule ("broken", "refund") stay out of the
  automaton: they are the most common words, and every automaton hit costs
  Python work for every post, while they only need checking on the rare
  post that triggered their rule.
* Rules that can hold with no keyword (pure filters such as
  ``rating:<=2 source:g2``, pure negations) are indexed by the source, type
  or author they require when they require one; the rest (a short list)
  is evaluated on every mention.
* A candidate's boolean structure is compiled to one Python expression:
  ``C[0] in B and not C[1] in B and F.rating <= C[2]``, where B is the
  padded text, T the padded title, F the mention's metadata and C a table
  of constants. A word test is a C-level substring search with exactly the
  automaton's semantics. The generated code holds only indices into C,
  attribute names and operators chosen here; no text from a query reaches
  it.

`never_matches` finds rules that cannot match any mention (``acme -acme``,
``rating:<=2 rating:>=4``) so that `earful check` can report them.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable, Collection, Iterable, Sequence, Union

from earful.connectors.base import KINDS, Mention

from .models import Match, Rule, RulePack
from .normalize import language_matches, normalize, normalize_author, normalize_site, site_matches, url_host
from .query import RATING_RANGE, And, Atom, Filter, Node, Not, Or, QueryError, Term, atoms, parse

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


class _Facts:
    """A mention's metadata as filters compare it; the costly parts at most once."""

    __slots__ = ("mention", "source", "kind", "rating", "_author", "_sites")

    def __init__(self, mention: Mention):
        self.mention = mention
        self.source = mention.source.lower()
        self.kind = mention.kind
        self.rating = mention.rating
        self._author: str | None = None
        self._sites: tuple[str, ...] | None = None

    def author(self) -> str:
        if self._author is None:
            self._author = normalize_author(self.mention.author or "")
        return self._author

    def lang(self, wanted: str) -> bool:
        return language_matches(self.mention.language, wanted)

    def site(self, wanted: str) -> bool:
        """`Mention.site` or the URL's host: `site:reddit.com` and `site:r/crm`
        both hold for a post in r/crm."""
        if self._sites is None:
            found = (normalize_site(self.mention.site or ""), url_host(self.mention.url or ""))
            self._sites = tuple(s for s in found if s)
        return any(site_matches(s, wanted) for s in self._sites)

    def indexed(self, field: str) -> str:
        """The value of an `_INDEXED` field, as the trigger index keys it."""
        return self.source if field == "source" else self.kind if field == "type" else self.author()


_INDEXED = ("source", "type", "author")  # equality filters that can select candidate rules
_PYTHON_OPS = {"=": "==", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_FILTER_CODE = {
    "source": "F.source == C[{}]",
    "type": "F.kind == C[{}]",
    "author": "F.author() == C[{}]",
    "lang": "F.lang(C[{}])",
    "site": "F.site(C[{}])",
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
    """Turns rule trees into Python functions `test(B, T, F) -> bool`."""

    def __init__(self) -> None:
        self.constants: list[str | float] = []
        self.positions: dict[str | float, int] = {}
        self.namespace: dict[str, object] = {"C": self.constants, "__builtins__": {}}

    def constant(self, value: str | float) -> int:
        if value not in self.positions:
            self.positions[value] = len(self.constants)
            self.constants.append(value)
        return self.positions[value]

    def expression(self, node: Node) -> str:
        if isinstance(node, Term):
            if not node.text:
                return "False"
            return f"C[{self.constant(keyword(node))}] in {'T' if node.field == 'title' else 'B'}"
        if isinstance(node, Filter):
            index = self.constant(node.value)
            if node.field == "rating":
                return f"(F.rating is not None and F.rating {_PYTHON_OPS[node.op]} C[{index}])"
            return _FILTER_CODE[node.field].format(index)
        if isinstance(node, Not):
            return f"not ({self.expression(node.child)})"
        joiner = " and " if isinstance(node, And) else " or "
        return "(" + joiner.join(map(self.expression, node.children)) + ")"

    def function(self, expression: str) -> Callable[[str, str, _Facts], bool]:
        return eval(f"lambda B, T, F: {expression}", self.namespace)  # noqa: S307 - see module docstring


@dataclass(frozen=True)
class _Parsed:
    pack: str
    index: int
    rule: Rule
    query: Node


@dataclass(frozen=True)
class _Compiled:
    pack: str
    rule: Rule

    def verdict(self, mention_key: str) -> Match:
        rule = self.rule
        return Match(
            mention_key=mention_key,
            rule_id=rule.id,
            pack=self.pack,
            labels=rule.labels,
            severity=rule.severity,
            destinations=rule.notify,
            reply_within=rule.reply_within,
            escalate=rule.escalate,
        )


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
        tests: list[Callable[[str, str, _Facts], bool]] = []
        members: list[list[int]] = []
        by_key: dict[TriggerKey, list[int]] = {}
        always: list[int] = []
        for item in self._parsed:
            if not item.rule.enabled:
                continue
            rules.append(_Compiled(item.pack, item.rule))
            expression = codegen.expression(item.query)
            if expression not in group_of:
                group = group_of[expression] = len(tests)
                tests.append(codegen.function(expression))
                members.append([])
                keys = _triggers(item.query)
                if keys is None:
                    always.append(group)
                for key in keys or ():
                    by_key.setdefault(key, []).append(group)
            members[group_of[expression]].append(len(rules) - 1)
        self._rules = tuple(rules)
        self._tests = tuple(tests)
        self._members = tuple(map(tuple, members))
        self._always = tuple(always)
        self._by_value = {key: tuple(found) for key, found in by_key.items() if isinstance(key, tuple)}
        self._indexed_fields = tuple(f for f in _INDEXED if any(key[0] == f for key in self._by_value))
        self._automaton = None
        words = {key: tuple(found) for key, found in by_key.items() if isinstance(key, str)}
        if words:
            import ahocorasick  # C extension; only needed once rules are compiled

            automaton = ahocorasick.Automaton()
            for word, triggered in words.items():
                automaton.add_word(word, triggered)
            automaton.make_automaton()
            self._automaton = automaton

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
        title = normalize(mention.title) if mention.title else ""
        text = normalize(mention.text) if mention.text else ""
        both = f" {title} \n {text} "
        candidates = set(self._always)
        if self._automaton is not None:
            for _, triggered in self._automaton.iter(both):
                candidates.update(triggered)
        facts = _Facts(mention)
        for field in self._indexed_fields:
            candidates.update(self._by_value.get((field, facts.indexed(field)), ()))
        if not candidates:
            return []
        padded_title = f" {title} "
        matched: list[int] = []
        for group in candidates:
            if self._tests[group](both, padded_title, facts):
                matched.extend(self._members[group])
        matched.sort()
        rules = [self._rules[i] for i in matched]
        return [r.verdict(mention.key) for r in rules if packs is None or r.pack in packs]

    def dead_rules(self) -> list[RuleProblem]:
        """Rules (enabled or not) whose query can never match any mention;
        each message is the reason alone ("acme is both required and excluded")."""
        problems = []
        for item in self._parsed:
            reason = never_matches(item.query)
            if reason:
                problems.append(RuleProblem(item.pack, item.index, item.rule.id, reason))
        return problems


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
