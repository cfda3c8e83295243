"""Integer totals of a window: GPU-microseconds supplied and nano-USD spent.

A total is ``floor(rate x end_us) - floor(rate x start_us)`` with both floors anchored at the epoch.
When ``rate x window length`` is an integer that is exactly it; otherwise a window gets the floor or
the ceiling, and any run of consecutive windows sums to ``floor(rate x end) - floor(rate x start)``:
within one unit of the exact amount however many windows are added up, and the same whichever way a
period is cut into windows. Anchoring at the epoch (not at a run's first window) is what makes a
window's total independent of the run that computed it.
"""

from __future__ import annotations

from fractions import Fraction


def anchored_units(rate_per_us: Fraction, start_us: int, end_us: int) -> int:
    """Whole units that accrue over ``[start_us, end_us)`` at ``rate_per_us`` units per microsecond."""
    num, den = rate_per_us.numerator, rate_per_us.denominator
    return num * end_us // den - num * start_us // den
