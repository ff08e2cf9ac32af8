"""The one mapping from an HTTP error answer to a ConnectorError, shared by every API connector."""

from __future__ import annotations

import email.utils
from datetime import datetime, timedelta, timezone

import pytest

from earful.connectors.base import ConnectorError
from earful.connectors.http import error_for_status

LABEL = "demo monitor 'acme'"
URL = "https://api.example/v1/items?q=acme&access_token=s3cr3t"


@pytest.mark.parametrize("status, words", [
    (401, "check the credentials"),
    (403, "access is forbidden"),
    (404, "the URL may have moved"),
    (410, "gone for good"),
    (500, "server error on their side; earful retries on the next run"),
    (503, "server error on their side"),
    (418, "the request was refused"),
])
def test_each_status_gets_its_advice(status: int, words: str) -> None:
    error = error_for_status(LABEL, "GET", URL, status, "Reason", {})
    assert isinstance(error, ConnectorError) and error.status == status and error.retry_after is None
    assert str(error).startswith(f"{LABEL}: GET https://api.example/v1/items?q=acme&access_token=*** answered HTTP {status} Reason; ")
    assert words in str(error) and "s3cr3t" not in str(error)


def test_rate_limit_reads_retry_after_in_seconds_or_as_a_date() -> None:
    error = error_for_status(LABEL, "GET", URL, 429, "Too Many Requests", {"retry-after": "120"})
    assert error.retry_after == 120 and str(error).endswith("rate limited; earful will come back later (Retry-After: 120s)")
    later = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(minutes=5), usegmt=True)
    dated = error_for_status(LABEL, "GET", URL, 429, None, {"Retry-After": later})
    assert dated.retry_after is not None and 290 <= dated.retry_after <= 300
    unavailable = error_for_status(LABEL, "GET", URL, 503, None, {"Retry-After": "30"})
    assert unavailable.retry_after == 30 and unavailable.status == 503


def test_a_connector_brings_its_own_words_wait_and_advice() -> None:
    hints = {401: "the bot token was reset; update `bot_token`", 429: "rate limited; back in {retry_after}s",
             500: "the instance is down; earful retries"}
    error = error_for_status(LABEL, "POST", URL, 401, None, None, detail="'Missing Access', code 50001", hints=hints)
    assert str(error) == (f"{LABEL}: POST https://api.example/v1/items?q=acme&access_token=*** answered HTTP 401 "
                          "('Missing Access', code 50001); the bot token was reset; update `bot_token`")
    limited = error_for_status(LABEL, "GET", URL, 429, None, {"Retry-After": "5"}, hints=hints, retry_after=64.5)
    assert limited.retry_after == 64.5 and str(limited).endswith("rate limited; back in 64.5s")
    assert "the instance is down" in str(error_for_status(LABEL, "GET", URL, 502, None, None, hints=hints))
    assert "check the credentials" not in str(error) and "forbidden" in str(error_for_status(LABEL, "GET", URL, 403, None, None, hints=hints))
