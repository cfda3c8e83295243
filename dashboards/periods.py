"""The period filter (pure): a preset name and "now" give [start, end), the period before it and a bucket.

Calendar presets (this month, last month) follow the configured time zone, as budgets do; rolling ones
end at the next hour boundary so that the current, still-filling hour is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

PRESETS: dict[str, str] = {
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "last-month": "Last month",
}
DEFAULT_PRESET = "7d"


@dataclass(frozen=True)
class Period:
    preset: str
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime
    bucket: Literal["hour", "day"]

    @property
    def label(self) -> str:
        return PRESETS[self.preset]


def _month_start(moment: datetime, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    return datetime(local.year, local.month, 1, tzinfo=zone)


def _next_month(start: datetime, zone: ZoneInfo) -> datetime:
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return datetime(year, month, 1, tzinfo=zone)


def resolve(preset: str | None, now: datetime, timezone: str = "UTC") -> Period:
    """The period a preset means at ``now``; an unknown preset is the default one."""
    preset = preset if preset in PRESETS else DEFAULT_PRESET
    zone = ZoneInfo(timezone)
    next_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if preset in ("24h", "7d", "30d"):
        length = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}[preset]
        end = next_hour
        start = end - length
        return Period(preset, start, end, start - length, start, "hour" if preset == "24h" else "day")
    this_month = _month_start(now, zone)
    if preset == "month":
        start, end = this_month, _next_month(this_month, zone)
    else:
        start = _month_start(this_month - timedelta(days=1), zone)
        end = this_month
    previous = _month_start(start - timedelta(days=1), zone)
    previous_end = start
    if preset == "month":
        # Month to date against the same stretch of last month, not against a whole month.
        previous_end = min(start, previous + (next_hour - start))
    return Period(
        preset,
        start.astimezone(UTC),
        end.astimezone(UTC),
        previous.astimezone(UTC),
        previous_end.astimezone(UTC),
        "day",
    )
