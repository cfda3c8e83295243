"""Property tests of GPU-second attribution, against a brute-force exact model written here with Fractions."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finops.attribution import BackendRate, CallSpan, GpuRow, attribute_backend, attribute_backends
from finops.attribution.exact import exact_work_values

EPOCH_US = 1_767_225_600_000_000  # a multiple of every window length used below
# Where the engine looks up its exact path, to watch which windows take it.
FALLBACK = "finops.attribution.gpu_seconds.exact_work_values"


# --- the exact model, the slow and obvious way -------------------------------------------------------


def model_weight(c: CallSpan) -> int:
    return max(c.prompt_tokens + c.completion_tokens, 1) * 10**18 // (c.end_us - c.start_us)


def model_round(total: int, quotas: list[tuple[tuple[int, str], Fraction]]) -> dict[str, int]:
    """Largest remainder over exact Fraction quotas; ties by (0, request_id) before (1, '') for idle."""
    shares = {key[1]: math.floor(q) for key, q in quotas}
    missing = total - sum(shares.values())
    ranked = sorted(quotas, key=lambda kq: (-(kq[1] - math.floor(kq[1])), kq[0]))
    for key, _ in ranked[:missing]:
        shares[key[1]] += 1
    return shares


def model_rows(
    rate: BackendRate, calls: Sequence[CallSpan], start_us: int, end_us: int, window_us: int
) -> list[GpuRow]:
    gpus = Fraction(rate.gpus)
    nusd_per_us = gpus * Fraction(rate.usd_per_gpu_hour) / Fraction("3.6")
    live = [c for c in calls if c.end_us > c.start_us]
    rows: list[GpuRow] = []
    for window_start in range(start_us, end_us, window_us):
        window_end = window_start + window_us
        cuts = {window_start, window_end}
        cuts |= {t for c in live for t in (c.start_us, c.end_us) if window_start < t < window_end}
        gpu_share: dict[str, Fraction] = defaultdict(Fraction)
        idle = Fraction(0)
        for lo, hi in pairwise(sorted(cuts)):
            active = [c for c in live if c.start_us <= lo and c.end_us >= hi]
            load = sum(model_weight(c) for c in active)
            if not active:
                idle += gpus * (hi - lo)
            for c in active:
                gpu_share[c.request_id] += gpus * (hi - lo) * model_weight(c) / load
        gpu_total = math.floor(gpus * window_end) - math.floor(gpus * window_start)
        cost_total = math.floor(nusd_per_us * window_end) - math.floor(nusd_per_us * window_start)
        fractions = [((0, rid), share / (gpus * window_us)) for rid, share in gpu_share.items()]
        fractions.append(((1, ""), idle / (gpus * window_us)))
        gpu = model_round(gpu_total, [(key, gpu_total * f) for key, f in fractions])
        cost = model_round(cost_total, [(key, cost_total * f) for key, f in fractions])
        for rid in sorted(gpu_share):
            rows.append(GpuRow(rate.name, window_start, window_end, rid, gpu[rid], cost[rid]))
        rows.append(GpuRow(rate.name, window_start, window_end, None, gpu[""], cost[""]))
    return rows


# --- inputs --------------------------------------------------------------------------------------------

gpu_counts: st.SearchStrategy[Decimal | Fraction] = st.sampled_from(
    [Decimal(1), Decimal("0.5"), Decimal(8), Decimal("2.75"), Fraction(1, 3), Fraction(22, 7)]
)
prices: st.SearchStrategy[Decimal | Fraction] = st.sampled_from(
    [Decimal(0), Decimal("2.49"), Decimal("3.6"), Decimal("97.1234"), Fraction(1, 7)]
)


@st.composite
def scenarios(draw: st.DrawFn, max_calls: int = 12) -> tuple[BackendRate, list[CallSpan], int, int, int]:
    """A backend, its calls, and a range of whole windows.

    Two regimes: tiny windows and tiny token counts, where exact ties are everywhere and the engine
    must take its exact path; and realistic microsecond times and token counts, where it should not.
    """
    rate = BackendRate("b", draw(gpu_counts), draw(prices))
    tiny = draw(st.booleans())
    window_us = draw(st.sampled_from([4, 10, 60])) if tiny else draw(st.sampled_from([1_000_000, 60_000_000]))
    windows = draw(st.integers(1, 4))
    start_us = EPOCH_US + draw(st.integers(0, 3)) * window_us
    end_us = start_us + windows * window_us
    tokens = st.integers(0, 3) if tiny else st.integers(0, 100_000)
    calls = []
    for n in range(draw(st.integers(0, max_calls))):
        # Some calls start before the range or end after it, to exercise clipping.
        a = draw(st.integers(start_us - window_us, end_us + window_us))
        b = draw(st.integers(start_us - window_us, end_us + window_us))
        calls.append(CallSpan(f"r{n}", "b", min(a, b), max(a, b), draw(tokens), draw(tokens)))
    return rate, calls, start_us, end_us, window_us


# --- properties ----------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_the_engine_gives_exactly_the_rows_of_the_exact_model(scenario) -> None:
    rate, calls, start_us, end_us, window_us = scenario
    assert attribute_backend(rate, calls, start_us, end_us, window_us=window_us) == model_rows(
        rate, calls, start_us, end_us, window_us
    )


@settings(max_examples=200, deadline=None)
@given(scenarios(max_calls=30))
def test_every_window_conserves_gpu_time_and_money(scenario) -> None:
    rate, calls, start_us, end_us, window_us = scenario
    rows = attribute_backend(rate, calls, start_us, end_us, window_us=window_us)
    gpus = Fraction(rate.gpus)
    nusd_per_us = gpus * Fraction(rate.usd_per_gpu_hour) / Fraction("3.6")
    for window_start in range(start_us, end_us, window_us):
        window_end = window_start + window_us
        in_window = [r for r in rows if r.window_start_us == window_start]
        assert all(r.window_end_us == window_end for r in in_window)
        assert [r.request_id for r in in_window].count(None) == 1
        assert sum(r.gpu_us for r in in_window) == math.floor(gpus * window_end) - math.floor(
            gpus * window_start
        )
        cost = math.floor(nusd_per_us * window_end) - math.floor(nusd_per_us * window_start)
        assert sum(r.cost_nusd for r in in_window) == cost
        if gpus * window_us == int(gpus * window_us):
            assert sum(r.gpu_us for r in in_window) == gpus * window_us
    # Summed over the whole range the totals are the anchored floors: nothing drifts.
    assert sum(r.cost_nusd for r in rows) == math.floor(nusd_per_us * end_us) - math.floor(
        nusd_per_us * start_us
    )


@settings(max_examples=200, deadline=None)
@given(scenarios(max_calls=30))
def test_idle_is_exactly_the_time_nothing_ran(scenario) -> None:
    rate, calls, start_us, end_us, window_us = scenario
    rate = BackendRate(rate.name, 1, rate.usd_per_gpu_hour)
    rows = attribute_backend(rate, calls, start_us, end_us, window_us=window_us)
    for row in rows:
        if row.request_id is None:
            assert row.gpu_us == window_us - busy_us(calls, row.window_start_us, row.window_end_us)


def busy_us(calls: Sequence[CallSpan], start_us: int, end_us: int) -> int:
    """Length of the union of the calls' spans within [start_us, end_us)."""
    total = 0
    reached = start_us
    for c in sorted(calls, key=lambda c: c.start_us):
        lo, hi = max(c.start_us, reached), min(c.end_us, end_us)
        if hi > lo:
            total += hi - lo
            reached = hi
    return total


