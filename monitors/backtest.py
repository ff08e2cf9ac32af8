"""`earful backtest`: what edited rules would have done to the mentions already stored.

Each stored mention is classified again exactly as a run classifies it
(`runner.classify`: brand accounts, the monitor's packs, destinations, and
the router's ticket rule) and compared with the matches stored when earful
found it. Nothing is sent or written: the state is opened read-only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from .config import Config
from .routing import Router
from .runner import classify
from .store import Store
from .store.search import StoredMention


@dataclass(frozen=True)
class Change:
    """One mention whose rules differ: `before` as stored, `after` with the rules under test."""

    stored: StoredMention
    before: tuple[str, ...]
    after: tuple[str, ...]
    destinations: tuple[str, ...]  # where it would alert now

    @property
    def gained(self) -> tuple[str, ...]:
        return tuple(rule for rule in self.after if rule not in self.before)

    @property
    def lost(self) -> tuple[str, ...]:
        return tuple(rule for rule in self.before if rule not in self.after)


@dataclass
class Backtest:
    replayed: int = 0
    unknown_monitors: Counter = field(default_factory=Counter)  # mentions of monitors no longer configured
    before: Counter = field(default_factory=Counter)  # rule -> mentions it matched at the time
    after: Counter = field(default_factory=Counter)  # rule -> mentions it matches now
    changes: list[Change] = field(default_factory=list)

    @property
    def newly_alerting(self) -> list[Change]:
        return [c for c in self.changes if not c.before]

    @property
    def no_longer_alerting(self) -> list[Change]:
        return [c for c in self.changes if not c.after]

    @property
    def rules_changed(self) -> list[Change]:
        """Matched then and now, but by other rules."""
        return [c for c in self.changes if c.before and c.after]

    def per_rule(self) -> list[tuple[str, int, int, int, int]]:
        """(rule, matched then, matches now, newly, no longer) for every rule seen either way."""
        gained = Counter(rule for c in self.changes for rule in c.gained)
        lost = Counter(rule for c in self.changes for rule in c.lost)
        rules = sorted(set(self.before) | set(self.after))
        return [(rule, self.before[rule], self.after[rule], gained[rule], lost[rule]) for rule in rules]


def backtest(config: Config, store: Store, since: datetime) -> Backtest:
    """Replay the mentions found since `since` through `config`'s rules."""
    result = Backtest()
    route = Router(config)
    stored_matches = store.matches_found_since(since)
    for stored in store.mentions_found_since(since):
        monitor = config.monitors.get(stored.monitor)
        if monitor is None:
            result.unknown_monitors[stored.monitor] += 1
            continue
        result.replayed += 1
        before = tuple(dict.fromkeys(m.qualified_rule for m in stored_matches.get(stored.mention.key, ())))
        mention, matches, destinations = classify(stored.mention, monitor, config)
        after = tuple(dict.fromkeys(m.qualified_rule for m in matches))
        result.before.update(before)
        result.after.update(after)
        if set(before) != set(after):
            result.changes.append(Change(stored, before, after, tuple(route(mention, destinations))))
    return result
