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
from collections.abc import Sequence
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
    rolled, ledger_ranges = split_by_source(start, end, rollup_cut(session, basis))
    if rolled is not None:
        _add(totals, _from_rollups(session, scope, basis, *rolled, by))
    for range_start, range_end in ledger_ranges:
        _add(totals, _from_ledger(session, scope, basis, range_start, range_end, by))
    return {group: total for group, total in totals.items() if total}


Range = tuple[datetime, datetime]


def split_by_source(start: datetime, end: datetime, cut: datetime | None) -> tuple[Range | None, list[Range]]:
    """Which part of [start, end) the rollups answer (the whole hours before ``cut``) and which parts the
    ledger does (the rest: partial hours at the edges, and everything from ``cut`` on); each non-empty."""
    first_whole, last_whole = ceil_hour(start), floor_hour(end)
    rolled_end = min(last_whole, cut) if cut is not None else last_whole
    if rolled_end > first_whole:
        rolled: Range | None = (first_whole, rolled_end)
        ledger = [(start, first_whole), (rolled_end, end)]
    else:
        rolled, ledger = None, [(start, end)]
    return rolled, [(low, high) for low, high in ledger if high > low]


# One row of spend per tag set: (team, feature, model, is idle GPU time, nano-USD).
TagSpend = tuple[str | None, str | None, str | None, bool, int]


def spend_of_scopes(
    session: Session, scopes: Sequence[Scope], basis: str, start: datetime, end: datetime
) -> list[int]:
    """Each scope's spend in [start, end) (what ``spend_nusd`` gives for it), from one read per source
    for all of them: the spend per tag set, summed per scope here. Many budgets cost one query, not one
    each."""
    if end <= start:
        return [0 for _ in scopes]
    rolled, ledger_ranges = split_by_source(start, end, rollup_cut(session, basis))
    rows: list[TagSpend] = []
    if rolled is not None:
        rows += _tag_spend_from_rollups(session, basis, *rolled)
    for range_start, range_end in ledger_ranges:
        rows += _tag_spend_from_ledger(session, basis, range_start, range_end)
    return [
        sum(nusd for *tags, idle, nusd in rows if _in_scope(scope, basis, tags, idle)) for scope in scopes
    ]


def _in_scope(scope: Scope, basis: str, tags: list[str | None], idle: bool) -> bool:
    if idle:
        # Idle GPU time belongs to no team, feature or model: only a fleet-wide GPU budget pays it.
        return basis == "gpu" and scope.is_global
    wanted = (scope.team, scope.feature, scope.model)
    return all(value is None or value == tag for value, tag in zip(wanted, tags, strict=True))


def _tag_spend_from_rollups(session: Session, basis: str, start: datetime, end: datetime) -> list[TagSpend]:
    r = UsageRollupRow
    tags = (r.team, r.feature, r.model)
    in_range = (r.hour >= start, r.hour < end)
    if basis == "gpu":
        gpu = select(*tags, func.sum(r.gpu_cost_nusd), func.sum(r.idle_cost_nusd)).where(*in_range)
        rows: list[TagSpend] = []
        for team, feature, model, used, idle in session.execute(gpu.group_by(*tags)):
            rows += [
                (team, feature, model, False, int(used or 0)),
                (team, feature, model, True, int(idle or 0)),
            ]
        return rows
    tokens = select(*tags, func.sum(r.token_cost_nusd)).where(*in_range)
    return [(t, f, m, False, int(n or 0)) for t, f, m, n in session.execute(tokens.group_by(*tags))]


def _tag_spend_from_ledger(session: Session, basis: str, start: datetime, end: datetime) -> list[TagSpend]:
    if basis == "gpu":
        return _gpu_tag_spend_from_ledger(session, start, end)
    t = TokenLedgerRow
    tags = (t.team, t.feature, t.model)
    query = select(*tags, func.sum(t.cost_nusd)).where(t.started_at >= start, t.started_at < end)
    return [(team, f, m, False, int(n or 0)) for team, f, m, n in session.execute(query.group_by(*tags))]


def _gpu_tag_spend_from_ledger(session: Session, start: datetime, end: datetime) -> list[TagSpend]:
    g = GpuLedgerRow
    # Idle windows are the rows that belong to no call.
    idle = g.request_id.is_(None)
    query = select(g.team, g.feature, g.model, idle, func.sum(g.cost_nusd)).where(
        g.window_start >= start, g.window_start < end
    )
    grouped = session.execute(query.group_by(g.team, g.feature, g.model, idle))
    return [(t, f, m, bool(i), int(n or 0)) for t, f, m, i, n in grouped]


def hourly_rollup_spend(
    session: Session, scope: Scope, basis: str, start: datetime, end: datetime
) -> dict[datetime, int]:
    """The rollups' spend within ``scope`` per hour in [start, end) (hours with none left out). Only
    meaningful for hours before the rollups' cut (``split_by_source``)."""
    return {hour: int(total or 0) for hour, total in _from_rollups(session, scope, basis, start, end, "hour")}


def newest_spend_at(session: Session, basis: str) -> datetime | None:
    """The latest time any spend of ``basis`` is recorded at (None: none yet): ledger reads past it are
    known to be empty."""
    if basis == "gpu":
        newest: datetime | None = session.scalar(select(func.max(GpuLedgerRow.window_start)))
    else:
        newest = session.scalar(select(func.max(TokenLedgerRow.started_at)))
    return newest


def ledger_spend_nusd(session: Session, scope: Scope, basis: str, start: datetime, end: datetime) -> int:
    """Spend within ``scope`` in [start, end) read from the ledger alone (for ranges past the cut)."""
    return sum(int(total or 0) for _, total in _from_ledger(session, scope, basis, start, end, None))


def _add(totals: Counter[str], rows: Any) -> None:
    for group, total in rows:
        totals[IDLE_GROUP if group == IDLE else str(group or "")] += int(total or 0)


def _filters(table: Any, scope: Scope) -> list[Any]:
    pairs = ((table.team, scope.team), (table.feature, scope.feature), (table.model, scope.model))
    return [column == value for column, value in pairs if value is not None]


def _from_rollups(
    session: Session,
    scope: Scope,
    basis: str,
    start: datetime,
    end: datetime,
    by: GroupBy | Literal["hour"] | None,
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
