"""Which destinations an item goes to: the rules' choice, less those that do not want it.

Rules (or the monitor's `notify`) name destinations. A ticket system
(`unanswered_only` on its destination class: Jira, Zendesk, GitHub issues)
tracks work to do, and an item the brand had already answered when earful
found it is none: it goes to the other destinations only, where its alert
says "already answered by ...". Store.ingest asks `Router` inside the
transaction that stores the mention and enqueues its outbox rows, so what
was decided and what was stored can never disagree, and a re-run decides
the same again.
"""

from __future__ import annotations

import logging
from typing import Sequence

from earful import alerts
from earful.core import Match, Mention

from .config import Config, MonitorConfig

log = logging.getLogger("earful.routing")


def destinations_for(matches: Sequence[Match], monitor: MonitorConfig, config: Config) -> list[str]:
    """Every destination the matches name (a rule's own `notify`, else the monitor's or the default), each once."""
    default = monitor.common.notify or config.settings.defaults.notify
    found: dict[str, None] = {}
    for match in matches:
        found.update(dict.fromkeys(match.destinations or default))
    return list(found)


def already_answered(mention: Mention) -> bool:
    """The source showed the brand's reply when earful found it (unknown is not answered)."""
    return mention.brand_replied is True


class Router:
    """`Router(config)(mention, destinations)`: the destinations that get an outbox row for `mention`."""

    def __init__(self, config: Config):
        self.config = config
        self._unanswered_only: dict[str, bool] = {}

    def __call__(self, mention: Mention, destinations: Sequence[str]) -> list[str]:
        if not already_answered(mention):
            return list(destinations)
        return [name for name in destinations if not self.unanswered_only(name)]

    def unanswered_only(self, name: str) -> bool:
        """Whether destination `name` takes unanswered items only. A name not
        configured, or whose type cannot load, keeps its rows: delivery then
        reports the problem instead of the item vanishing silently."""
        if name not in self._unanswered_only:
            spec = self.config.destinations.get(name)
            try:
                wanted = spec is not None and alerts.load(spec.type).unanswered_only
            except Exception:  # noqa: BLE001 - a broken plugin is delivery's error to report
                log.debug("cannot load destination type of %s", name, exc_info=True)
                wanted = False
            self._unanswered_only[name] = bool(wanted)
        return self._unanswered_only[name]
