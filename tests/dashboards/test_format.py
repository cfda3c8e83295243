from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from dashboards import format as fmt


def test_usd_precision_follows_size():
    assert fmt.usd(0) == "$0.00"
    assert fmt.usd(1_234_567_000_000) == "$1,235"  # $1,234.567 -> whole dollars with separators
    assert fmt.usd(12_345_000_000) == "$12.35"  # half rounds up
    assert fmt.usd(10_000_000) == "$0.01"
    assert fmt.usd(2_500_000) == "$0.0025"  # two significant digits below a cent
    assert fmt.usd(14_000) == "$0.000014"
    assert fmt.usd(1) == "$0.0000000010"
    assert fmt.usd(-12_345_000_000) == "-$12.35"
    assert fmt.usd(None) == "–"
    assert fmt.usd(Fraction(3, 2)) == "$0.0000000015"


@given(st.integers(min_value=1, max_value=10**18))
def test_usd_never_shows_a_nonzero_amount_as_zero(nusd):
    shown = fmt.usd(nusd)
    digits = shown.replace("$", "").replace(",", "").replace(".", "")
    assert shown.startswith("$")
    assert digits.strip("0"), shown


@given(st.integers(min_value=0, max_value=10**18))
def test_usd_is_within_half_a_unit_of_its_last_digit(nusd):
    shown = fmt.usd(nusd).replace("$", "").replace(",", "")
    value = Decimal(shown)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    unit = Decimal(1).scaleb(exponent)
    assert abs(value - Decimal(nusd) / Decimal(10**9)) <= unit / 2


def test_counts_factors_changes():
    assert fmt.count(1234567) == "1,234,567"
    assert fmt.compact(29_812) == "29.8k"
    assert fmt.compact(4_560_000) == "4.56M"
    assert fmt.compact(999) == "999"
    assert fmt.factor(Fraction(7, 2)) == "3.50×"
    assert fmt.factor(None) == "n/a"
    assert fmt.change(100, 150) == "+50%"
    assert fmt.change(100, 40) == "−60%"
    assert fmt.change(0, 5) == "new"
    assert fmt.change(0, 0) == "–"
    assert fmt.percent(Decimal("0.8")) == "80%"


def test_gpu_time_picks_a_readable_unit():
    assert fmt.gpu_time(Decimal("3.4")) == "3.4 GPU-s"
    assert fmt.gpu_time(Decimal(90)) == "1.5 GPU-min"
    assert fmt.gpu_time(Decimal(5400)) == "1.5 GPU-h"


def test_colours_are_stable_and_idle_is_grey():
    assert fmt.colour("search") == fmt.colour("search")
    assert fmt.colour("(idle)") == fmt.IDLE_COLOUR
    names = ["a", "b", "c"]
    assert len({fmt.colour(n, names) for n in names}) == 3
