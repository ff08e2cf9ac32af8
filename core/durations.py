"""The one duration grammar of every option that takes a span of time.

`reply_within`, `first_run_lookback`, `silence_floor`, a connector's
overlap window: all accept the same words, so what works in one place
works in every other.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(
    r"^\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?\s*$", re.I
)


def parse_duration(value: object) -> timedelta:
    """'2h', '1h30m', '3d', '45m', '1w', '90s', or a number of seconds."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and any(m.groups()):
            w, d, h, mi, s = (int(g or 0) for g in m.groups())
            return timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=s)
    raise ValueError(f"{value!r} is not a duration; write e.g. 30m, 2h, 1h30m, 3d")


def format_duration(delta: timedelta) -> str:
    """'1h30m', '2d4h', '45s': the inverse of `parse_duration`, for messages."""
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if (seconds and delta < timedelta(hours=1)) or not parts:  # seconds only matter for short spans
        parts.append(f"{seconds}s")
    return "".join(parts)


def _duration_or_none(value: object) -> object:
    return None if value is None else parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
"""A pydantic field type: `first_run_lookback: Duration = timedelta(days=1)`."""

OptionalDuration = Annotated[timedelta | None, BeforeValidator(_duration_or_none)]
