"""The customer post and the alert the destination tests deliver.

Jira, Zendesk, GitHub, the webhook and email all turn the same complaint on
r/crm into a message; sharing it keeps their tests comparable (the same
item key, the same text) and leaves each test with only what its
destination adds.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from earful.core import Alert, Match, Mention

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
NOTE = "answered by acme_support after 37m"
BREACH = "SLA breached: no reply from the brand within 2h; deadline was 2026-11-20 12:00 UTC"


def mention(n: int = 1, **changes: Any) -> Mention:
    base = Mention(source="reddit", external_id=f"t3_{n}", url=f"https://www.reddit.com/r/crm/comments/{n}/acme/", author=f"customer{n}",
                   title="Acme support never responds", text="I asked three times on Facebook and nobody answered. Is Acme still alive?",
                   created_at=T0, site="r/crm")
    return base.replace(**changes)


def alert_to(destination: str, *mentions: Mention, severity: str = "high", labels: tuple[str, ...] = ("complaint", "question"),
             kind: str = "alert", note: str | None = None, thread: str | None = None, created_at: datetime = T0) -> Alert:
    """The alert for `mentions` (default: one `mention()`) as the outbox hands it to `destination`."""
    mentions = mentions or (mention(),)
    cluster = mentions[0].key
    key = f"{cluster}#escalation#{destination}" if kind == "escalation" else f"{cluster}#{destination}"
    match = Match(mention_key=cluster, rule_id="complaint", pack="acme", labels=labels, severity=severity)
    return Alert(key=key, cluster=cluster, destination=destination, monitor="reddit-acme", mentions=tuple(mentions), matches=(match,),
                 created_at=created_at, kind=kind, note=note, thread=thread)
