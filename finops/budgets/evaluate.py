"""Which alerts a budget's spend calls for (pure: no I/O, no clock).

Rules (docs in README "Budgets and alerts"):
- A threshold t is crossed when spend >= t x amount (exact: integers and Decimals, no floats).
- A threshold alerts at most once per budget and period: the caller passes what is already recorded
  and stores the result under a unique key, so re-evaluating never repeats an alert.
- When one evaluation finds several thresholds newly crossed (a budget created or lowered mid-period
  above some thresholds, or spend that jumped past two at once), only the highest is sent; the lower
  ones are recorded as not notified, so they never fire later in the period. No flood of stale alerts.
- Forecast: the period's spend so far, projected at its run rate to the period's end. It alerts once
  per period when the projection exceeds the amount while spend is still below it (past 100% the
  threshold alert says more), and only once a minimum of the period has elapsed, so that the first
  calls of a month do not project to absurd figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

FORECAST_THRESHOLD = Decimal(1)
# The run rate of less than this much of a period says too little to project from.
FORECAST_MIN_ELAPSED = timedelta(hours=6)


@dataclass(frozen=True)
class Decision:
    kind: str  # "threshold" or "forecast"
    threshold: Decimal
    notify: bool


def key(threshold: Decimal) -> Decimal:
    """A threshold as the alerts table stores it (four decimal places)."""
    return Decimal(threshold).quantize(Decimal("0.0001"))


def is_crossed(spend_nusd: int, amount_nusd: int, threshold: Decimal) -> bool:
    return Decimal(spend_nusd) >= threshold * Decimal(amount_nusd)


def crossed(spend_nusd: int, amount_nusd: int, thresholds: Iterable[Decimal]) -> list[Decimal]:
    return sorted(t for t in thresholds if is_crossed(spend_nusd, amount_nusd, t))


def percent(spend_nusd: int, amount_nusd: int) -> Decimal:
    """Spend as a percentage of the amount, to two decimals (rounded down: 79.999% is not 80%)."""
    if amount_nusd <= 0:
        return Decimal(0)
    hundredths = spend_nusd * 10_000 // amount_nusd
    return Decimal(hundredths).scaleb(-2)


def forecast_nusd(spend_nusd: int, period_start: datetime, period_end: datetime, now: datetime) -> int:
    """Spend at the period's end if it goes on at the rate of the period so far (whole nano-USD)."""
    if now >= period_end:
        return spend_nusd
    elapsed_us = _us(now - period_start)
    if elapsed_us <= 0:
        return spend_nusd
    return spend_nusd * _us(period_end - period_start) // elapsed_us


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def decide(
    spend_nusd: int,
    amount_nusd: int,
    thresholds: Sequence[Decimal],
    recorded: Iterable[tuple[str, Decimal]],
    *,
    forecast: bool,
    projected_nusd: int,
    elapsed: timedelta,
) -> list[Decision]:
    """The alerts to record now, given the (kind, threshold) pairs already recorded this period."""
    done = {(kind, key(t)) for kind, t in recorded}
    new = [key(t) for t in crossed(spend_nusd, amount_nusd, thresholds) if ("threshold", key(t)) not in done]
    decisions = [Decision("threshold", t, notify=(t == new[-1])) for t in new]
    if (
        forecast
        and ("forecast", key(FORECAST_THRESHOLD)) not in done
        and elapsed >= FORECAST_MIN_ELAPSED
        and projected_nusd > amount_nusd
        and spend_nusd < amount_nusd
    ):
        decisions.append(Decision("forecast", key(FORECAST_THRESHOLD), notify=True))
    return decisions
