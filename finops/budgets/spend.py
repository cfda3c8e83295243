"""A budget's spend over a time range, exact to the nano-USD: rollups where they are complete, the
ledger where they are not.

The rollup job's watermark says which ledger rows it has seen. ``cut`` is the hour of the earliest
call it has not seen (token basis), or the earliest hour whose GPU rows changed since it was rolled up
(gpu basis, ``rollup_dirty_hours``). Every whole hour before ``cut`` is read from ``usage_rollups``;
everything from ``cut`` on, and the partial hours at the edges of a range that is not hour-aligned (a
month in a time zone with a half-hour offset), is read from the ledger itself. Each instant comes from
exactly one source, so nothing is counted twice or missed, and the ledger scan is short (normally the
current hour).

Token basis: ``token_ledger.cost_nusd`` (by the hour the call started). GPU basis: the GPU-second cost
of ``gpu_ledger`` (by window); idle GPU time belongs to no team, feature or model, so only a global
budget (empty scope) counts it. Its spend is then the whole fleet's cost.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from finops.attribution.models import GpuLedgerRow
from finops.jobs import state as job_state
from finops.jobs.models import JobStateRow
from finops.ledger.models import TokenLedgerRow
from finops.rollups.models import IDLE, RollupDirtyHourRow, UsageRollupRow

HOUR = timedelta(hours=1)
ROLLUP_JOB = "rollups"
GroupBy = Literal["team", "feature", "model"]
IDLE_GROUP = "(idle)"


@dataclass(frozen=True)
class Scope:
    team: str | None = None
    feature: str | None = None
    model: str | None = None

    @property
    def is_global(self) -> bool:
        return self.team is None and self.feature is None and self.model is None


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def rollup_cut(session: Session, basis: str) -> datetime | None:
    """The first hour the rollups may not hold completely (None: they hold every hour)."""
    if basis == "gpu":
        dirty: datetime | None = session.scalar(select(func.min(RollupDirtyHourRow.hour)))
        return floor_hour(dirty) if dirty is not None else None
    raw = session.scalar(select(JobStateRow.state).where(JobStateRow.name == ROLLUP_JOB))
    state: dict[str, Any] = json.loads(raw) if raw else {}
    # Rows in an open gap below the watermark that were seen already only move the cut earlier: more
    # is read from the ledger, still exactly once.
    earliest: datetime | None = session.scalar(
        select(func.min(TokenLedgerRow.started_at)).where(
            job_state.new_rows_condition(TokenLedgerRow.id, state)
        )
    )
    return floor_hour(earliest) if earliest is not None else None


def spend_nusd(session: Session, scope: Scope, basis: str, start: datetime, end: datetime) -> int:
    return sum(spend_by(session, scope, basis, start, end, None).values())


def spend_by(
    session: Session, scope: Scope, basis: str, start: datetime, end: datetime, by: GroupBy | None
) -> dict[str, int]:
    """Spend in [start, end) within ``scope``, per value of ``by`` (one "" key when None)."""
    totals: Counter[str] = Counter()
    if end <= start:
        return {}
    cut = rollup_cut(session, basis)
    first_whole, last_whole = ceil_hour(start), floor_hour(end)
    rolled_end = min(last_whole, cut) if cut is not None else last_whole
    if rolled_end > first_whole:
        _add(totals, _from_rollups(session, scope, basis, first_whole, rolled_end, by))
        ledger_ranges = [(start, first_whole), (rolled_end, end)]
    else:
        ledger_ranges = [(start, end)]
    for range_start, range_end in ledger_ranges:
        if range_end > range_start:
            _add(totals, _from_ledger(session, scope, basis, range_start, range_end, by))
    return {group: total for group, total in totals.items() if total}


def _add(totals: Counter[str], rows: Any) -> None:
    for group, total in rows:
        totals[IDLE_GROUP if group == IDLE else str(group or "")] += int(total or 0)


def _filters(table: Any, scope: Scope) -> list[Any]:
    pairs = ((table.team, scope.team), (table.feature, scope.feature), (table.model, scope.model))
    return [column == value for column, value in pairs if value is not None]


def _from_rollups(
    session: Session, scope: Scope, basis: str, start: datetime, end: datetime, by: GroupBy | None
) -> Any:
    r = UsageRollupRow
    if basis == "gpu":
        amount = r.gpu_cost_nusd + r.idle_cost_nusd if scope.is_global else r.gpu_cost_nusd
    else:
        amount = r.token_cost_nusd
    group: Any = getattr(r, by) if by else func.min("")
    query = select(group, func.sum(amount)).where(r.hour >= start, r.hour < end, *_filters(r, scope))
    return session.execute(query.group_by(group) if by else query)


def _from_ledger(
    session: Session, scope: Scope, basis: str, start: datetime, end: datetime, by: GroupBy | None
) -> Any:
    if basis == "gpu":
        g = GpuLedgerRow
        conditions = [g.window_start >= start, g.window_start < end, *_filters(g, scope)]
        if not scope.is_global:
            conditions.append(g.request_id.is_not(None))
        group: Any = func.coalesce(getattr(g, by), IDLE) if by else func.min("")
        query = select(group, func.sum(g.cost_nusd)).where(*conditions)
    else:
        t = TokenLedgerRow
        group = getattr(t, by) if by else func.min("")
        query = select(group, func.sum(t.cost_nusd)).where(
            t.started_at >= start, t.started_at < end, *_filters(t, scope)
        )
    return session.execute(query.group_by(group) if by else query)
