"""Hourly rollup of closed traces (``trace_rollups``), written by the traces job, read by the dashboards.

Per hour of the first call (UTC), team, feature and factor bin: how many traces and the sums of their
totals and breakdown parts. Whenever the traces job writes or deletes a trace, the hours it was in
before and after are recomputed whole from ``trace_costs`` (delete, aggregate, insert) in the same
transaction, so the rollup always equals what a scan of ``trace_costs`` would give, and a rerun changes
nothing.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, delete, func, insert, literal_column, select
from sqlalchemy.orm import Session

from finops.traces.models import BREAKDOWN_PARTS, TraceCostRow, TraceRollupRow

HOUR = timedelta(hours=1)
# Upper bounds of the factor bins of the distribution (the last bin is open-ended; the first one also
# takes any factor below 1).
FACTOR_BIN_EDGES = (Decimal("1.5"), Decimal("2"), Decimal("3"), Decimal("5"), Decimal("10"), Decimal("20"))
# The bin of the traces with no factor (no baseline), after the len(FACTOR_BIN_EDGES) + 1 factor bins.
NO_FACTOR_BIN = len(FACTOR_BIN_EDGES) + 1
# The summed columns, in the same order in trace_costs and trace_rollups.
SUMMED = (
    "calls",
    "retries",
    "total_tokens",
    "total_cost_nusd",
    *(f"{part}_tokens" for part in BREAKDOWN_PARTS),
    *(f"{part}_cost_nusd" for part in BREAKDOWN_PARTS),
)


def factor_bin(factor: Decimal | None) -> int:
    """The bin of a factor: an edge belongs to the bin above it."""
    return NO_FACTOR_BIN if factor is None else bisect_right(FACTOR_BIN_EDGES, factor)


def factor_bin_of(factor: Any) -> Any:
    """``factor_bin`` as SQL. The edges are literals, not bind parameters, so that the same expression
    in SELECT and GROUP BY is one expression to Postgres."""
    whens: list[tuple[Any, int]] = [(factor.is_(None), NO_FACTOR_BIN)]
    whens += [(factor < literal_column(str(edge)), index) for index, edge in enumerate(FACTOR_BIN_EDGES)]
    return case(*whens, else_=len(FACTOR_BIN_EDGES))


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def aggregate_traces(
    session: Session, start: datetime, end: datetime, *groups: Any, where: Sequence[Any] = ()
) -> Any:
    """(*groups, factor bin, traces, *SUMMED sums) of the traces whose first call is in [start, end)
    (and that pass ``where``)."""
    t = TraceCostRow
    bin_ = factor_bin_of(t.amplification_tokens)
    return session.execute(
        select(*groups, bin_, func.count(), *(func.sum(getattr(t, name)) for name in SUMMED))
        .where(t.first_call_at >= start, t.first_call_at < end, *where)
        .group_by(*groups, bin_)
    )


def recompute_hours(session: Session, hours: Iterable[datetime]) -> int:
    """Rewrite the rollup rows of each hour from ``trace_costs``; returns the rows written."""
    written = 0
    for hour in sorted({hour_of(h) for h in hours}):
        session.execute(delete(TraceRollupRow).where(TraceRollupRow.hour == hour))
        values: list[dict[str, Any]] = []
        for row in aggregate_traces(session, hour, hour + HOUR, TraceCostRow.team, TraceCostRow.feature):
            team, feature, bin_, traces, *sums = row
            value: dict[str, Any] = {
                "hour": hour,
                "team": team,
                "feature": feature,
                "factor_bin": int(bin_),
                "traces": int(traces),
            }
            value.update({name: int(total or 0) for name, total in zip(SUMMED, sums, strict=True)})
            values.append(value)
        if values:
            session.execute(insert(TraceRollupRow), values)
        written += len(values)
    return written


def recompute_range(session: Session, start: datetime, end: datetime) -> int:
    """Rewrite every hour that overlaps [start, end) (after trace_costs was written by other means)."""
    hours, hour = [], hour_of(start)
    while hour < end:
        hours.append(hour)
        hour += HOUR
    return recompute_hours(session, hours)
