"""Budget periods: calendar months in the configured time zone, as UTC instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


def month_bounds(moment: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The calendar month (in ``timezone``) holding ``moment``, as [start, end) in UTC."""
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    start = datetime(local.year, local.month, 1, tzinfo=zone)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    end = datetime(year, month, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def previous_month_bounds(moment: datetime, timezone: str) -> tuple[datetime, datetime]:
    start, _ = month_bounds(moment, timezone)
    # One microsecond before this month's start lies in the previous month, whatever its length.
    return month_bounds(start - timedelta(microseconds=1), timezone)
