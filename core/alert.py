"""`Alert`: one actionable item for one destination.

The hub builds it from stored mentions and matches; every destination
turns it into a message. Digests, escalations, health, spike and flood
notices are alerts too (`kind`), so they travel the same outbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any

from .match import SEVERITY_ORDER, Match
from .mention import Mention


@dataclass(frozen=True)
class Alert:
    """One actionable item for one destination.

    `mentions` is the cluster: the first mention plus every duplicate found
    (crossposts, syndicated copies), so one message can list every place the
    item appeared. `key` is the idempotency key, stable across runs.
    """

    key: str
    cluster: str
    destination: str
    monitor: str
    mentions: tuple[Mention, ...]
    matches: tuple[Match, ...]
    created_at: datetime | None = None
    remote_id: str | None = None
    kind: str = "alert"  # alert | escalation | health | spike | flood | digest
    note: str | None = None  # a line shown with the alert ("SLA breached: no reply after 2h")
    thread: str | None = None  # remote id of an earlier message to answer under (Slack thread)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    timezone: tzinfo = timezone.utc  # the deployment's `timezone`: times are shown in it, as digests do

    @property
    def mention(self) -> Mention:
        """The representative mention (the first one seen)."""
        return self.mentions[0]

    @property
    def severity(self) -> str:
        return max((m.severity for m in self.matches), key=SEVERITY_ORDER.__getitem__, default="medium")

    @property
    def labels(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for match in self.matches:
            for label in match.labels:
                seen.setdefault(label, None)
        return tuple(seen)

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.qualified_rule for m in self.matches))
