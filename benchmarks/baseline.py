"""The naive matcher every small bot uses: one compiled regex per rule, tried in a loop.

It is a faithful translation of earful's query language, so that its match
sets can be compared with the engine's post by post:

* the text is reduced once per post exactly as earful reduces it
  (`earful.core.normalize.normalize`: case, accents, punctuation), title
  and text on two lines;
* each rule becomes ONE regex over that document, anchored at its start:
  every word or phrase is a look-ahead (`(?=.*?(?<!\\S)never respond)`), AND
  is concatenation, OR alternation, NOT a negative look-ahead; `title:`
  terms look only at the first line; wildcards drop the boundary on their
  side;
* field filters (`type:review`, `rating:<=2`, `-source:hackernews`, ...)
  are plain comparisons on the post's metadata, checked before the regex.
  The translation accepts them at the top level of a rule only (possibly
  negated or OR-ed together, as in `type:post|comment`), which is how the
  generated rules use them; anything else raises.

Matching a post costs one regex search per rule, so it grows linearly with
the number of rules: the cost earful's single automaton avoids.
"""

from __future__ import annotations

import operator
import re
from typing import Callable, Sequence
from urllib.parse import urlsplit

from earful.core import Mention
from earful.core.normalize import normalize
from earful.core.query import And, Filter, Node, Not, Or, Term, parse
from earful.rules.models import RulePack

_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def _term(node: Term, comment: bool) -> str:
    """A look-ahead for one word or phrase; on a comment, unfielded words skip the title line
    (a comment's title is its thread's, as in the engine)."""
    body = re.escape(node.text)
    left = "" if node.prefix_wildcard else r"(?<!\S)"
    right = "" if node.suffix_wildcard else r"(?!\S)"
    scope = "[^\n]*?" if node.field == "title" else ("[^\n]*\n.*?" if comment else ".*?")
    return f"(?={scope}{left}{body}{right})"


def _regex(node: Node, comment: bool = False) -> str:
    if isinstance(node, Term):
        return _term(node, comment) if node.text else "(?!)"
    if isinstance(node, Not):
        return f"(?!{_regex(node.child, comment)})"
    if isinstance(node, And):
        return "".join(_regex(child, comment) for child in node.children)
    if isinstance(node, Or):
        return "(?:" + "|".join(_regex(child, comment) for child in node.children) + ")"
    raise ValueError(f"the baseline takes field filters only at the top level of a rule, not {node}")


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".").removeprefix("www.")
    except ValueError:
        return ""


def _filter(node: Filter) -> Callable[[Mention], bool]:
    value = node.value
    if node.field == "rating":
        compare = _OPS[node.op]
        return lambda m: m.rating is not None and compare(m.rating, value)
    if node.field == "source":
        return lambda m: m.source.lower() == value
    if node.field == "type":
        return lambda m: m.kind == value
    if node.field == "author":
        return lambda m: m.author.strip().casefold().lstrip("@").removeprefix("/u/").removeprefix("u/") == value
    if node.field == "lang":
        def lang(m: Mention) -> bool:
            code = (m.language or "").strip().casefold().replace("_", "-")
            return bool(code) and (code == value or code.startswith(f"{value}-"))
        return lang
    if node.field == "site":
        def site(m: Mention) -> bool:
            raw = (m.site or "").strip().casefold()
            if raw.startswith(("r/", "/r/")):
                named = raw.removeprefix("/").removeprefix("r/").strip("/")
            else:
                named = raw.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
                named = named.rstrip(".").removeprefix("www.")
            return any(h and (h == value or h.endswith(f".{value}")) for h in (named, _host(m.url or "")))
        return site
    raise ValueError(f"unknown field {node.field}")


def _is_filter(node: Node) -> bool:
    if isinstance(node, Filter):
        return True
    if isinstance(node, Not):
        return _is_filter(node.child)
    return isinstance(node, Or) and all(_is_filter(c) for c in node.children)


def _check(node: Node) -> Callable[[Mention], bool]:
    if isinstance(node, Filter):
        return _filter(node)
    if isinstance(node, Not):
        inner = _check(node.child)
        return lambda m: not inner(m)
    parts = [_check(c) for c in node.children]  # an Or of filters
    return lambda m: any(p(m) for p in parts)


class NaiveMatcher:
    """`match(mention)` -> [(pack, rule id)] of matching enabled rules, in pack then rule order."""

    def __init__(self, packs: Sequence[RulePack]):
        self.rules: list[tuple[str, str, re.Pattern[str], re.Pattern[str], tuple[Callable[[Mention], bool], ...]]] = []
        for pack in packs:
            for rule in pack.rules:
                if not rule.enabled:
                    continue
                tree = parse(rule.query)
                parts = tree.children if isinstance(tree, And) else (tree,)
                checks = tuple(_check(p) for p in parts if _is_filter(p))
                text = [p for p in parts if not _is_filter(p)]
                post = re.compile("".join(_regex(p) for p in text), re.S)
                comment = re.compile("".join(_regex(p, comment=True) for p in text), re.S)
                self.rules.append((pack.name, rule.id, post, comment, checks))

    def match(self, mention: Mention) -> list[tuple[str, str]]:
        document = f"{normalize(mention.title or '')}\n{normalize(mention.text or '')}"
        on_comment = mention.kind in ("comment", "reply") and bool(mention.title)
        found = []
        for pack, rule_id, post, comment, checks in self.rules:
            regex = comment if on_comment else post
            if all(check(mention) for check in checks) and regex.match(document):
                found.append((pack, rule_id))
        return found
