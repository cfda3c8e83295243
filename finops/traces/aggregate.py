"""Statistics over a group of traces (a team, a feature, a model, a day): how amplified its queries are.

- Percentiles are nearest-rank: of n values in ascending order, the p-th percentile is the value at
  rank ceil(p x n / 100) (1-based), always a value that occurred, never an interpolation. p50 of
  two values is the lower one.
- A trace whose factor is undefined (baseline 0) is left out of that factor's percentiles but still
  counts in the cost per query: its spend was real.
- Cost per user query = the mean total cost per trace, as an exact fraction of nano-USD.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from finops.traces.amplification import TraceCost


@dataclass(frozen=True, slots=True)
class FactorStats:
    """Nearest-rank percentiles of one amplification factor over the traces where it is defined."""

    traces: int
    p50: Fraction
    p90: Fraction
    max: Fraction


@dataclass(frozen=True, slots=True)
class GroupStats:
    traces: int
    total_cost_nusd: int
    cost_per_query_nusd: Fraction | None  # None for an empty group
    amplification_tokens: FactorStats | None  # None when no trace has the factor defined
    amplification_cost: FactorStats | None


def nearest_rank(ascending: Sequence[Fraction], percent: int) -> Fraction:
    """The ``percent``-th percentile (1..100) of non-empty ``ascending`` values, by nearest rank."""
    if not ascending:
        raise ValueError("no values")
    if not 0 < percent <= 100:
        raise ValueError("percent must be in 1..100")
    rank = -(-percent * len(ascending) // 100)  # ceil without floats
    return ascending[rank - 1]


def factor_stats(factors: Iterable[Fraction | None]) -> FactorStats | None:
    ascending = sorted(factor for factor in factors if factor is not None)
    if not ascending:
        return None
    return FactorStats(
        traces=len(ascending),
        p50=nearest_rank(ascending, 50),
        p90=nearest_rank(ascending, 90),
        max=ascending[-1],
    )


def group_stats(traces: Iterable[TraceCost]) -> GroupStats:
    """Amplification p50 / p90 / max (tokens and cost) and cost per user query of a group of traces."""
    members = list(traces)
    total_cost_nusd = sum(trace.total_cost_nusd for trace in members)
    return GroupStats(
        traces=len(members),
        total_cost_nusd=total_cost_nusd,
        cost_per_query_nusd=Fraction(total_cost_nusd, len(members)) if members else None,
        amplification_tokens=factor_stats(trace.amplification_tokens for trace in members),
        amplification_cost=factor_stats(trace.amplification_cost for trace in members),
    )
