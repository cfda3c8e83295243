"""The period a read covers: ``start`` and ``end`` (UTC; a date is its midnight, a naive time is UTC).

Absent, they default to the current calendar month in the configured time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BeforeValidator

from finops.api.context import ApiContext, get_context
from finops.api.errors import invalid
from finops.budgets.periods import month_bounds

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime


def as_utc(value: datetime, field: str) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise invalid(f"{field} lies outside the years 1 to 9999 once in UTC", field) from exc


def resolve_period(start: datetime | None, end: datetime | None, timezone: str) -> Period:
    default_start, default_end = month_bounds(datetime.now(UTC), timezone)
    start_utc = as_utc(start, "start") if start is not None else default_start
    end_utc = as_utc(end, "end") if end is not None else default_end
    if end_utc <= start_utc:
        raise invalid("end must be after start", "end")
    return Period(start_utc, end_utc)


def _iso_only(value: Any) -> Any:
    # Pydantic would read "1732924800" (or "0.5") as a Unix time; the API speaks ISO 8601 only.
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        raise ValueError("must be an ISO 8601 date or date-time, not a number")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]


def period_params(
    context: Annotated[ApiContext, Depends(get_context)],
    start: Annotated[
        IsoTime | None, Query(description="inclusive, ISO 8601; default: this month's start")
    ] = None,
    end: Annotated[
        IsoTime | None, Query(description="exclusive, ISO 8601; default: next month's start")
    ] = None,
) -> Period:
    return resolve_period(start, end, context.config.timezone)


PeriodQuery = Annotated[Period, Depends(period_params)]
