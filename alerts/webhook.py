"""The `webhook` destination: a signed JSON POST per alert, for anything else.

Use it to feed an incident tool, n8n / Zapier / Make, a data pipeline or
your own service. Every delivery is one HTTPS POST of this JSON body
(UTF-8, `Content-Type: application/json`), version 1:

    {
      "version": 1,
      "type": "alert",              # alert | escalation | update | health | summary | spike
      "key": "reddit:t3_abc#hooks", # the idempotency key (also the Idempotency-Key header)
      "cluster": "reddit:t3_abc",   # the item (a cluster of duplicate mentions)
      "destination": "hooks",       # this destination's name in cron.yaml
      "monitor": "reddit-acme",
      "severity": "high",           # low | medium | high | critical
      "labels": ["complaint", "question"],
      "rules": ["acme/complaint"],
      "note": null,                 # escalation: why; update: "answered by acme_support after 37m"
      "in_reply_to": null,          # update/escalation: the "key" of the original delivery
      "mentions": [                 # first the representative mention, then every duplicate
        {"source": "reddit", "url": "https://www.reddit.com/r/crm/comments/abc/",
         "author": "customer1", "author_is_brand": false, "title": "...", "text": "...",
         "created_at": "2026-11-20T10:00:00Z", "kind": "post", "rating": null,
         "brand_replied": null, "site": "r/crm"}
      ],
      "mentions_total": 1,          # mentions beyond the first 100 are counted, not listed
      "sent_at": "2026-11-20T10:03:12Z"
    }

`created_at` is null when the source gives no time; `rating` is a number
for reviews; `brand_replied` is true, false, or null (the channel cannot
tell). Texts are as written by their authors (up to 10,000 characters each):
escape them wherever you display them.

Headers, and how to verify them (the scheme of Stripe's and Slack's):

    Idempotency-Key:      the same value on every retry of one delivery: dedupe on it
    X-Earful-Event:       the body's "type"
    X-Earful-Timestamp:   Unix seconds when this attempt was signed
    X-Earful-Signature:   sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{raw body}")>

    expected = hmac.new(secret, f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(f"sha256={expected}", header) and abs(time.time() - int(timestamp)) < 300

Delivery: any 2xx is accepted. 5xx answers, 408, timeouts and refused
connections are retried inside the delivery (`retries`, default 2, after
`retry_backoff` seconds, doubling), each attempt freshly signed, then left to
the outbox's back-off. 429 defers the row by its Retry-After; 410 Gone means
the receiver retired the hook (permanent); other 4xx are permanent too.
Redirects are not followed (a redirected POST would lose its body). Because
webhook URLs often embed a token, messages show only scheme and host.

`update` POSTs `"type": "update"` with the note; its Idempotency-Key is the
original key plus a digest of the note, so a retried update is recognisable.
`find_delivered` returns None: the receiver, not earful, knows what arrived,
and the Idempotency-Key lets it drop the copy a crash-retry sends.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator

from earful.core import Alert

from . import tickets as tk
from .base import DeliveryError, Destination, DestinationOptions, NotVerifiable

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

VERSION = 1
MAX_MENTIONS = 100
TEXT_CHARS = 10_000
SIGNATURE_HEADER = "X-Earful-Signature"
TIMESTAMP_HEADER = "X-Earful-Timestamp"
EVENT_HEADER = "X-Earful-Event"
RESERVED = frozenset(h.lower() for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, EVENT_HEADER, "Idempotency-Key", "Content-Type",
                                         "Content-Length", "Host"))
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,100}$")


class WebhookOptions(DestinationOptions):
    """`type: webhook` in cron.yaml."""

    # Secrets must never be echoed, not even by str(ValidationError) in a traceback.
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["webhook"] = "webhook"
    url: str = Field(description="Where to POST; keep a URL with a token in it in the environment: ${ALERT_HOOK_URL}.")
    secret: SecretStr = Field(description="Shared HMAC secret: ${EARFUL_WEBHOOK_SECRET}.")
    retries: int = Field(default=2, ge=0, le=10, description="Retries inside one delivery on 5xx/timeouts.")
    retry_backoff: float = Field(default=0.5, ge=0, le=30, description="Seconds before the first retry; doubles.")
    headers: dict[str, SecretStr] = Field(default_factory=dict, description="Extra headers, e.g. Authorization: ${HOOK_AUTH}.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if not tk.http_url(value):
            raise ValueError("the webhook url must be an absolute http(s) URL")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str | None) -> str | None:
        if value is not None and not tk.http_url(value.strip()):
            raise ValueError(f"{value!r} is not an http(s) URL; base_url replaces the url's scheme and host")
        return value.strip() if value else None

    @field_validator("secret")
    @classmethod
    def _secret_present(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("the webhook secret is empty or shorter than 16 characters; is the environment variable set?")
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, header in value.items():
            if not _HEADER_NAME.match(name) or name.lower() in RESERVED:
                raise ValueError(f"cannot set the header {name!r}")
            if any(c in header.get_secret_value() for c in "\r\n"):
                raise ValueError(f"the header {name} contains a line break")
        return value

    @property
    def target(self) -> str:
        """`url`, with scheme and host replaced by base_url's when set."""
        if not self.base_url:
            return self.url
        base, url = urlsplit(self.base_url), urlsplit(self.url)
        return urlunsplit((base.scheme, base.netloc, url.path, url.query, ""))


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Earful-Signature value for `body` signed at `timestamp`."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, *, tolerance: float = 300, now: float | None = None) -> bool:
    """The receiver's check: the signature matches and the timestamp is fresh."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except (TypeError, ValueError):
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def payload(alert: Alert, destination: str, *, kind: str | None = None, note: str | None = None, in_reply_to: str | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    """The documented body (see the module docstring)."""
    mentions = [
        {
            "source": m.source,
            "url": m.url,
            "author": m.author,
            "author_is_brand": m.author_is_brand,
            "title": m.title[:TEXT_CHARS],
            "text": m.text[:TEXT_CHARS],
            "created_at": _iso(m.created_at),
            "kind": m.kind,
            "rating": m.rating,
            "brand_replied": m.brand_replied,
            "site": m.site,
        }
        for m in alert.mentions[:MAX_MENTIONS]
    ]
    return {
        "version": VERSION,
        "type": kind or alert.kind,
        "key": alert.key,
        "cluster": alert.cluster,
        "destination": destination,
        "monitor": alert.monitor,
        "severity": alert.severity,
        "labels": list(alert.labels),
        "rules": list(alert.rules),
        "note": note if note is not None else alert.note,
        "in_reply_to": in_reply_to,
        "mentions": mentions,
        "mentions_total": len(alert.mentions),
        "sent_at": _iso(now or datetime.now(timezone.utc)),
    }


class WebhookDestination(Destination):
    """POSTs signed JSON; see the module docstring for the body and the headers."""

    type: ClassVar[str] = "webhook"
    Options: ClassVar[type[DestinationOptions]] = WebhookOptions
    options: WebhookOptions

    def __init__(self, name: str, options: DestinationOptions):
        super().__init__(name, options)
        self._session: requests.Session | None = None

    def deliver(self, alert: Alert) -> str:
        """POST the alert; return its Idempotency-Key (the outbox key)."""
        thread = alert.thread if alert.kind == "escalation" else None
        self._post(payload(alert, self.name, in_reply_to=thread), alert.key)
        return alert.key

    def update(self, remote_id: str, alert: Alert, note: str) -> str:
        """POST `"type": "update"` with the note, referring to the original delivery."""
        key = f"{remote_id}#update#{tk.update_marker(alert.key, note)}"
        self._post(payload(alert, self.name, kind="update", note=note, in_reply_to=remote_id), key)
        return remote_id

    def find_delivered(self, alert: Alert, since: datetime) -> None:
        """Always None: only the receiver knows; it dedupes on the Idempotency-Key."""
        return None

    def verify(self) -> str:
        """Refused: a receiver takes only signed POSTs and has no dry run, so only a post proves it works."""
        raise NotVerifiable(f"{self._where()}: a webhook receiver accepts only signed POSTs and offers no dry check; "
                            f"`earful test-alert {self.name}` sends one marked test event")

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- HTTP ---------------------------------------------------------------------------
    def _post(self, body: dict[str, Any], idempotency_key: str) -> None:
        import requests

        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        secret = self.options.secret.get_secret_value().encode("utf-8")
        attempts = self.options.retries + 1
        last: DeliveryError | None = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.options.retry_backoff * 2 ** (attempt - 1))
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": tk.USER_AGENT,
                "Idempotency-Key": idempotency_key,
                EVENT_HEADER: str(body["type"]),
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(secret, timestamp, raw),
                **{name: value.get_secret_value() for name, value in self.options.headers.items()},
            }
            try:
                response = self._http().post(self.options.target, data=raw, headers=headers, timeout=self.options.timeout,
                                             allow_redirects=False)
            except requests.Timeout:
                last = DeliveryError(f"{self._where()}: timed out after {self.options.timeout:g}s ({attempt + 1} attempts)")
                continue
            except requests.RequestException as exc:
                last = DeliveryError(self._scrub(f"{self._where()}: {type(exc).__name__}: {exc} ({attempt + 1} attempts)"))
                continue
            status = response.status_code
            if 200 <= status < 300:
                return
            detail = tk.body_excerpt(response)
            if status == 429:
                wait = tk.retry_after(response.headers)
                raise DeliveryError(f"{self._where()}: rate limited (HTTP 429)" + (f"; asked to wait {wait:g}s" if wait is not None else ""),
                                    retry_after=wait)
            if status >= 500 or status == 408:
                last = DeliveryError(self._scrub(f"{self._where()}: HTTP {status}: {detail} ({attempt + 1} attempts)"),
                                     retry_after=tk.retry_after(response.headers))
                continue
            if status == 410:
                raise DeliveryError(f"{self._where()}: the receiver says this webhook is gone (HTTP 410); remove or update it",
                                    permanent=True)
            if 300 <= status < 400:
                raise DeliveryError(f"{self._where()}: redirected (HTTP {status}); configure the final URL", permanent=True)
            raise DeliveryError(self._scrub(f"{self._where()}: rejected with HTTP {status}: {detail}"), permanent=True)
        assert last is not None
        raise last

    def _http(self) -> "requests.Session":
        if self._session is None:
            import requests

            self._session = requests.Session()
        return self._session

    def _where(self) -> str:
        parts = urlsplit(self.options.target)
        return f"webhook destination {self.name!r} ({parts.scheme}://{parts.netloc})"

    def _scrub(self, text: str) -> str:
        """The URL's path and query may be a credential (Zapier, Slack hooks): keep them out of messages."""
        parts = urlsplit(self.options.target)
        secrets = [self.options.target, urlunsplit(("", "", parts.path, parts.query, "")), parts.query,
                   self.options.secret.get_secret_value(), *(v.get_secret_value() for v in self.options.headers.values())]
        for secret in sorted(filter(lambda s: s and s != "/", secrets), key=len, reverse=True):
            text = text.replace(secret, "/[redacted]" if secret.startswith("/") else "[redacted]")
        return text


DESTINATION = WebhookDestination
