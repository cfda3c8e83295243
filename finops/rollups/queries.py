"""Reads over the rollups, shared by the report (and later the dashboards, API and exports)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from finops.rollups.models import IDLE, UsageRollupRow

GroupBy = Literal["team", "feature", "model", "backend"]
IDLE_LABEL = "(idle)"


@dataclass(frozen=True)
class SpendLine:
    group: str
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    token_cost_nusd: int
    gpu_seconds: Decimal
    gpu_cost_nusd: int
    idle_gpu_seconds: Decimal
    idle_cost_nusd: int


def _tag_filters(team: str | None, feature: str | None, model: str | None) -> list[Any]:
    r = UsageRollupRow
    pairs = ((r.team, team), (r.feature, feature), (r.model, model))
    return [column == value for column, value in pairs if value is not None]


def _summed() -> tuple[Any, ...]:
    """The rollup's totals, summed, in SpendLine's (and SeriesPoint's) field order after the group."""
    r = UsageRollupRow
    return (
        func.sum(r.calls),
        func.sum(r.errors),
        func.sum(r.prompt_tokens),
        func.sum(r.completion_tokens),
        func.sum(r.token_cost_nusd),
        func.sum(r.gpu_seconds),
        func.sum(r.gpu_cost_nusd),
        func.sum(r.idle_gpu_seconds),
        func.sum(r.idle_cost_nusd),
    )


def _totals(sums: Sequence[Any]) -> tuple[Any, ...]:
    """The summed values as exact numbers (an empty sum is NULL: zero)."""
    c, e, p, o, tc, gs, gc, igs, ic = sums
    return (
        int(c or 0),
        int(e or 0),
        int(p or 0),
        int(o or 0),
        int(tc or 0),
        Decimal(gs or 0),
        int(gc or 0),
        Decimal(igs or 0),
        int(ic or 0),
    )


def spend_by(
    session: Session,
    start: datetime,
    end: datetime,
    by: GroupBy,
    *,
    team: str | None = None,
    feature: str | None = None,
    model: str | None = None,
) -> list[SpendLine]:
    """Totals per group over the hours in [start, end). Idle GPU time is its own line, except by backend,
    where each backend's line carries its idle time beside its busy time.

    ``team``, ``feature`` and ``model`` keep only that tag's rows; idle time belongs to no team, feature or
    model, so any of them leaves it out."""
    r = UsageRollupRow
    column = getattr(r, by)
    group = column if by == "backend" else func.coalesce(func.nullif(column, IDLE), IDLE_LABEL)
    rows = session.execute(
        select(
            group,
            *_summed(),
        )
        .where(r.hour >= start, r.hour < end, *_tag_filters(team, feature, model))
        .group_by(group)
        .order_by(group)
    )
    return [SpendLine(str(g), *_totals(sums)) for g, *sums in rows]


# --- Time series and comparisons for the dashboards (and any other reader that wants them) ---

Bucket = Literal["hour", "day"]


@dataclass(frozen=True)
class SeriesPoint:
    """One group's totals in one bucket (an hour, or a calendar day in the given time zone)."""

    bucket_start: datetime
    group: str
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    token_cost_nusd: int
    gpu_seconds: Decimal
    gpu_cost_nusd: int
    idle_gpu_seconds: Decimal
    idle_cost_nusd: int


def bucket_start(hour: datetime, bucket: Bucket, timezone: str = "UTC") -> datetime:
    """The start (UTC) of the bucket holding ``hour``: the hour itself, or its local calendar day."""
    if bucket == "hour":
        return hour
    zone = ZoneInfo(timezone)
    local = hour.astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)


def day_starts(start: datetime, end: datetime, timezone: str) -> list[datetime]:
    """The local midnights (as UTC instants) of every calendar day that overlaps [start, end)."""
    zone = ZoneInfo(timezone)
    day = start.astimezone(zone).date()
    starts: list[datetime] = []
    while True:
        moment = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        if moment >= end:
            return starts
        starts.append(moment)
        day += timedelta(days=1)


def spend_series(
    session: Session,
    start: datetime,
    end: datetime,
    by: GroupBy,
    *,
    bucket: Bucket = "hour",
    timezone: str = "UTC",
    team: str | None = None,
    feature: str | None = None,
    model: str | None = None,
) -> list[SeriesPoint]:
    """``spend_by`` per bucket, ordered by bucket then group; idle time is grouped as in ``spend_by``.

    Days are local calendar days of ``timezone``: the database numbers each hour's day with a CASE
    over the days' UTC starts (worked out here, daylight-saving changes included), so that a day in
    any time zone groups the same way on every database, and only one row per day and group is read."""
    r = UsageRollupRow
    column = getattr(r, by)
    group = column if by == "backend" else func.coalesce(func.nullif(column, IDLE), IDLE_LABEL)
    days = day_starts(start, end, timezone) if bucket == "day" else []
    slot: Any = r.hour
    postgres = session.get_bind().dialect.name == "postgresql"
    if days and postgres:
        # Postgres knows the zone's rules: the local date of each hour, daylight-saving changes included.
        slot = func.date(func.timezone(timezone, r.hour))
    elif days:
        slot = _day_index(r.hour, days)
    rows = session.execute(
        select(
            slot,
            group,
            *_summed(),
        )
        .where(r.hour >= start, r.hour < end, *_tag_filters(team, feature, model))
        .group_by(slot, group)
    )
    zone = ZoneInfo(timezone)
    points = []
    for at, g, *sums in rows:
        if not days:
            moment = at
        elif postgres:
            moment = datetime(at.year, at.month, at.day, tzinfo=zone).astimezone(UTC)
        else:
            moment = days[int(at)]
        points.append(SeriesPoint(moment, str(g), *_totals(sums)))
    return sorted(points, key=lambda point: (point.bucket_start, point.group))


