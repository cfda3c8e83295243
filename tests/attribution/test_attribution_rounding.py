"""Largest-remainder rounding, its uncertainty check, and the exact work integrals."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from finops.attribution.apportion import largest_remainder
from finops.attribution.exact import exact_work_values
from finops.attribution.totals import anchored_units


def test_largest_remainder_by_hand() -> None:
    # Quotas 3.5, 3.5, 3.0 of 10: one unit left, a tie served in row order.
    assert largest_remainder(10, [7, 7, 6], 2) == [4, 3, 3]
    assert largest_remainder(10, [6, 7, 7], 2) == [3, 4, 3]
    assert largest_remainder(0, [0, 0], 5) == [0, 0]
    assert largest_remainder(5, [5], 1) == [5]
    with pytest.raises(ValueError):
        largest_remainder(10, [1, 2], 3)


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=30))
def test_largest_remainder_conserves_and_stays_within_one_unit(total: int, weights: list[int]) -> None:
    assume(sum(weights) > 0)
    denominator = sum(weights)
    numerators = [total * w for w in weights]
    shares = largest_remainder(total, numerators, denominator)
    assert shares is not None
    assert sum(shares) == total
    for share, w in zip(shares, weights, strict=True):
        assert abs(share - Fraction(total * w, denominator)) < 1


@settings(max_examples=500)
@given(
    st.integers(1, 10**6),
    st.lists(st.integers(0, 10**4), min_size=2, max_size=12),
    st.integers(1, 10**3),
    st.data(),
)
def test_an_answer_despite_a_margin_is_the_exact_answer(
    total: int, weights: list[int], margin: int, data
) -> None:
    """Perturb exact numerators by less than the margin (keeping their sum): any answer is the exact one."""
    assume(sum(weights) > 0)
    denominator = sum(weights) * 1000
    exact = [total * w * 1000 for w in weights]
    noise = [data.draw(st.integers(-margin + 1, margin - 1)) for _ in weights[:-1]]
    last = -sum(noise)
    assume(abs(last) < margin)
    approximate = [n + e for n, e in zip(exact, [*noise, last], strict=True)]
    assume(min(approximate) >= 0)
    answer = largest_remainder(total, approximate, denominator, margin=margin, uncertain_rows=len(weights))
    if answer is not None:
        assert answer == largest_remainder(total, exact, denominator)


def test_uncertain_floors_and_cuts_are_refused() -> None:
    # Quotas 1.0 and 1.0 of 2: a remainder of 0 could be a hair below the integer.
    assert largest_remainder(2, [5, 5], 5, margin=1, uncertain_rows=2) is None
    # Quotas 0.7 and 0.3 of 1, margin 0.1: the one unit clearly goes to the first row.
    assert largest_remainder(1, [7, 3], 10, margin=1, uncertain_rows=2) == [1, 0]
    # Quotas 0.55 and 0.45, margin 0.06: the gap 0.1 is within twice the margin.
    assert largest_remainder(1, [55, 45], 100, margin=6, uncertain_rows=2) is None
    # Only the first row is uncertain: the second's exact 0 remainder is fine.
    assert largest_remainder(3, [160, 100, 40], 100, margin=6, uncertain_rows=1) == [2, 1, 0]
    assert largest_remainder(3, [160, 100, 40], 100, margin=6, uncertain_rows=2) is None


def exact_integrals(spans: list[tuple[int, int, int]]) -> list[Fraction]:
    times = sorted({t for s, e, _ in spans for t in (s, e)})
    result = []
    for s, e, w in spans:
        total = Fraction(0)
        for lo, hi in pairwise(times):
            if s <= lo and hi <= e:
                load = sum(w2 for s2, e2, w2 in spans if s2 <= lo and hi <= e2)
                total += Fraction((hi - lo) * w, load)
        result.append(total)
    return result


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.integers(1, 20), st.integers(1, 10**20)), min_size=1, max_size=10
    )
)
def test_exact_work_values_are_proportional_to_the_integrals(raw: list[tuple[int, int, int]]) -> None:
    spans = [(s, s + d, w) for s, d, w in raw]
    values = exact_work_values(spans)
    integrals = exact_integrals(spans)
    scale = Fraction(values[0]) / integrals[0]
    assert [Fraction(v) for v in values] == [scale * i for i in integrals]


def test_anchored_units() -> None:
    assert anchored_units(Fraction(1, 3), 0, 10) == 3
    assert [anchored_units(Fraction(1, 3), k, k + 1) for k in range(6)] == [0, 0, 1, 0, 0, 1]
    assert anchored_units(Fraction(1, 3), -3, 0) == 1
