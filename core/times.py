"""The one parser for the timestamps sources and the state hand us.

APIs write ISO 8601 with `Z`, with offsets, with or without fractions, or
epoch seconds; state.db stores ISO with an offset. Everything becomes an
aware UTC datetime here, and a value that is not a time becomes None
rather than a guess.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    """How times are written to state: ISO 8601 in UTC with microseconds, so
    that the strings sort in time order."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_time(value: object) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (`Z` or an offset; naive means
    UTC), epoch seconds (int, float or digits) or a datetime; None for
    anything else, including None and ''."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_time(int(text))
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
