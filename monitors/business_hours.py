"""Reply SLAs that count only business hours.

"Reply within 4h" on a Friday 17:00 question means Monday 12:00 for a team
that works Mon-Fri 09:00-18:00, and Tuesday if Monday is a holiday. The
arithmetic walks day by day through the configured timezone, so daylight
saving changes and holidays fall out naturally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_SPEC = re.compile(r"^\s*(?P<d1>[a-z]{3})(?:\s*-\s*(?P<d2>[a-z]{3}))?\s+(?P<h1>\d{1,2}):(?P<m1>\d{2})\s*-\s*(?P<h2>\d{1,2}):(?P<m2>\d{2})\s*$", re.I)


@dataclass(frozen=True)
class BusinessHours:
    """Opening days (0=Monday), daily open/close time, holidays, timezone."""

    days: frozenset[int]
    opens: time
    closes: time
    tz: tzinfo
    holidays: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, spec: str, tz: tzinfo, holidays: frozenset[date] = frozenset()) -> "BusinessHours":
        """'Mon-Fri 09:00-18:00' (or 'Sat 10:00-14:00'); ValueError with a readable message."""
        m = _SPEC.match(spec or "")
        if not m:
            raise ValueError(f"{spec!r} is not a business-hours range; write e.g. \"Mon-Fri 09:00-18:00\"")
        first, last = m["d1"].lower(), (m["d2"] or m["d1"]).lower()
        if first not in DAYS or last not in DAYS:
            raise ValueError(f"unknown day in {spec!r}; use Mon Tue Wed Thu Fri Sat Sun")
        a, b = DAYS.index(first), DAYS.index(last)
        days = frozenset(range(a, b + 1)) if a <= b else frozenset([*range(a, 7), *range(0, b + 1)])
        try:
            opens, closes = time(int(m["h1"]), int(m["m1"])), time(int(m["h2"]), int(m["m2"]))
        except ValueError:
            raise ValueError(f"bad time of day in {spec!r}") from None
        if closes <= opens:
            raise ValueError(f"in {spec!r} the closing time must be after the opening time")
        return cls(days, opens, closes, tz, holidays)

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        if day.weekday() not in self.days or day in self.holidays:
            return None
        return (datetime.combine(day, self.opens, self.tz), datetime.combine(day, self.closes, self.tz))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of business time after `start`."""
        remaining = duration
        cursor = start.astimezone(self.tz)
        day = cursor.date()
        for _ in range(3660):  # ten years of days: a guard, not a limit anyone reaches
            window = self._window(day)
            if window:
                begin, end = max(window[0], cursor), window[1]
                if begin < end:
                    if begin + remaining <= end:
                        return begin + remaining
                    remaining -= end - begin
            day += timedelta(days=1)
            cursor = datetime.combine(day, time(0), self.tz)
        raise ValueError("business hours never open; check business_hours and holidays")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between two moments (zero if end <= start)."""
        total = timedelta(0)
        if end <= start:
            return total
        day, last = start.astimezone(self.tz).date(), end.astimezone(self.tz).date()
        while day <= last:
            window = self._window(day)
            if window:
                begin, finish = max(window[0], start), min(window[1], end)
                if begin < finish:
                    total += finish - begin
            day += timedelta(days=1)
        return total
