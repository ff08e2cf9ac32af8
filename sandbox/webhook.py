"""A webhook receiver on 127.0.0.1 that checks earful's signatures.

It does what a careful receiver should, so tests prove the sender's side:
the `X-Earful-Signature` must be the HMAC-SHA256 of `"{timestamp}.{raw
body}"` under the shared secret, and `X-Earful-Timestamp` no older (or
newer) than `tolerance` seconds; otherwise 401 and the reason is kept in
`rejections`. A valid delivery whose `Idempotency-Key` was seen before is
acknowledged (200, `"duplicate": true`) but not recorded again, the
behaviour the sender's retries rely on. Accepted deliveries are in
`events` (headers and parsed JSON body) and answered 202.

Standard library only (the verification mirrors `earful.alerts.webhook.verify`
on purpose, so the check here does not trust the code under test).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from .server import FakeServer, Request, Response

DEFAULT_SECRET = "whsec-earful-fake-shared-secret-0123"


@dataclass(frozen=True)
class Event:
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes

    @property
    def type(self) -> str:
        return str(self.body.get("type"))

    @property
    def key(self) -> str:
        return self.headers.get("idempotency-key", "")


class WebhookReceiver(FakeServer):
    """POST `path` with a valid signature: recorded once per Idempotency-Key."""

    def __init__(self, secret: str = DEFAULT_SECRET, path: str = "/hooks/earful", tolerance: float = 300) -> None:
        super().__init__()
        self.secret = secret.encode("utf-8")
        self.path = path
        self.tolerance = tolerance
        self._data = threading.Lock()
        self._events: list[Event] = []
        self._seen: set[str] = set()
        self.rejections: list[str] = []

    @property
    def hook_url(self) -> str:
        return self.url + self.path

    def events(self) -> list[Event]:
        with self._data:
            return copy.deepcopy(self._events)

    def handle(self, request: Request) -> Response:
        if request.path != self.path:
            return Response.json({"error": "no such hook"}, 404)
        if request.method != "POST":
            return Response(405, b"", {"Allow": "POST"})
        problem = self._check(request)
        if problem:
            with self._data:
                self.rejections.append(problem)
            return Response.json({"error": problem}, 401)
        try:
            body = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return Response.json({"error": "body is not JSON"}, 400)
        key = request.headers.get("idempotency-key", "")
        with self._data:
            if key and key in self._seen:
                return Response.json({"ok": True, "duplicate": True}, 200)
            self._seen.add(key)
            self._events.append(Event(dict(request.headers), body, request.body))
        return Response.json({"ok": True}, 202)

    def _check(self, request: Request) -> str | None:
        timestamp = request.headers.get("x-earful-timestamp", "")
        signature = request.headers.get("x-earful-signature", "")
        if not timestamp or not signature:
            return "missing signature headers"
        try:
            age = abs(time.time() - int(timestamp))
        except ValueError:
            return "timestamp is not a number"
        if age > self.tolerance:
            return f"timestamp is {age:.0f}s away from now"
        expected = "sha256=" + hmac.new(self.secret, timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "signature mismatch"
        return None
