"""How numbers read on the dashboards (pure): money, counts, factors, and a stable colour per name.

Money arrives as exact integer nano-USD and is shown with a precision that suits its size; it is
rounded only for display, half away from zero never hides a non-zero amount as "$0.00".
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

NANO = Decimal(1_000_000_000)


def usd(nusd: int | Fraction | None) -> str:
    """$1,234 from $1,000 up; $12.35 from $1 up; below a dollar two significant digits (at least cents),
    so that a query costing a thousandth of a cent still reads as something."""
    if nusd is None:
        return "–"
    value = (
        Decimal(nusd.numerator) / Decimal(nusd.denominator) if isinstance(nusd, Fraction) else Decimal(nusd)
    ) / NANO
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value == 0:
        return "$0.00"
    if value >= 1000:
        return f"{sign}${value.quantize(Decimal(1), ROUND_HALF_UP):,}"
    if value >= Decimal("0.01"):
        return f"{sign}${value.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    # Two significant digits: the exponent of the first one tells how many places.
    places = -value.adjusted() + 1
    return f"{sign}${value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP):f}"


def usd_float(nusd: int | Fraction) -> float:
    """For chart axes only: plotly draws floats. Labels and tables use ``usd``."""
    return float(Fraction(nusd) / 1_000_000_000)


def count(n: int | float | Decimal) -> str:
    """Thousands separators (1,234,567); a float keeps one decimal."""
    if isinstance(n, int):
        return f"{n:,}"
    return f"{float(n):,.1f}"


def compact(n: int | float) -> str:
    """12.3k, 4.56M: for KPI cards."""
    value = float(n)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return f"{scaled:,.{2 if abs(scaled) < 10 else 1}f}{suffix}"
    return f"{int(value):,}" if value == int(value) else f"{value:,.1f}"


def factor(value: Fraction | Decimal | None) -> str:
    return "n/a" if value is None else f"{float(value):,.2f}×"


def percent(value: Fraction | Decimal | float | None, places: int = 0) -> str:
    """A share (0.5) as "50%"."""
    return "–" if value is None else f"{float(value) * 100:,.{places}f}%"


def change(previous: int, current: int) -> str:
    """+12% / −3% / new / –."""
    if previous == 0:
        return "new" if current else "–"
    ratio = Fraction(current - previous, previous)
    sign = "+" if ratio >= 0 else "−"
    return f"{sign}{abs(float(ratio)) * 100:,.0f}%"


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:,.2f} s" if value >= 10_000 else f"{value:,.0f} ms"


# A qualitative palette that stays readable on white; idle time is always the same grey.
PALETTE = (
    "#4C6EF5",
    "#12B886",
    "#F59F00",
    "#E64980",
    "#7950F2",
    "#15AABF",
    "#FA5252",
    "#82C91E",
    "#FD7E14",
    "#BE4BDB",
    "#228BE6",
    "#40C057",
)
IDLE_COLOUR = "#ADB5BD"


def colour(name: str, names: list[str] | None = None) -> str:
    """The colour of a group: by its place in ``names`` when given (distinct within one chart), else by a
    hash of the name, so that a team keeps its colour from page to page."""
    if name in ("(idle)", "idle"):
        return IDLE_COLOUR
    if names is not None and name in names:
        return PALETTE[names.index(name) % len(PALETTE)]
    digest = hashlib.sha256(name.encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def gpu_unit(largest_seconds: float) -> tuple[str, float]:
    """The unit that keeps GPU time readable: (label, seconds per unit)."""
    if largest_seconds >= 3600:
        return "GPU-hours", 3600.0
    if largest_seconds >= 60:
        return "GPU-minutes", 60.0
    return "GPU-seconds", 1.0


def gpu_time(seconds: Decimal | float) -> str:
    """12.5 GPU-h, 42.0 GPU-min, 7.3 GPU-s."""
    value = float(seconds)
    label, per = gpu_unit(abs(value))
    short = {"GPU-hours": "GPU-h", "GPU-minutes": "GPU-min", "GPU-seconds": "GPU-s"}[label]
    return f"{value / per:,.1f} {short}"
