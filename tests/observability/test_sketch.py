"""The latency sketch: quantiles within the stated relative error, and merging equals sketching the union."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finops.observability.sketch import MIN_VALUE, RELATIVE_ACCURACY, Sketch, SketchError, merged

# Latencies in ms, from sub-microsecond (reported as 0) to a day.
latency = st.one_of(
    st.floats(min_value=0.0, max_value=86_400_000.0, allow_nan=False),
    st.sampled_from([0.0, MIN_VALUE, 1.0, 1.0201, 250.0, 1e6]),
)
samples = st.lists(latency, min_size=1, max_size=400)
quantiles = st.sampled_from([0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0]) | st.floats(0.0, 1.0)


def exact_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def within_error(estimate: float, exact: float) -> bool:
    if exact <= MIN_VALUE:
        return estimate == 0.0
    # The stated error, plus a hair for floating-point rounding of log() at bucket edges.
    return abs(estimate - exact) <= RELATIVE_ACCURACY * exact * (1 + 1e-9)


@settings(max_examples=300)
@given(samples, quantiles)
def test_quantile_is_within_the_stated_relative_error_of_the_exact_quantile(values, q):
    estimate = Sketch().extend(values).quantile(q)
    assert estimate is not None
    assert within_error(estimate, exact_quantile(values, q))


@settings(max_examples=200)
@given(st.lists(samples, min_size=1, max_size=6), quantiles)
def test_merging_sketches_equals_sketching_the_union(parts, q):
    union = [v for part in parts for v in part]
    combined = merged(Sketch().extend(part) for part in parts)
    assert combined == Sketch().extend(union)
    assert combined.count == len(union)
    estimate = combined.quantile(q)
    assert estimate is not None and within_error(estimate, exact_quantile(union, q))


@given(samples)
def test_stored_text_round_trips(values):
    sketch = Sketch().extend(values)
    assert Sketch.from_json(sketch.to_json()) == sketch


def test_examples():
    sketch = Sketch().extend([10.0] * 50 + [20.0] * 40 + [1000.0] * 10)
    assert sketch.quantile(0.5) == pytest.approx(10.0, rel=RELATIVE_ACCURACY)
    # Rank floor(0.9 * 99) = 89 is the last 20; rank 90 the first 1000.
    assert sketch.quantile(0.9) == pytest.approx(20.0, rel=RELATIVE_ACCURACY)
    assert sketch.quantile(0.91) == pytest.approx(1000.0, rel=RELATIVE_ACCURACY)
    assert Sketch().quantile(0.5) is None


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_values_are_refused(bad):
    with pytest.raises(SketchError, match="finite number"):
        Sketch().add(bad)


@pytest.mark.parametrize(
    "text", ["", "[]", '{"z": 1}', '{"z": 0, "k": [1], "c": []}', '{"z": -1, "k": [], "c": []}']
)
def test_bad_stored_text_is_refused(text):
    with pytest.raises(SketchError, match="not a stored latency sketch"):
        Sketch.from_json(text)


def test_quantile_out_of_range_is_refused():
    with pytest.raises(SketchError, match="within"):
        Sketch().extend([1.0]).quantile(1.5)
