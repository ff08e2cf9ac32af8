"""The contract between the delivery outbox and a destination.

The outbox hands a destination one `Alert` at a time. A destination either
returns the remote id of what it created (Slack `ts`, ticket number) or
raises `DeliveryError`; the outbox marks a row delivered only after a
return. Because a process can die between "the remote side accepted it" and
"we wrote that down", destinations that can search their own history
implement `find_delivered`, which the outbox calls before re-sending a row
whose previous attempt is in doubt.

Digests travel the same way: an `Alert` of kind `digest`, without
mentions, whose `extra` is the digest already rendered for the
destination's `digest_form` (the hub renders; it is stored in the outbox
row, so `extra` is plain JSON and images are base64):

* `slack`: `{"form": "slack", "message": {"text", "blocks", "metadata"}}`
  for the summary, or `{"form": "slack", "file": {"png", "filename",
  "title", "alt"}}` for its chart, a row of its own that follows the
  summary (`alert.thread` is the summary's remote id);
* `email`: `{"form": "email", "subject", "text", "html", "images": {cid:
  png}, "headers"}`;
* `console`: `{"form": "console", "headline", "summary", "parts",
  "footer", "alarm"}` (see `alerts.console.render_digest`).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from earful.core import Alert


class DeliveryError(Exception):
    """The destination did not accept the alert.

    `retry_after` (seconds) comes from the remote side (HTTP 429);
    `in_doubt` says the remote side may have acted on the request anyway (a
    timeout after sending), so the outbox asks `find_delivered` first next
    time; when
    `permanent` is set (a bad channel id, revoked token) retrying the same
    row cannot help, but the row is still kept, never dropped, so that an
    operator who fixes the config gets it delivered.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False,
                 in_doubt: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.in_doubt = in_doubt  # the request may have arrived (a timeout): reconcile before resending


class NotVerifiable(Exception):
    """Only a real post could prove this destination works (`earful test-alert NAME` sends one, marked as a test)."""


class DestinationOptions(BaseModel):
    """Options every destination accepts beside its own `type`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    base_url: str | None = Field(default=None, description="Override the API root (proxy, GovSlack, on-premise, tests).")
    timeout: float = Field(default=20.0, gt=0, le=600)
    max_per_run: int | None = Field(default=30, ge=1, description="Flood control: alerts per run; the rest become one summary.")
    max_per_hour: int | None = Field(default=None, ge=1, description="Flood control: alerts per rolling hour.")


class Destination:
    """Base class: subclasses set `type`, `Options` and implement `deliver`."""

    type: ClassVar[str] = ""
    Options: ClassVar[type[DestinationOptions]] = DestinationOptions
    digest_form: ClassVar[str | None] = None  # the digest rendering it takes (slack, email, console); None: none
    # A ticket is work to do: an item the brand had already answered when earful found it is
    # none, so ticket systems set this and the hub enqueues only unanswered items for them.
    unanswered_only: ClassVar[bool] = False

    def __init__(self, name: str, options: DestinationOptions):
        self.name = name
        self.options = options

    def deliver(self, alert: Alert) -> str:  # pragma: no cover - interface
        """Send `alert`; return the remote id. Raise DeliveryError on failure."""
        raise NotImplementedError

    def update(self, remote_id: str, alert: Alert, note: str) -> str | None:
        """Edit an earlier delivery in place (Slack: chat.update) to add `note`,
        e.g. "answered by @acme after 37 min". Returns None when this
        destination cannot edit what it sent (the note is then lost for it,
        which is why reply tracking also records it in state.db)."""
        return None

    def find_delivered(self, alert: Alert, since: datetime) -> str | None:
        """The remote id of an earlier delivery of `alert.key`, if the
        destination can tell; None when not found or not searchable."""
        return None

    def verify(self) -> str:
        """Prove the credentials and the target work, without posting anything (`earful check --online`).

        Returns what was confirmed, e.g. "bot earful in workspace Acme; channel #support (C0123)";
        raises DeliveryError when something would make a delivery fail, NotVerifiable when only a
        real post could tell.
        """
        raise NotVerifiable(f"{self.type} destinations cannot be verified without posting; "
                            f"`earful test-alert {self.name}` sends one marked test alert")

    def close(self) -> None:
        """Release clients; called once after delivery."""


def digest_content(destination: Destination, alert: Alert) -> dict[str, Any]:
    """The rendered digest `alert` carries, checked to be in `destination`'s form.

    A row rendered for another form (the destination's type was changed in
    cron.yaml after the digest was queued) cannot be sent as it is: a
    permanent error, so the row is kept for an operator to see.
    """
    content = alert.extra or {}
    if destination.digest_form is None or content.get("form") != destination.digest_form:
        raise DeliveryError(f"{destination.type} destination {destination.name!r} cannot send a digest rendered for "
                            f"{content.get('form') or 'nothing'}", permanent=True)
    return content


def decode_png(data: str) -> bytes:
    """An image of a digest's content (base64 in the outbox row) as PNG bytes."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise DeliveryError(f"the digest's image is not valid base64: {exc}", permanent=True) from None
