"""The contract between a source and the rest of earful.

Every connector turns one source into `Mention`s, starting from an opaque
cursor it handed out on its previous run. The run loop stores the mentions
and the new cursor in one transaction, so a connector never needs to worry
about crashes: if anything after `fetch` fails, it is simply asked again
from the old cursor. This module imports nothing heavy, because the
scheduler imports it on every cron tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Mapping

from pydantic import BaseModel, ConfigDict, Field

from earful.core import Mention


@dataclass(frozen=True)
class FetchResult:
    """What one `fetch` produced.

    `cursor` is what the connector wants back next time; it is stored only
    together with the mentions. `not_modified` says the source answered
    "nothing changed" (HTTP 304), which is not the same as a source that
    suddenly returns an empty page: health checks treat them differently.
    `requests` counts HTTP requests made, for budgets and benchmarks.
    """

    mentions: list[Mention]
    cursor: dict[str, Any]
    not_modified: bool = False
    requests: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReplyStatus:
    """Whether the brand answered a mention; `answered=None` means unknown."""

    answered: bool | None
    answered_at: datetime | None = None
    answered_by: str | None = None
    url: str | None = None


class ConnectorError(Exception):
    """A source failed in a way that should fail this monitor's run only.

    The message must be understandable by an operator (name the URL or the
    endpoint, the status, what to check) and must never contain a secret.
    `retry_after` (seconds) is set when the source asked us to come back
    later (rate limits); the scheduler then skips the monitor until then.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class ConnectorOptions(BaseModel):
    """Options every network connector accepts, beside its own.

    Subclasses add their fields; unknown keys are errors so that a typo in
    cron.yaml is reported, not silently ignored.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(default=None, description="Override the API root, e.g. for a proxy or tests.")
    timeout: float = Field(default=20.0, gt=0, le=600,
                           description="Seconds for one HTTP exchange in total: connect, headers and the whole body.")
    max_response_mb: float = Field(default=8.0, gt=0, le=1024,
                                   description="Largest answer body read, in MB (decoded); a larger one fails the fetch.")
    user_agent: str = Field(default="earful/0.1 (+https://github.com/earful/earful)")


class RunResources:
    """Expensive things shared by every monitor of one run (a browser).

    `get(key, factory)` creates the resource on first use; the runner calls
    `close_all()` once at the end of the run, whatever happened, so a
    browser can never outlive the run that started it.
    """

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._closers: list[Any] = []

    def get(self, key: str, factory: Any, close: Any = None) -> Any:
        if key not in self._items:
            self._items[key] = factory()
            self._closers.append(close or getattr(self._items[key], "close", None))
        return self._items[key]

    def close_all(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            if closer is not None:
                try:
                    closer()
                except Exception:  # noqa: BLE001 - closing must never mask the run's outcome
                    pass
        self._items.clear()


class RequestBudget:
    """A monthly cap on requests to a paid API (X), kept in state.db.

    The runner loads what this month used so far and saves `used` after the
    run, whether the run succeeded or not, so failed runs count too. A
    connector calls `spend()` before each request; when the budget is gone
    it raises ConnectorError instead of overspending.
    """

    def __init__(self, monitor: str, period: str, limit: int | None, used: int = 0):
        self.monitor = monitor
        self.period = period
        self.limit = limit
        self.used = used
        self.spent_this_run = 0

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    def spend(self, requests: int = 1) -> None:
        if self.limit is not None and self.used + requests > self.limit:
            raise ConnectorError(
                f"monthly request budget exhausted ({self.used}/{self.limit} used in {self.period}); "
                "raise `monthly_budget` or wait for next month"
            )
        self.used += requests
        self.spent_this_run += requests


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector may know about the monitor it runs for.

    `resources` is shared by all monitors of one run; `budget` is this
    monitor's monthly request budget (None when the monitor sets none).
    """

    monitor: str
    query: str | None = None
    brand_accounts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    now: datetime | None = None
    resources: RunResources = field(default_factory=RunResources, compare=False)
    budget: RequestBudget | None = field(default=None, compare=False)

    def brand_names(self, source: str) -> set[str]:
        """The brand's account names on `source`, compared case-insensitively."""
        return {name.lower().lstrip("@") for name in self.brand_accounts.get(source, ())}

    def current_time(self) -> datetime:
        return self.now or datetime.now(timezone.utc)


class Connector:
    """Base class: subclasses set `name`, `Options`, and implement `fetch`.

    What a connector can do is declared, not guessed from which methods it
    overrides, so the hub, `earful check` and the docs read one truth:

    - `sees_replies`: `replies()` can tell whether the brand answered; when
      False a question on this channel opens as "unknown", never breached.
    - `can_reply`: it can post the brand's reply on the source.
    - `pushes_query`: the monitor's `query` narrows the source's own search.

    `replies` is optional; the default says "unknown", never "answered".
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type[ConnectorOptions]] = ConnectorOptions
    sees_replies: ClassVar[bool] = False
    can_reply: ClassVar[bool] = False
    pushes_query: ClassVar[bool] = False

    def __init__(self, options: ConnectorOptions, context: ConnectorContext):
        self.options = options
        self.context = context

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:  # pragma: no cover - interface
        raise NotImplementedError

    def replies(self, mention: Mention) -> ReplyStatus:
        return ReplyStatus(answered=None)

    def use_cursor(self, cursor: dict[str, Any] | None) -> None:
        """Hand the last stored cursor to a connector built only for `replies()`.

        Sources that cannot look replies up later (Telegram's getUpdates has
        no history) keep what they saw in the cursor; the default ignores it.
        """

    def verify(self) -> None:
        """Prove the credentials and endpoint work (`earful check --online`).

        Raise ConnectorError (with `status` 401/403 for rejected
        credentials). The default performs one first-run fetch and throws
        the result away; connectors with a cheap "who am I" call override it.
        """
        self.fetch(None)

    def close(self) -> None:
        """Release sessions or browsers; called once after the run."""
