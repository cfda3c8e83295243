"""Reads over closed traces, shared by the CLI (and later the dashboards, API and alert messages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from finops.traces import rollup
from finops.traces.aggregate import FactorStats, factor_stats
from finops.traces.amplification import TraceCost, trace_order
from finops.traces.calls import TraceCall
from finops.traces.models import BREAKDOWN_PARTS, TraceCostRow, TraceRollupRow
from finops.traces.rollup import FACTOR_BIN_EDGES, SUMMED

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
    """The factor distribution and the per-feature breakdowns of the traces that began in [start, end).

    The whole hours inside the period are read from the hourly rollup (``trace_rollups``), so the read
    grows with hours and features, not with traces; only the part of an hour at either end of a period
    that does not fall on hour boundaries is summed from ``trace_costs``. The result is exactly what a
    scan of ``trace_costs`` over the period gives."""
    n_sums = len(SUMMED)
    sums: dict[tuple[str, int], list[int]] = {}

    def add(rows: Any) -> None:
        for name, bin_, *values in rows:
            total = sums.setdefault((str(name), int(bin_)), [0] * (1 + n_sums))
            for index, value in enumerate(values):
                total[index] += int(value or 0)

    first_hour = rollup.hour_of(start)
    if first_hour < start:
        first_hour += rollup.HOUR
    last_hour = max(first_hour, rollup.hour_of(end))
    if first_hour < last_hour:
        r = TraceRollupRow
        filters: list[Any] = [r.hour >= first_hour, r.hour < last_hour]
        if team is not None:
            filters.append(r.team == team)
        if feature is not None:
            filters.append(r.feature == feature)
        add(
            session.execute(
                select(
                    r.feature, r.factor_bin, func.sum(r.traces), *(func.sum(getattr(r, c)) for c in SUMMED)
                )
                .where(*filters)
                .group_by(r.feature, r.factor_bin)
            )
        )
        edges = [(start, first_hour), (last_hour, end)]
    else:
        edges = [(start, end)]
    t = TraceCostRow
    for low, high in edges:
        if low < high:
            add(
                rollup.aggregate_traces(
                    session, low, high, t.feature, where=_trace_filters(low, high, team, feature)
                )
            )

    labels = factor_bin_labels()  # in bin order
    distribution: list[tuple[str, str, int]] = []
    features: list[FeatureBreakdown] = []
    for name in sorted({name for name, _ in sums}):
        totals = [0] * (1 + n_sums)
        for bin_, label in enumerate(labels):
            found = sums.get((name, bin_))
            if found is None or not found[0]:
                continue
            distribution.append((name, label, found[0]))
            totals = [a + b for a, b in zip(totals, found, strict=True)]
        named = dict(zip(SUMMED, totals[1:], strict=True))
        features.append(
            FeatureBreakdown(
                feature=name,
                traces=totals[0],
                total_tokens=named["total_tokens"],
                total_cost_nusd=named["total_cost_nusd"],
                tokens={part: named[f"{part}_tokens"] for part in BREAKDOWN_PARTS},
                cost_nusd={part: named[f"{part}_cost_nusd"] for part in BREAKDOWN_PARTS},
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
