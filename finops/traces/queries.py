"""Reads over closed traces, shared by the CLI (and later the dashboards, API and alert messages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from finops.traces.aggregate import FactorStats, factor_stats
from finops.traces.amplification import TraceCost, trace_order
from finops.traces.calls import TraceCall
from finops.traces.models import BREAKDOWN_PARTS, TraceCostRow

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


# --- Amplification pages of the dashboards ---

# Upper bounds of the factor bins of the distribution (the last bin is open-ended).
FACTOR_BIN_EDGES = (Decimal("1.5"), Decimal("2"), Decimal("3"), Decimal("5"), Decimal("10"), Decimal("20"))
UNDEFINED_FACTOR = "n/a"


def factor_bin_labels() -> list[str]:
    """The bins' names in order: "1-1.5x", ..., "20x+", then "n/a" for traces with no baseline."""
    labels, low = [], Decimal(1)
    for high in FACTOR_BIN_EDGES:
        labels.append(f"{low.normalize():f}-{high.normalize():f}x")
        low = high
    return [*labels, f"{low.normalize():f}x+", UNDEFINED_FACTOR]


def _trace_filters(start: datetime, end: datetime, team: str | None, feature: str | None) -> list[Any]:
    t = TraceCostRow
    filters: list[Any] = [t.first_call_at >= start, t.first_call_at < end]
    if team is not None:
        filters.append(t.team == team)
    if feature is not None:
        filters.append(t.feature == feature)
    return filters


@dataclass(frozen=True)
class FeatureBreakdown:
    """A feature's traces in a period: the additive breakdown, in tokens and in nano-USD."""

    feature: str
    traces: int
    total_tokens: int
    total_cost_nusd: int
    tokens: dict[str, int]
    cost_nusd: dict[str, int]

    @property
    def amplification_tokens(self) -> Fraction | None:
        """The feature's pooled factor: all its tokens over all its baselines."""
        baseline = self.tokens["baseline"]
        return Fraction(self.total_tokens, baseline) if baseline else None


@dataclass(frozen=True)
class AmplificationOverview:
    distribution: list[tuple[str, str, int]]  # (feature, factor bin label, traces)
    features: list[FeatureBreakdown]


def amplification_overview(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    team: str | None = None,
    feature: str | None = None,
) -> AmplificationOverview:
    """The factor distribution and the per-feature breakdowns of the traces that began in [start, end),
    from one pass over them, grouped by feature alone: each factor bin is a filtered count, so that the
    database hashes a few dozen groups instead of sorting every trace by an expression."""
    t = TraceCostRow
    labels = factor_bin_labels()
    factor = t.amplification_tokens
    lows: list[Decimal | None] = [Decimal(1), *FACTOR_BIN_EDGES]
    highs: list[Decimal | None] = [*FACTOR_BIN_EDGES, None]
    bins: list[Any] = []
    for index, (low, high) in enumerate(zip(lows, highs, strict=True)):
        conditions: list[Any] = [factor.is_not(None)]
        if index > 0 and low is not None:
            conditions.append(factor >= low)  # the first bin also takes any factor below 1
        if high is not None:
            conditions.append(factor < high)
        bins.append(func.count().filter(and_(*conditions)))
    bins.append(func.count().filter(factor.is_(None)))
    part_tokens = [getattr(t, f"{part}_tokens") for part in BREAKDOWN_PARTS]
    part_costs = [getattr(t, f"{part}_cost_nusd") for part in BREAKDOWN_PARTS]
    rows = session.execute(
        select(
            t.feature,
            func.count(),
            func.sum(t.total_tokens),
            func.sum(t.total_cost_nusd),
            *(func.sum(c) for c in part_tokens),
            *(func.sum(c) for c in part_costs),
            *bins,
        )
        .where(*_trace_filters(start, end, team, feature))
        .group_by(t.feature)
        .order_by(t.feature)
    )
    n = len(BREAKDOWN_PARTS)
    distribution: list[tuple[str, str, int]] = []
    features: list[FeatureBreakdown] = []
    for row in rows:
        name = str(row[0])
        values = [int(v or 0) for v in row[1:]]
        counts = values[3 + 2 * n :]
        distribution += [(name, label, count) for label, count in zip(labels, counts, strict=True) if count]
        features.append(
            FeatureBreakdown(
                feature=name,
                traces=values[0],
                total_tokens=values[1],
                total_cost_nusd=values[2],
                tokens=dict(zip(BREAKDOWN_PARTS, values[3 : 3 + n], strict=True)),
                cost_nusd=dict(zip(BREAKDOWN_PARTS, values[3 + n : 3 + 2 * n], strict=True)),
            )
        )
    return AmplificationOverview(distribution, features)


def factor_distribution(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    team: str | None = None,
    feature: str | None = None,
) -> list[tuple[str, str, int]]:
    """(feature, bin label, traces) for the token amplification factor of the traces that began in
    [start, end); binned in the database so that the page reads a few rows, not every trace."""
    return amplification_overview(session, start, end, team=team, feature=feature).distribution


def breakdown_by_feature(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    team: str | None = None,
    feature: str | None = None,
) -> list[FeatureBreakdown]:
    """Per feature, the sums of every breakdown part; parts add up to the totals exactly."""
    return amplification_overview(session, start, end, team=team, feature=feature).features


def trace_detail(
    session: Session, trace_id: str, *, team: str | None = None
) -> tuple[TraceCost, list[TraceCall]] | None:
    """One trace computed from its ledger calls (closed or still open), for the waterfall.

    With ``team``, a trace whose first call belongs to another team is not found: a team member sees
    only its own team's traces."""
    from finops.traces.service import compute_trace

    found = compute_trace(session, trace_id)
    if found is None:
        return None
    cost, calls = found
    first = min(calls, key=trace_order)
    if team is not None and first.team != team:
        return None
    return cost, calls
