"""The webhook destination against a receiver that verifies signatures (sandbox/webhook.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
from datetime import datetime
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful import alerts
from earful.alerts.base import DeliveryError
from earful.alerts.webhook import WebhookDestination, WebhookOptions, sign, verify
from earful.core import Alert, Mention
from earful.sandbox.server import Response
from earful.sandbox.webhook import DEFAULT_SECRET, WebhookReceiver

from .sample_alerts import BREACH, NOTE, T0, alert_to, mention


def alert(*mentions: Mention, **details: Any) -> Alert:
    return alert_to("hooks", *mentions, **details)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server  # type: ignore[misc]


def destination(server: WebhookReceiver, **options: Any) -> WebhookDestination:
    settings: dict[str, Any] = {"url": server.hook_url, "secret": DEFAULT_SECRET, "retry_backoff": 0.01, "timeout": 5, **options}
    return WebhookDestination("hooks", WebhookOptions(**settings))


def test_registry_can_load_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(alerts.DESTINATIONS, "webhook", "earful.alerts.webhook")
    assert alerts.load("webhook") is WebhookDestination


def test_body_and_signature(receiver: WebhookReceiver) -> None:
    cluster = (mention(1), mention(2, source="g2", kind="review", rating=2.0, brand_replied=False, url="https://www.g2.com/r/2", site="Acme CRM",
                                   created_at=None))
    remote_id = destination(receiver).deliver(alert(*cluster))

    assert remote_id == "reddit:t3_1#hooks"
    [event] = receiver.events()
    assert receiver.rejections == []
    body = dict(event.body)
    sent_at = body.pop("sent_at")
    assert datetime.strptime(sent_at, "%Y-%m-%dT%H:%M:%SZ")
    assert body == {
        "version": 1, "type": "alert", "key": "reddit:t3_1#hooks", "cluster": "reddit:t3_1", "destination": "hooks",
        "monitor": "reddit-acme", "severity": "high", "labels": ["complaint", "question"], "rules": ["acme/complaint"], "note": None,
        "in_reply_to": None, "mentions_total": 2,
        "mentions": [
            {"source": "reddit", "url": "https://www.reddit.com/r/crm/comments/1/acme/", "author": "customer1", "author_is_brand": False,
             "title": "Acme support never responds", "text": "I asked three times on Facebook and nobody answered. Is Acme still alive?",
             "created_at": "2026-11-20T10:00:00Z", "kind": "post", "rating": None, "brand_replied": None, "site": "r/crm"},
            {"source": "g2", "url": "https://www.g2.com/r/2", "author": "customer2", "author_is_brand": False,
             "title": "Acme support never responds", "text": "I asked three times on Facebook and nobody answered. Is Acme still alive?",
             "created_at": None, "kind": "review", "rating": 2.0, "brand_replied": False, "site": "Acme CRM"},
        ],
    }
    headers = event.headers
    assert headers["idempotency-key"] == "reddit:t3_1#hooks" and headers["x-earful-event"] == "alert"
    assert headers["content-type"] == "application/json; charset=utf-8"
    # the documented recipe verifies it, independently of the receiver
    expected = hmac.new(DEFAULT_SECRET.encode(), f"{headers['x-earful-timestamp']}.".encode() + event.raw, hashlib.sha256).hexdigest()
    assert headers["x-earful-signature"] == f"sha256={expected}"
    assert verify(DEFAULT_SECRET.encode(), headers["x-earful-timestamp"], event.raw, headers["x-earful-signature"])


def test_a_wrong_secret_is_rejected_by_the_receiver_and_permanent(receiver: WebhookReceiver) -> None:
    secret = "another-secret-of-enough-length"
    sink = destination(receiver, secret=secret)
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    assert raised.value.permanent and "401" in str(raised.value) and "signature mismatch" in str(raised.value)
    assert receiver.rejections == ["signature mismatch"] and receiver.events() == []
    for text in (str(raised.value), repr(raised.value), repr(sink.options)):
        assert secret not in text


def test_verify_rejects_stale_and_tampered_deliveries() -> None:
    secret, body = b"s" * 20, b'{"type":"alert"}'
    now = int(time.time())
    good = sign(secret, str(now), body)
    assert verify(secret, str(now), body, good)
    assert not verify(secret, str(now), body + b" ", good)
    assert not verify(secret, str(now - 301), body, sign(secret, str(now - 301), body))
    assert not verify(secret, "soon", body, good)


def test_update_and_escalation_refer_to_the_original(receiver: WebhookReceiver) -> None:
    sink = destination(receiver)
    original = sink.deliver(alert())
    assert sink.update(original, alert(), NOTE) == original
    sink.update(original, alert(), NOTE)  # a retried update: the receiver sees the same Idempotency-Key
    sink.deliver(alert(kind="escalation", note=BREACH, thread=original))

    first, update, escalation = receiver.events()
    assert update.type == "update" and update.body["note"] == NOTE and update.body["in_reply_to"] == original
    assert update.key.startswith(f"{original}#update#") and update.headers["x-earful-event"] == "update"
    assert escalation.type == "escalation" and escalation.body["note"] == BREACH and escalation.body["in_reply_to"] == original
    assert escalation.key == "reddit:t3_1#escalation#hooks"
    assert len([r for r in receiver.requests if r.method == "POST"]) == 4  # the duplicate update was sent, then dropped by the receiver


def test_a_resend_after_a_crash_is_dropped_by_the_receiver(receiver: WebhookReceiver) -> None:
    destination(receiver).deliver(alert())
    assert destination(receiver).find_delivered(alert(), T0) is None  # only the receiver knows
    destination(receiver).deliver(alert())
    assert len(receiver.events()) == 1


def test_server_errors_are_retried_inside_one_delivery_freshly_signed(receiver: WebhookReceiver) -> None:
    receiver.fail_next(Response(502, "bad gateway"), Response.json({"error": "down"}, 503))
    destination(receiver, retries=2).deliver(alert())
    posts = [r for r in receiver.requests if r.method == "POST"]
    assert len(posts) == 3 and len(receiver.events()) == 1
    assert len({r.headers["idempotency-key"] for r in posts}) == 1


def test_retries_exhausted_is_transient(receiver: WebhookReceiver) -> None:
    receiver.fail_next(*[Response(500, "boom")] * 3)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as raised:
        destination(receiver, retries=2, retry_backoff=0.1).deliver(alert())
    assert time.monotonic() - started >= 0.3  # 0.1 + 0.2: backed off between attempts
    assert not raised.value.permanent and "HTTP 500" in str(raised.value) and "3 attempts" in str(raised.value)
    assert receiver.events() == []


def test_429_defers_with_retry_after_and_is_not_retried_in_process(receiver: WebhookReceiver) -> None:
    receiver.fail_next(Response.json({"error": "slow down"}, 429, {"Retry-After": "42"}))
    with pytest.raises(DeliveryError) as raised:
        destination(receiver).deliver(alert())
    assert raised.value.retry_after == 42 and not raised.value.permanent
    assert len([r for r in receiver.requests if r.method == "POST"]) == 1


@pytest.mark.parametrize("status", [410, 400, 404, 301])
def test_client_errors_are_permanent(receiver: WebhookReceiver, status: int) -> None:
    receiver.fail_next(Response(status, "no", {"Location": "https://elsewhere.example/"} if status == 301 else {}))
    with pytest.raises(DeliveryError) as raised:
        destination(receiver).deliver(alert())
    assert raised.value.permanent and str(status) in str(raised.value)
    assert len([r for r in receiver.requests if r.method == "POST"]) == 1


def test_timeouts_are_retried_then_transient(receiver: WebhookReceiver) -> None:
    slow = receiver.hold_next()  # the first attempt arrives, its answer comes too late
    destination(receiver, timeout=0.3, retries=1).deliver(alert())
    slow.release()
    assert len(receiver.events()) == 1  # the slow first attempt and the retry carry one Idempotency-Key
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sink = WebhookDestination("hooks", WebhookOptions(url=f"http://127.0.0.1:{port}/hooks/secret-path-token?key=qs-token",
                                                      secret=DEFAULT_SECRET, retries=1, retry_backoff=0, timeout=2))
    with pytest.raises(DeliveryError) as raised:
        sink.deliver(alert())
    message = str(raised.value)
    assert not raised.value.permanent and f"http://127.0.0.1:{port}" in message
    assert "secret-path-token" not in message and "qs-token" not in message


def test_base_url_replaces_scheme_and_host(receiver: WebhookReceiver) -> None:
    sink = WebhookDestination("hooks", WebhookOptions(url="https://hooks.example.com/hooks/earful", base_url=receiver.url, secret=DEFAULT_SECRET))
    sink.deliver(alert())
    assert len(receiver.events()) == 1


def test_extra_headers_are_sent_and_kept_secret(receiver: WebhookReceiver) -> None:
    sink = destination(receiver, headers={"Authorization": "Bearer hook-auth-123"})
    sink.deliver(alert())
    assert receiver.events()[0].headers["authorization"] == "Bearer hook-auth-123"
    assert "hook-auth-123" not in repr(sink.options)


def test_options() -> None:
    base = {"url": "https://hooks.example.com/x", "secret": DEFAULT_SECRET}
    assert WebhookOptions(**base).retries == 2
    for change in ({"secret": "short"}, {"url": "ftp://x"}, {"headers": {"X-Earful-Signature": "x"}}, {"headers": {"X-A": "a\r\nb"}},
                   {"retries": 11}, {"urll": "x"}):
        with pytest.raises(ValidationError) as raised:
            WebhookOptions(**{**base, **change})
        assert DEFAULT_SECRET not in str(raised.value), change


def test_body_is_compact_utf8_json(receiver: WebhookReceiver) -> None:
    destination(receiver).deliver(alert(mention(text="Acme ist kaputt — 😡 \"quoted\"")))
    raw = receiver.events()[0].raw
    assert "😡".encode() in raw and b'\\"quoted\\"' in raw and b", " not in raw[:50]
    assert json.loads(raw)["mentions"][0]["text"] == "Acme ist kaputt — 😡 \"quoted\""


def test_importing_the_module_does_not_import_requests() -> None:
    code = "import sys, earful.alerts.webhook; print('requests' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
