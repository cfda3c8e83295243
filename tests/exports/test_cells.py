"""The cells every export writes: exact money, FOCUS times, formula-safe text (pure, property-tested)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from finops.exports.cells import FORMULA_STARTS, encode_rows, gpu_seconds, safe_text, usd, utc_second
from finops.exports.focus import billing_period

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)
)


@given(st.integers(min_value=-(10**20), max_value=10**20))
def test_usd_is_the_exact_nano_dollar_amount(nusd):
    text = usd(nusd)
    assert Decimal(text).scaleb(9) == nusd
    assert len(text.split(".")[1]) == 9 and "e" not in text.lower() and "," not in text
    assert not text.startswith("+")


@given(st.text())
def test_no_text_cell_starts_a_formula(value):
    safe = safe_text(value)
    assert safe is not None
    assert not safe.startswith(FORMULA_STARTS)
    # Text that could not run is left exactly as it was; the rest only gains a leading quote.
    assert safe == value or safe == "'" + value
    assert (safe != value) == value.startswith(FORMULA_STARTS)


def test_formula_examples():
    for dangerous in ('=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_text(dangerous) == "'" + dangerous
    assert safe_text("search") == "search" and safe_text(None) is None and safe_text("a=b") == "a=b"


@given(st.lists(st.lists(st.one_of(st.none(), st.text()), min_size=2, max_size=5), max_size=5))
def test_encoded_rows_read_back_as_written(rows):
    text = encode_rows(rows).decode("utf-8")
    back = list(csv.reader(io.StringIO(text, newline="")))
    expected = [["" if cell is None else cell for cell in row] for row in rows]

    assert back == expected


@given(st.decimals(min_value=0, max_value=10**12, places=6))
def test_gpu_seconds_keep_six_places(value):
    text = gpu_seconds(value)
    assert Decimal(text) == value and len(text.split(".")[1]) == 6
    # SQLite hands sums back through a float: rounding restores the stored micro-GPU-seconds.
    if value < 10**9:
        assert gpu_seconds(float(value)) == text


@given(moments)
def test_billing_period_is_the_calendar_month_holding_the_moment(moment):
    start, end = billing_period(moment)
    assert start <= moment < end
    assert (start.day, start.hour, start.minute, start.second, start.microsecond) == (1, 0, 0, 0, 0)
    assert end.day == 1 and billing_period(end - timedelta(microseconds=1)) == (start, end)
    assert utc_second(start).endswith("-01T00:00:00Z")
