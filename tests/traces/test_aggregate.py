"""Group statistics: nearest-rank percentiles and cost per query."""

from __future__ import annotations

from fractions import Fraction

import pytest

from finops.traces import compute, group_stats, nearest_rank
from tests.traces.support import chat


def test_nearest_rank() -> None:
    values = [Fraction(n) for n in range(1, 11)]
    assert nearest_rank(values, 50) == 5
    assert nearest_rank(values, 90) == 9
    assert nearest_rank(values, 91) == 10
    assert nearest_rank(values, 100) == 10
    assert nearest_rank([Fraction(3), Fraction(7)], 50) == 3
    assert nearest_rank([Fraction(4)], 1) == 4
    with pytest.raises(ValueError):
        nearest_rank([], 50)
    with pytest.raises(ValueError):
        nearest_rank(values, 0)


def test_group_stats() -> None:
    traces = [
        compute("bare", [chat("a", 0, user=10, out=10)]),  # factor 1
        compute("ctx", [chat("b", 0, system=20, user=10, out=10)]),  # tokens 2
        compute("ctx3", [chat("c", 0, system=40, user=10, out=10)]),  # tokens 3
        compute("down", [chat("d", 0, user=10, status=500)]),  # undefined, cost still counts
    ]
    stats = group_stats(traces)
    assert stats.traces == 4
    assert stats.total_cost_nusd == 4_000 + 6_000 + 8_000 + 1_000
    assert stats.cost_per_query_nusd == Fraction(19_000, 4)
    assert stats.amplification_tokens is not None
    assert stats.amplification_tokens.traces == 3
    assert stats.amplification_tokens.p50 == 2
    assert stats.amplification_tokens.p90 == 3
    assert stats.amplification_tokens.max == 3
    assert stats.amplification_cost is not None
    # Cost factors: 4_000/4_000, 6_000/4_000, 8_000/4_000.
    assert stats.amplification_cost.p50 == Fraction(3, 2)
    assert stats.amplification_cost.max == 2


def test_empty_group() -> None:
    stats = group_stats([])
    assert stats.traces == 0
    assert stats.cost_per_query_nusd is None
    assert stats.amplification_tokens is None
    assert stats.amplification_cost is None
