"""The one reader of "come back later" answers (HTTP 429/503 Retry-After).

Sources and destinations both get rate limited; both must wait exactly as
long as asked, whether the header says seconds or an HTTP date.
"""

from __future__ import annotations

import email.utils
from datetime import datetime, timezone
from typing import Any, Mapping


def parse_retry_after(value: object, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP
    date; None when absent or unreadable, never negative."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return max(0.0, float(value))
    text = str(value).strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def retry_after_header(headers: Mapping[str, Any] | None, now: datetime | None = None) -> float | None:
    """`parse_retry_after` of a response's headers, whatever their case."""
    if not headers:
        return None
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            return parse_retry_after(value, now)
    return None
