"""The pure core: thresholds crossed, the highest-only rule, forecast, and exactly-once over any
sequence of evaluations (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from finops.budgets.evaluate import (
    FORECAST_MIN_ELAPSED,
    crossed,
    decide,
    forecast_nusd,
    is_crossed,
    key,
    percent,
)
from finops.budgets.periods import month_bounds

DEFAULT = [Decimal("0.5"), Decimal("0.8"), Decimal("1.0")]
DAY = timedelta(days=1)


def test_threshold_is_crossed_exactly_at_its_figure():
    assert not is_crossed(499_999_999, 1_000_000_000, Decimal("0.5"))
    assert is_crossed(500_000_000, 1_000_000_000, Decimal("0.5"))
    assert crossed(800_000_000, 1_000_000_000, DEFAULT) == [Decimal("0.5"), Decimal("0.8")]


def test_percent_rounds_down_so_79_999_is_not_80():
    assert percent(799_999, 1_000_000) == Decimal("79.99")
    assert percent(800_000, 1_000_000) == Decimal("80.00")
    assert percent(3 * 10**9, 10**9) == Decimal("300.00")


def test_forecast_projects_the_run_rate_to_the_period_end():
    start, end = month_bounds(datetime(2026, 11, 10, tzinfo=UTC), "UTC")
    # Ten days of thirty: spend x 3.
    assert forecast_nusd(1_000, start, end, start + 10 * DAY) == 3_000
    assert forecast_nusd(1_000, start, end, end) == 1_000
    assert forecast_nusd(1_000, start, end, start) == 1_000


def test_several_thresholds_crossed_at_once_alert_only_the_highest():
    """A budget created (or lowered) mid-period at 85% of its amount: one alert, for 80%."""
    decisions = decide(850, 1000, DEFAULT, [], forecast=False, projected_nusd=850, elapsed=DAY)
    assert [(d.threshold, d.notify) for d in decisions] == [(Decimal("0.5"), False), (Decimal("0.8"), True)]
    # The next evaluation finds both recorded: nothing, and 100% still to come.
    recorded = [("threshold", d.threshold) for d in decisions]
    assert decide(900, 1000, DEFAULT, recorded, forecast=False, projected_nusd=900, elapsed=DAY) == []
    later = decide(1000, 1000, DEFAULT, recorded, forecast=False, projected_nusd=1000, elapsed=DAY)
    assert [(d.threshold, d.notify) for d in later] == [(Decimal("1.0"), True)]


def test_forecast_alerts_once_when_the_run_rate_projects_above_the_amount():
    args = dict(forecast=True, projected_nusd=1001, elapsed=DAY)
    first = decide(400, 1000, DEFAULT, [], **args)  # type: ignore[arg-type]
    assert [(d.kind, d.notify) for d in first] == [("forecast", True)]
    assert decide(400, 1000, DEFAULT, [("forecast", Decimal(1))], **args) == []  # type: ignore[arg-type]
    # Not before enough of the period has passed, not when off, not at or past 100% (the threshold says it).
    assert (
        decide(400, 1000, DEFAULT, [], forecast=True, projected_nusd=5000, elapsed=FORECAST_MIN_ELAPSED / 2)
        == []
    )
    assert decide(400, 1000, DEFAULT, [], forecast=False, projected_nusd=5000, elapsed=DAY) == []
    assert all(d.kind == "threshold" for d in decide(1000, 1000, DEFAULT, [], **args))  # type: ignore[arg-type]
    assert decide(400, 1000, DEFAULT, [], forecast=True, projected_nusd=1000, elapsed=DAY) == []


thresholds_st = st.lists(
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10), places=4),
    min_size=1,
    max_size=6,
    unique=True,
)


@settings(max_examples=300)
@given(
    thresholds=thresholds_st,
    amount=st.integers(min_value=1, max_value=10**12),
    spends=st.lists(st.integers(min_value=0, max_value=2 * 10**13), min_size=1, max_size=12),
    repeats=st.lists(st.integers(min_value=1, max_value=4), min_size=12, max_size=12),
)
def test_any_sequence_of_evaluations_records_each_threshold_at_most_once(thresholds, amount, spends, repeats):
    """Evaluate any sequence of spends (rising or not), each any number of times, against a store that
    keeps the first insert of a key (the unique constraint): each threshold and the forecast at most once;
    every threshold the highest spend crossed is recorded; and of the thresholds recorded in one
    evaluation exactly the highest is sent."""
    store: dict[tuple[str, Decimal], bool] = {}
    for spend, times in zip(spends, repeats, strict=False):
        for _ in range(times):
            decisions = decide(
                spend, amount, thresholds, list(store), forecast=True, projected_nusd=spend * 3, elapsed=DAY
            )
            keys = [(d.kind, d.threshold) for d in decisions]
            assert len(keys) == len(set(keys))
            assert not set(keys) & set(store), "a recorded alert was decided again"
            sent = [d.threshold for d in decisions if d.kind == "threshold" and d.notify]
            found = [d.threshold for d in decisions if d.kind == "threshold"]
            assert sent == ([max(found)] if found else [])
            for d in decisions:
                store.setdefault((d.kind, d.threshold), d.notify)
    highest = max(spends)
    expected = {key(t) for t in thresholds if Decimal(highest) >= t * amount}
    assert {t for kind, t in store if kind == "threshold"} == expected
    assert sum(1 for kind, _ in store if kind == "forecast") <= 1


@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Chatham"]),
)
def test_month_bounds_hold_the_moment_and_tile_time(moment, zone):
    start, end = month_bounds(moment, zone)
    assert start <= moment < end
    assert month_bounds(end, zone)[0] == end  # the next month starts where this one ends
    assert timedelta(days=27) < end - start < timedelta(days=32)


def test_month_end_in_a_time_zone():
    # 23:30 UTC on 30 November is already 1 December in Berlin, still November in Los Angeles.
    moment = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert month_bounds(moment, "Europe/Berlin")[0] == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert month_bounds(moment, "America/Los_Angeles") == (
        datetime(2026, 11, 1, 7, 0, tzinfo=UTC),
        datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
    )
