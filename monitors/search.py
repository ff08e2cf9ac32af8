"""`earful search`: stored mentions that a rule-language query matches.

The answer must be exactly what the query means in a rule, so the rules
engine decides every result. The full-text index only narrows what the
engine looks at: from the query's AST, connectors' pushdown derives the
words every match must contain (`all_words_queries`, which only ever
widens), and those words, normalised as the engine normalises them, become
the FTS5 expression. A query with no such words (`rating:<=2`) is tested on
every mention of the window.
"""

from __future__ import annotations

from datetime import datetime

from earful.connectors.pushdown import all_words_queries
from earful.core.normalize import normalize
from earful.rules.engine import Matcher
from earful.rules.models import Rule, RulePack

from .store import Store
from .store.search import StoredMention


def compile_query(query: str) -> Matcher:
    """The query as a one-rule matcher; `RuleCompileError` (its problems name the column) when it is wrong."""
    return Matcher.compile([RulePack(name="search", rules=(Rule(id="search", query=query),))])


def required_words(query: str) -> str | None:
    """An FTS5 expression that every mention matching `query` satisfies, or None when nothing narrows it.

    Only plain ASCII words are kept: they are exactly the index's tokens of
    ASCII text (the store hands every other text to the engine regardless),
    and a word dropped only widens the search.
    """
    try:
        searches = all_words_queries(query)
    except ValueError:  # an alternative with no plain word, or too many combinations
        return None
    alternatives = []
    for search in searches:
        words = [w for w in dict.fromkeys(normalize(search).split()) if w.isascii() and w.isalnum()]
        if not words:
            return None
        alternatives.append(" AND ".join(f'"{word}"' for word in words))
    return " OR ".join(f"({alternative})" for alternative in alternatives)


def search(store: Store, query: str, since: datetime) -> list[StoredMention]:
    """Mentions posted since `since` (found, where the source gives no time) that `query` matches, newest first."""
    matcher = compile_query(query)
    return [stored for stored in store.search_candidates(since, required_words(query)) if matcher.match(stored.mention)]