@settings(max_examples=200, deadline=None)
@given(scenarios(max_calls=1), st.integers(0, 10**6), st.integers(0, 10**6))
def test_a_lone_call_gets_all_its_busy_time(scenario, prompt_tokens: int, completion_tokens: int) -> None:
    rate, _, start_us, end_us, window_us = scenario
    rate = BackendRate(rate.name, 1, rate.usd_per_gpu_hour)
    lone = CallSpan("lone", "b", start_us + 1, end_us - 1, prompt_tokens, completion_tokens)
    rows = attribute_backend(rate, [lone], start_us, end_us, window_us=window_us)
    for row in rows:
        ran_us = max(0, min(lone.end_us, row.window_end_us) - max(lone.start_us, row.window_start_us))
        expected = ran_us if row.request_id == "lone" else window_us - ran_us
        assert row.gpu_us == expected


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.integers(1, 10**5), st.integers(1, 10**7), st.integers(0, 10**7))
def test_two_identical_calls_get_equal_shares(
    scenario, tokens: int, duration_us: int, offset_us: int
) -> None:
    rate, others, start_us, end_us, window_us = scenario
    begin = start_us + offset_us % (end_us - start_us)
    twins = [CallSpan(rid, "b", begin, begin + duration_us, tokens, 0) for rid in ("twin-a", "twin-b")]
    rows = attribute_backend(rate, others + twins, start_us, end_us, window_us=window_us)
    for window_start in range(start_us, end_us, window_us):
        parts = {r.request_id: r for r in rows if r.window_start_us == window_start}
        if "twin-a" in parts:
            assert abs(parts["twin-a"].gpu_us - parts["twin-b"].gpu_us) <= 1
            assert abs(parts["twin-a"].cost_nusd - parts["twin-b"].cost_nusd) <= 1


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**5), st.integers(2, 10**8), gpu_counts, prices)
def test_double_the_work_rate_gets_double_the_share(tokens: int, duration_us: int, gpus, price) -> None:
    rate = BackendRate("b", gpus, price)
    window_us = 60_000_000
    start_us = EPOCH_US
    end_us = start_us + window_us * (1 + duration_us // window_us + 1)
    calls = [
        CallSpan("double", "b", start_us, start_us + duration_us, 2 * tokens, 0),
        CallSpan("single", "b", start_us, start_us + duration_us, tokens, 0),
    ]
    rows = attribute_backend(rate, calls, start_us, end_us, window_us=window_us)
    for window_start in range(start_us, end_us, window_us):
        parts = {r.request_id: r for r in rows if r.window_start_us == window_start}
        if "double" in parts:
            # Each share is within one unit of its exact value, and the exact values are 2 : 1.
            assert abs(parts["double"].gpu_us - 2 * parts["single"].gpu_us) <= 3
            assert abs(parts["double"].cost_nusd - 2 * parts["single"].cost_nusd) <= 3


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_a_call_split_across_windows_adds_up_to_its_whole(scenario) -> None:
    rate, calls, start_us, end_us, window_us = scenario
    rows = attribute_backend(rate, calls, start_us, end_us, window_us=window_us)
    whole = model_rows(rate, calls, start_us, end_us, end_us - start_us) if end_us - start_us else []
    gpus = Fraction(rate.gpus)
    for call in calls:
        parts = [r.gpu_us for r in rows if r.request_id == call.request_id]
        # Exact share over the range: with a single window covering it, before any rounding.
        exact = sum(
            (Fraction(r.gpu_us) for r in whole if r.request_id == call.request_id),
            start=Fraction(0),
        )
        assert abs(sum(parts) - exact) <= len(parts) + 1
    if gpus == 1:
        # Alone on the backend, a call's parts add up to exactly its clipped duration.
        for call in calls:
            solo = attribute_backend(rate, [call], start_us, end_us, window_us=window_us)
            ran_us = max(0, min(call.end_us, end_us) - max(call.start_us, start_us))
            assert sum(r.gpu_us for r in solo if r.request_id is not None) == ran_us


@settings(max_examples=200, deadline=None)
@given(scenarios(max_calls=20), st.randoms(use_true_random=False))
def test_rows_depend_on_the_set_of_calls_not_their_order_nor_the_range(scenario, rng: random.Random) -> None:
    rate, calls, start_us, end_us, window_us = scenario
    rows = attribute_backend(rate, calls, start_us, end_us, window_us=window_us)
    shuffled = calls[:]
    rng.shuffle(shuffled)
    assert attribute_backend(rate, shuffled, start_us, end_us, window_us=window_us) == rows
    for window_start in range(start_us, end_us, window_us):
        again = attribute_backend(rate, shuffled, window_start, window_start + window_us, window_us=window_us)
        assert again == [r for r in rows if r.window_start_us == window_start]


def test_many_backends_equal_each_backend_alone() -> None:
    rng = random.Random(7)
    rates = [BackendRate(name, Decimal(k + 1), Decimal("1.7")) for k, name in enumerate("xyz")]
    calls = []
    for n in range(300):
        start = EPOCH_US + rng.randrange(180_000_000)
        end = start + rng.randrange(200_000, 30_000_000)
        calls.append(
            CallSpan(f"r{n}", rng.choice("xyz"), start, end, rng.randrange(5000), rng.randrange(500))
        )
    range_end = EPOCH_US + 240_000_000
    rows = attribute_backends(rates[::-1], calls, EPOCH_US, range_end)
    expected = []
    for rate in rates:
        own = [c for c in calls if c.backend == rate.name]
        expected += attribute_backend(rate, own, EPOCH_US, range_end)
    assert rows == expected


def test_realistic_windows_take_the_fast_path_and_match_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(spans: object) -> list[int]:
        raise AssertionError("the exact fallback ran on data without ties")

    rng = random.Random(11)
    rate = BackendRate("b", Decimal(2), Decimal("2.49"))
    calls = []
    for n in range(120):
        start = EPOCH_US + rng.randrange(110_000_000)
        end = start + rng.randrange(200_000, 30_000_000)
        calls.append(CallSpan(f"r{n:03d}", "b", start, end, rng.randrange(20, 8000), rng.randrange(1, 1500)))
    expected = model_rows(rate, calls, EPOCH_US, EPOCH_US + 120_000_000, 60_000_000)
    monkeypatch.setattr(FALLBACK, refuse)
    assert attribute_backend(rate, calls, EPOCH_US, EPOCH_US + 120_000_000) == expected


def test_exact_ties_take_the_exact_path_and_match_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    fallbacks: list[int] = []

    def counting(spans: list[tuple[int, int, int]]) -> list[int]:
        fallbacks.append(len(spans))
        return exact_work_values(spans)

    monkeypatch.setattr(FALLBACK, counting)
    rate = BackendRate("b", 1, Decimal("3.6"))
    # Two calls alone for 1 us each in a 10 us window: quotas of exactly 1, which the fixed-point
    # values only approach from below, so the engine cannot prove the floors and goes exact.
    # Then c and e get exactly equal shares (1 + 1/2 and 1/2 + 1) with one unit left between them:
    # a tie at the cut that no error bound can settle, so exact again, and request_id breaks it.
    calls = [
        CallSpan("a", "b", EPOCH_US + 0, EPOCH_US + 1, 1, 0),
        CallSpan("b", "b", EPOCH_US + 2, EPOCH_US + 3, 1, 0),
        CallSpan("c", "b", EPOCH_US + 10, EPOCH_US + 12, 2, 0),
        CallSpan("e", "b", EPOCH_US + 11, EPOCH_US + 13, 2, 0),
    ]
    rows = attribute_backend(rate, calls, EPOCH_US, EPOCH_US + 20, window_us=10)
    assert rows == model_rows(rate, calls, EPOCH_US, EPOCH_US + 20, 10)
    assert [(r.request_id, r.gpu_us) for r in rows] == [
        ("a", 1),
        ("b", 1),
        (None, 8),
        ("c", 2),
        ("e", 1),
        (None, 7),
    ]
    assert len(fallbacks) == 2
