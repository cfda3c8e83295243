from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dashboards.periods import PRESETS, resolve

NOW = datetime(2026, 11, 30, 14, 25, tzinfo=UTC)


def test_rolling_presets_end_at_the_next_hour_and_compare_with_the_span_before():
    period = resolve("7d", NOW)
    assert period.end == datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert period.start == period.end - timedelta(days=7)
    assert (period.previous_start, period.previous_end) == (period.start - timedelta(days=7), period.start)
    assert period.bucket == "day"
    assert resolve("24h", NOW).bucket == "hour"


def test_month_presets_follow_the_configured_time_zone():
    period = resolve("month", NOW, "America/New_York")
    assert period.start == datetime(2026, 11, 1, 4, tzinfo=UTC)  # midnight EDT
    assert period.end == datetime(2026, 12, 1, 5, tzinfo=UTC)  # midnight EST
    # Month to date against the same stretch of October.
    assert period.previous_start == datetime(2026, 10, 1, 4, tzinfo=UTC)
    assert (
        period.previous_end - period.previous_start == datetime(2026, 11, 30, 15, tzinfo=UTC) - period.start
    )
    last = resolve("last-month", NOW)
    assert (last.start, last.end) == (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    assert (last.previous_start, last.previous_end) == (datetime(2026, 9, 1, tzinfo=UTC), last.start)


def test_an_unknown_preset_is_the_default():
    assert resolve("'; drop table", NOW).preset == "7d"
    assert resolve(None, NOW).preset == "7d"


@given(
    st.sampled_from(sorted(PRESETS)),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(["UTC", "Europe/Paris", "Asia/Kolkata", "America/Los_Angeles"]),
)
def test_every_period_is_ordered_and_the_previous_one_ends_where_it_starts(preset, now, zone):
    p = resolve(preset, now, zone)
    assert p.previous_start < p.previous_end <= p.start < p.end
    if preset != "month":
        assert p.previous_end == p.start
    assert p.start <= now < p.end or preset == "last-month"
