"""Reads over closed traces, shared by the CLI (and later the dashboards, API and alert messages)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from finops.traces.aggregate import FactorStats, factor_stats
from finops.traces.models import TraceCostRow

GroupBy = Literal["feature", "team"]


def top_traces(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    feature: str | None = None,
    team: str | None = None,
    limit: int = 10,
) -> list[TraceCostRow]:
    query = select(TraceCostRow).where(TraceCostRow.first_call_at >= start, TraceCostRow.first_call_at < end)
    if feature is not None:
        query = query.where(TraceCostRow.feature == feature)
    if team is not None:
        query = query.where(TraceCostRow.team == team)
    return list(
        session.scalars(
            query.order_by(TraceCostRow.total_cost_nusd.desc(), TraceCostRow.trace_id).limit(limit)
        )
    )


def amplification_by(
    session: Session, start: datetime, end: datetime, by: GroupBy
) -> list[tuple[str, int, FactorStats | None, Fraction]]:
    """Per group: traces, token-amplification p50/p90/max (nearest rank), and cost per user query."""
    column = getattr(TraceCostRow, by)
    rows = session.execute(
        select(column, TraceCostRow.amplification_tokens, TraceCostRow.total_cost_nusd).where(
            TraceCostRow.first_call_at >= start, TraceCostRow.first_call_at < end
        )
    )
    factors: dict[str, list[Fraction]] = {}
    costs: dict[str, list[int]] = {}
    for group, factor, cost in rows:
        costs.setdefault(group, []).append(int(cost))
        factors.setdefault(group, [])
        if factor is not None:
            factors[group].append(Fraction(Decimal(factor)))
    result = []
    for group in sorted(costs):
        stats = factor_stats(factors[group]) if factors[group] else None
        per_query = Fraction(sum(costs[group]), len(costs[group]))
        result.append((group, len(costs[group]), stats, per_query))
    return result
