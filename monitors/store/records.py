"""What the store hands out and takes in: typed rows and the mention/match <-> row conversions.

The tables keep plain columns (ISO text for times, JSON text for lists), so
these conversions are the one place that knows the encoding; feature code
and outbox payloads use the same functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from earful.core import Match, Mention, iso, parse_time


@dataclass
class Recorded:
    """What `ingest` decided for one mention."""

    key: str
    outcome: str  # new | duplicate | clustered | updated
    cluster: str
    alerts: list[str] = field(default_factory=list)  # destinations newly enqueued


@dataclass
class OutboxRow:
    id: int
    key: str
    cluster: str
    destination: str
    monitor: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    remote_id: str | None
    created_at: datetime
    kind: str = "alert"
    payload: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "OutboxRow":
        return cls(
            id=row["id"], key=row["key"], cluster=row["cluster"], destination=row["destination"], monitor=row["monitor"],
            status=row["status"], attempts=row["attempts"], next_attempt_at=parse_time(row["next_attempt_at"]),
            last_attempt_at=parse_time(row["last_attempt_at"]), last_error=row["last_error"], remote_id=row["remote_id"],
            created_at=parse_time(row["created_at"]), kind=row.get("kind") or "alert",
            payload=json.loads(row["payload"]) if row.get("payload") else None,
        )


@dataclass(frozen=True)
class Query:
    """A tracked question or complaint (a row of `queries`): waiting for the brand's reply, or settled."""

    cluster: str
    item_key: str
    monitor: str
    source: str
    posted_at: datetime
    seen_at: datetime
    deadline: datetime
    sla: timedelta
    status: str  # open | answered | unknown | unanswered | late (found too late to track)
    checks: int
    next_check_at: datetime | None
    answered_at: datetime | None
    answered_by: str | None
    answer_url: str | None
    escalated_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Query":
        return cls(
            cluster=row["cluster"], item_key=row["item_key"], monitor=row["monitor"], source=row["source"],
            posted_at=parse_time(row["posted_at"]), seen_at=parse_time(row["seen_at"]), deadline=parse_time(row["deadline"]), sla=timedelta(seconds=row["sla_s"]),
            status=row["status"], checks=row["checks"] or 0, next_check_at=parse_time(row["next_check_at"]),
            answered_at=parse_time(row["answered_at"]), answered_by=row["answered_by"], answer_url=row["answer_url"],
            escalated_at=parse_time(row["escalated_at"]),
        )


MENTION_FIELDS = [f.name for f in fields(Mention) if f.name != "raw"]


def mention_to_row(mention: Mention) -> dict[str, Any]:
    row = {name: getattr(mention, name) for name in MENTION_FIELDS}
    row["created_at"] = iso(mention.created_at)
    row["author_is_brand"] = int(mention.author_is_brand)
    row["brand_replied"] = None if mention.brand_replied is None else int(mention.brand_replied)
    row["raw"] = json.dumps(dict(mention.raw), default=str, ensure_ascii=False)
    return row


def row_to_mention(row: dict[str, Any]) -> Mention:
    values = {name: row[name] for name in MENTION_FIELDS}
    values["created_at"] = parse_time(row["created_at"])
    values["author_is_brand"] = bool(row["author_is_brand"])
    values["brand_replied"] = None if row["brand_replied"] is None else bool(row["brand_replied"])
    values["raw"] = json.loads(row["raw"] or "{}")
    return Mention(**values)


def match_to_row(match: Match) -> dict[str, Any]:
    return {
        "item_key": match.mention_key,
        "pack": match.pack,
        "rule_id": match.rule_id,
        "labels": json.dumps(list(match.labels)),
        "severity": match.severity,
        "destinations": None if match.destinations is None else json.dumps(list(match.destinations)),
        "reply_within_s": None if match.reply_within is None else int(match.reply_within.total_seconds()),
        "escalate": None if match.escalate is None else json.dumps(list(match.escalate)),
    }


def row_to_match(row: dict[str, Any]) -> Match:
    def listed(value: str | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(json.loads(value))

    return Match(
        mention_key=row["item_key"],
        rule_id=row["rule_id"],
        pack=row["pack"],
        labels=tuple(json.loads(row["labels"])),
        severity=row["severity"],
        destinations=listed(row["destinations"]),
        reply_within=None if row["reply_within_s"] is None else timedelta(seconds=row["reply_within_s"]),
        escalate=listed(row["escalate"]),
    )