def total_spend(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    team: str | None = None,
    feature: str | None = None,
    model: str | None = None,
) -> SpendLine:
    """Everything in [start, end) as one line (group "total"); idle is in it unless a tag filter is set."""
    return totals_of(spend_by(session, start, end, "backend", team=team, feature=feature, model=model))


Basis = Literal["tokens", "gpu"]


def basis_cost_nusd(line: SpendLine | SeriesPoint, basis: Basis) -> int:
    """A line's cost on a basis: its token cost, or its GPU cost with the idle time it carries."""
    if basis == "tokens":
        return line.token_cost_nusd
    return line.gpu_cost_nusd + line.idle_cost_nusd


@dataclass(frozen=True)
class SpendChange:
    group: str
    previous_nusd: int
    current_nusd: int

    @property
    def change_nusd(self) -> int:
        return self.current_nusd - self.previous_nusd


def _day_index(hour: Any, days: list[datetime]) -> Any:
    """The index of the day holding ``hour`` among ascending ``days``, as nested CASEs that halve the
    list at each level: a handful of comparisons per row instead of one per day."""
    if len(days) == 1:
        return literal(0)
    return _day_index_between(hour, days, 0, len(days))


def _day_index_between(hour: Any, days: list[datetime], low: int, high: int) -> Any:
    if high - low == 1:
        return literal(low)
    middle = (low + high) // 2
    return case(
        (hour >= days[middle], _day_index_between(hour, days, middle, high)),
        else_=_day_index_between(hour, days, low, middle),
    )


def totals_of(lines: Iterable[SpendLine | SeriesPoint], group: str = "total") -> SpendLine:
    """Lines (or series points) added up into one line."""
    items = list(lines)
    return SpendLine(
        group,
        sum(line.calls for line in items),
        sum(line.errors for line in items),
        sum(line.prompt_tokens for line in items),
        sum(line.completion_tokens for line in items),
        sum(line.token_cost_nusd for line in items),
        sum((line.gpu_seconds for line in items), Decimal(0)),
        sum(line.gpu_cost_nusd for line in items),
        sum((line.idle_gpu_seconds for line in items), Decimal(0)),
        sum(line.idle_cost_nusd for line in items),
    )


def lines_of(points: Iterable[SeriesPoint]) -> list[SpendLine]:
    """A series folded back into one line per group (what ``spend_by`` gives for the same range)."""
    by_group: dict[str, list[SeriesPoint]] = {}
    for point in points:
        by_group.setdefault(point.group, []).append(point)
    return [totals_of(by_group[g], g) for g in sorted(by_group)]


def changes_between(
    previous: Iterable[SpendLine], current: Iterable[SpendLine], basis: Basis = "tokens"
) -> list[SpendChange]:
    """Each group's spend in both, the largest change (up or down) first."""
    now = {line.group: basis_cost_nusd(line, basis) for line in current}
    before = {line.group: basis_cost_nusd(line, basis) for line in previous}
    changes = [SpendChange(g, before.get(g, 0), now.get(g, 0)) for g in set(now) | set(before)]
    return sorted(changes, key=lambda c: (-abs(c.change_nusd), c.group))


def spend_changes(
    session: Session,
    current: tuple[datetime, datetime],
    previous: tuple[datetime, datetime],
    by: GroupBy,
    *,
    basis: Basis = "tokens",
    team: str | None = None,
    feature: str | None = None,
    model: str | None = None,
) -> list[SpendChange]:
    """Each group's spend in both periods, the largest change (up or down) first."""
    return changes_between(
        spend_by(session, *previous, by, team=team, feature=feature, model=model),
        spend_by(session, *current, by, team=team, feature=feature, model=model),
        basis,
    )


def per_unit_nusd(cost_nusd: int, units: int, per: int) -> Fraction | None:
    """Cost per ``per`` units (e.g. per 1,000 calls, per 1,000,000 tokens) as an exact fraction."""
    return Fraction(cost_nusd * per, units) if units else None


@dataclass(frozen=True)
class TagValues:
    teams: list[str]
    features: list[str]
    models: list[str]
    backends: list[str]


def tag_values(session: Session, start: datetime, end: datetime, *, team: str | None = None) -> TagValues:
    """The teams, features, models and backends seen in [start, end) (only ``team``'s when given)."""
    r = UsageRollupRow
    filters: list[Any] = [r.hour >= start, r.hour < end, r.team != IDLE]
    if team is not None:
        filters.append(r.team == team)
    # One pass: the distinct combinations are few (hundreds), the rows many.
    combos = session.execute(
        select(r.team, r.feature, r.model, r.backend)
        .where(*filters)
        .group_by(r.team, r.feature, r.model, r.backend)
    ).all()
    return TagValues(*(sorted({str(combo[i]) for combo in combos}) for i in range(4)))
