"""An in-memory connector for time-controlled tests of reply tracking and health.

Tests script it through `SOURCES[monitor]`: the mentions it will return,
the replies the brand made, whether it fails, and whether it can see
replies at all. It counts every `replies()` call, so tests can prove the
re-check back-off with request counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from earful.connectors.base import (
    Connector,
    ConnectorError,
    ConnectorOptions,
    FetchResult,
    ReplyStatus,
)
from earful.core import Mention


@dataclass
class Script:
    mentions: list[Mention] = field(default_factory=list)
    answers: dict[str, tuple[datetime, str]] = field(default_factory=dict)  # mention key -> (when, by)
    unsure: bool = False  # replies() answers "unknown" (a failed look), though the channel shows replies
    failing: bool = False
    reply_calls: list[tuple[str, datetime]] = field(default_factory=list)


SOURCES: dict[str, Script] = {}


class FakeOptions(ConnectorOptions):
    pass


class FakeConnector(Connector):
    name = "fake"
    sees_replies = True
    Options = FakeOptions

    @property
    def script(self) -> Script:
        return SOURCES.setdefault(self.context.monitor, Script())

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        if self.script.failing:
            raise ConnectorError("fake source is down (HTTP 503)", status=503)
        seen = set((cursor or {}).get("seen", []))
        new = [m for m in self.script.mentions if m.key not in seen]
        return FetchResult(mentions=new, cursor={"seen": sorted(seen | {m.key for m in new})}, requests=1)

    def replies(self, mention: Mention) -> ReplyStatus:
        self.script.reply_calls.append((mention.key, self.context.current_time()))
        if self.script.unsure:
            return ReplyStatus(answered=None)
        answer = self.script.answers.get(mention.key)
        now = self.context.current_time()
        if answer and answer[0] <= now:
            return ReplyStatus(answered=True, answered_at=answer[0], answered_by=answer[1], url="https://fake.example/reply")
        return ReplyStatus(answered=False)


class BlindConnector(FakeConnector):
    """A source whose pages do not show replies (a feed): it keeps the base `replies`."""

    name = "fakeblind"
    sees_replies = False
    replies = Connector.replies


CONNECTOR = FakeConnector
