"""When is a monitor due?

A monitor is due when its cron expression has fired (in the configured
timezone) since the monitor last started, and no rate limit asked us to
wait. Keeping only "last start" in state.db means one crontab line
(`* * * * * earful run`) drives any number of schedules, and a machine that
was off for a day runs each monitor once on wake-up, not once per missed
slot.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo


def _croniter(schedule: str, start: datetime, tz: tzinfo):
    from croniter import croniter

    return croniter(schedule, start.astimezone(tz))


def last_fire(schedule: str, now: datetime, tz: tzinfo) -> datetime:
    """The most recent time at or before `now` the schedule fired."""
    return _croniter(schedule, now + timedelta(seconds=1), tz).get_prev(datetime)


def is_due(schedule: str, last_start: datetime | None, now: datetime, tz: tzinfo,
           defer_until: datetime | None = None) -> bool:
    if defer_until is not None and now < defer_until:
        return False
    if last_start is None:
        return True
    return last_start < last_fire(schedule, now, tz)


def next_due(schedule: str, last_start: datetime | None, now: datetime, tz: tzinfo,
             defer_until: datetime | None = None) -> datetime:
    """The earliest time the monitor will be due again."""
    if last_start is None:
        candidate = now
    else:
        candidate = _croniter(schedule, last_start, tz).get_next(datetime)
    if defer_until is not None and defer_until > candidate:
        candidate = defer_until
    return candidate


def interval(schedule: str, now: datetime, tz: tzinfo) -> timedelta:
    """How often the schedule fires: the gap between its next two fires after `now`."""
    fires = _croniter(schedule, now, tz)
    first = fires.get_next(datetime)
    return fires.get_next(datetime) - first
