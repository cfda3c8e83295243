"""Hand-computed examples of GPU-second attribution, and its input checks."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from finops.attribution import (
    ONE_MINUTE_US,
    BackendRate,
    CallSpan,
    GpuRow,
    attribute_backend,
    attribute_backends,
)

S = 1_000_000  # microseconds per second
MINUTE = ONE_MINUTE_US
# 3.6 USD per GPU-hour is exactly 1 nano-USD per GPU-microsecond: costs read like GPU time.
ONE_NUSD_PER_US = Decimal("3.6")


def call(request_id: str, start_s: float, end_s: float, tokens: int = 100, backend: str = "b") -> CallSpan:
    return CallSpan(request_id, backend, round(start_s * S), round(end_s * S), tokens, 0)


def by_request(rows: list[GpuRow]) -> dict[tuple[int, str | None], tuple[int, int]]:
    return {(r.window_start_us // MINUTE, r.request_id): (r.gpu_us, r.cost_nusd) for r in rows}


def test_a_lone_call_gets_its_busy_time_and_idle_the_rest() -> None:
    rate = BackendRate("b", Decimal(1), ONE_NUSD_PER_US)
    rows = attribute_backend(rate, [call("a", 10, 40)], 0, MINUTE)
    assert rows == [
        GpuRow("b", 0, MINUTE, "a", 30 * S, 30 * S),
        GpuRow("b", 0, MINUTE, None, 30 * S, 30 * S),
    ]


def test_overlapping_calls_share_and_windows_split_a_call() -> None:
    # x [0, 10) and y [5, 15) share [5, 10) equally: 7.5 s each. z [50, 70) crosses the minute.
    # 2 USD/h on one GPU = 1/1.8 nUSD per microsecond: 33,333,333.3 nUSD a minute, so the first
    # minute costs floor(33333333.3) = 33,333,333 and the second floor(66666666.6) - 33333333 = 33,333,333.
    rate = BackendRate("b", Decimal(1), Decimal(2))
    calls = [call("x", 0, 10), call("y", 5, 15), call("z", 50, 70)]
    rows = attribute_backend(rate, calls, 0, 2 * MINUTE)
    assert by_request(rows) == {
        # cost quotas 4166666.625, 4166666.625, 5555555.5, 19444444.25: two units left go to x and y.
        (0, "x"): (7_500_000, 4_166_667),
        (0, "y"): (7_500_000, 4_166_667),
        (0, "z"): (10_000_000, 5_555_555),
        (0, None): (35_000_000, 19_444_444),
        # 5555555.5 and 27777777.5 tie for the one unit left: the request wins, idle comes last.
        (1, "z"): (10_000_000, 5_555_556),
        (1, None): (50_000_000, 27_777_777),
    }


def test_weights_follow_the_token_work_rate() -> None:
    # Same span, three times the tokens: three times the rate, so 3/4 of the shared time.
    rate = BackendRate("b", Decimal(1), ONE_NUSD_PER_US)
    rows = attribute_backend(rate, [call("a", 0, 20, tokens=300), call("b", 0, 20, tokens=100)], 0, MINUTE)
    assert by_request(rows) == {
        (0, "a"): (15 * S, 15 * S),
        (0, "b"): (5 * S, 5 * S),
        (0, None): (40 * S, 40 * S),
    }


def test_custom_weights() -> None:
    rate = BackendRate("b", Decimal(1), ONE_NUSD_PER_US)
    calls = [call("a", 0, 30), call("b", 0, 30)]
    rows = attribute_backend(
        rate, calls, 0, MINUTE, weights=lambda cs: [2 if c.request_id == "a" else 1 for c in cs]
    )
    assert by_request(rows)[0, "a"] == (20 * S, 20 * S)
    assert by_request(rows)[0, "b"] == (10 * S, 10 * S)


def test_a_call_with_no_tokens_weighs_as_one_token() -> None:
    rate = BackendRate("b", Decimal(1), ONE_NUSD_PER_US)
    alone = attribute_backend(rate, [call("silent", 0, 6, tokens=0)], 0, MINUTE)
    assert by_request(alone)[0, "silent"] == (6 * S, 6 * S)
    shared = attribute_backend(
        rate, [call("silent", 0, 6, tokens=0), call("busy", 0, 6, tokens=999)], 0, MINUTE
    )
    assert by_request(shared)[0, "silent"] == (6_000, 6_000)
    assert by_request(shared)[0, "busy"] == (5_994_000, 5_994_000)


def test_a_call_of_zero_duration_gets_no_row() -> None:
    rate = BackendRate("b", Decimal(1), ONE_NUSD_PER_US)
    rows = attribute_backend(rate, [call("instant", 5, 5)], 0, MINUTE)
    assert rows == [GpuRow("b", 0, MINUTE, None, MINUTE, MINUTE)]


def test_a_mig_slice_supplies_half_the_gpu_time() -> None:
    rate = BackendRate("mig", Decimal("0.5"), Decimal(2))
    rows = attribute_backend(rate, [call("a", 0, 30, backend="mig")], 0, MINUTE)
    # 0.5 GPU x 2 USD/h for a minute = 16,666,666.6 nUSD: floor at the minute's end from the epoch.
    assert rows == [
        GpuRow("mig", 0, MINUTE, "a", 15 * S, 8_333_333),
        GpuRow("mig", 0, MINUTE, None, 15 * S, 8_333_333),
    ]


def test_window_totals_are_anchored_floors_that_never_drift() -> None:
    # 1/7 GPU: 60e6 / 7 = 8,571,428.57 micro-GPU-seconds a minute, not an integer.
    rate = BackendRate("b", Fraction(1, 7), Decimal(0))
    rows = attribute_backend(rate, [], 0, 7 * MINUTE)
    totals = [r.gpu_us for r in rows]
    assert totals == [8_571_428, 8_571_429, 8_571_428, 8_571_429, 8_571_428, 8_571_429, 8_571_429]
    assert sum(totals) == MINUTE
    # The same minute computed alone gets the same total.
    assert attribute_backend(rate, [], 3 * MINUTE, 4 * MINUTE)[0].gpu_us == totals[3]


def test_calls_are_clipped_to_the_range() -> None:
    rate = BackendRate("b", Decimal(1), ONE_NUSD_PER_US)
    calls = [call("early", -30, 10), call("late", 50, 90), call("outside", 70, 80)]
    rows = attribute_backend(rate, calls, 0, MINUTE)
    assert by_request(rows) == {
        (0, "early"): (10 * S, 10 * S),
        (0, "late"): (10 * S, 10 * S),
        (0, None): (40 * S, 40 * S),
    }


def test_many_backends_give_idle_rows_to_backends_without_calls_in_name_order() -> None:
    rates = [BackendRate("z", Decimal(1), ONE_NUSD_PER_US), BackendRate("a", Decimal(2), ONE_NUSD_PER_US)]
    rows = attribute_backends(rates, [call("q", 0, 60, backend="z")], 0, MINUTE)
    assert rows == [
        GpuRow("a", 0, MINUTE, None, 2 * MINUTE, 2 * MINUTE),
        GpuRow("z", 0, MINUTE, "q", MINUTE, MINUTE),
        GpuRow("z", 0, MINUTE, None, 0, 0),
    ]


def test_the_row_order_is_backend_window_request_id_idle_last() -> None:
    rate = BackendRate("b", Decimal(1), ONE_NUSD_PER_US)
    calls = [call("m", 0, 70), call("c", 1, 2), call("x", 61, 62)]
    rows = attribute_backend(rate, calls, 0, 2 * MINUTE)
    assert [(r.window_start_us // MINUTE, r.request_id) for r in rows] == [
        (0, "c"),
        (0, "m"),
        (0, None),
        (1, "m"),
        (1, "x"),
        (1, None),
    ]


@pytest.mark.parametrize(
    ("start_us", "end_us", "window_us"),
    [(1, MINUTE, MINUTE), (0, MINUTE + 1, MINUTE), (MINUTE, 0, MINUTE), (0, MINUTE, 0)],
)
def test_a_range_must_be_whole_windows(start_us: int, end_us: int, window_us: int) -> None:
    with pytest.raises(ValueError):
        attribute_backend(BackendRate("b", 1, 1), [], start_us, end_us, window_us=window_us)


def test_input_errors_are_refused() -> None:
    rate = BackendRate("b", 1, 1)
    with pytest.raises(ValueError, match="other"):
        attribute_backend(rate, [call("a", 0, 1, backend="other")], 0, MINUTE)
    with pytest.raises(ValueError, match="no rate"):
        attribute_backends([rate], [call("a", 0, 1, backend="other")], 0, MINUTE)
    with pytest.raises(ValueError, match="twice"):
        attribute_backends([rate, rate], [], 0, MINUTE)
    with pytest.raises(ValueError, match="unique"):
        attribute_backend(rate, [call("a", 0, 1), call("a", 2, 3)], 0, MINUTE)
    with pytest.raises(ValueError, match="weight"):
        attribute_backend(rate, [call("a", 0, 1)], 0, MINUTE, weights=lambda cs: [0 for _ in cs])
    with pytest.raises(ValueError):
        CallSpan("a", "b", 2, 1, 0, 0)
    with pytest.raises(ValueError):
        CallSpan("a", "b", 1, 2, -1, 0)
    with pytest.raises(TypeError):
        BackendRate("b", 0.5, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        BackendRate("b", 0, 1)
    with pytest.raises(ValueError):
        BackendRate("b", 1, Decimal(-1))
    with pytest.raises(ValueError):
        BackendRate("b", Decimal("NaN"), 1)


def test_weights_too_large_for_the_fixed_point_clock_still_give_exact_rows() -> None:
    # Loads past 2**128 make the sweep's clock steps zero; the exact path must take over.
    rate = BackendRate("b", Decimal(1), ONE_NUSD_PER_US)
    calls = [call("a", 0, 30), call("b", 10, 40)]
    huge = 2**200
    rows = attribute_backend(rate, calls, 0, MINUTE, weights=lambda cs: [huge for _ in cs])
    assert by_request(rows) == {
        (0, "a"): (20 * S, 20 * S),
        (0, "b"): (20 * S, 20 * S),
        (0, None): (20 * S, 20 * S),
    }
    alone = attribute_backend(rate, calls[:1], 0, MINUTE, weights=lambda cs: [huge for _ in cs])
    assert by_request(alone)[0, "a"] == (30 * S, 30 * S)
