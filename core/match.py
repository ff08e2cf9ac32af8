"""A rule's verdict on one mention, and the severity scale routing uses.

Rules produce `Match`es, the store keeps them, the hub routes by them and
destinations show them, so the type sits in core.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class Match:
    """A rule's verdict on one mention: what it is and where it should go."""

    mention_key: str
    rule_id: str
    pack: str
    labels: tuple[str, ...] = ()
    severity: str = "medium"
    destinations: tuple[str, ...] | None = None  # None: the monitor's `notify`
    reply_within: timedelta | None = None
    escalate: tuple[str, ...] | None = None

    @property
    def qualified_rule(self) -> str:
        return f"{self.pack}/{self.rule_id}" if self.pack else self.rule_id
