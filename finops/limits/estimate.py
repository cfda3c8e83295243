"""What a call adds to a GPU-basis counter in real time (pure).

The exact GPU cost of a call (finops.attribution) needs every call of its window and is known only
once the window is attributed, minutes later. Until then the counter adds an estimate: the call's
duration x the backend's GPUs x its price, divided by the calls the backend had in flight when this
one ended (itself included), since concurrent calls share the GPUs. Reconciliation replaces the
estimates with the attributed cost as windows are attributed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from finops.config import BackendConfig

US_PER_HOUR = 3_600_000_000
NUSD_PER_USD = 10**9


def rate_at(backend: BackendConfig, at: datetime) -> tuple[Decimal, Decimal]:
    """(gpus, usd_per_gpu_hour) in force at ``at``."""
    gpus, price = backend.gpus, backend.usd_per_gpu_hour
    for change in sorted(backend.rates, key=lambda r: r.effective_from):
        if change.effective_from <= at:
            gpus, price = change.gpus, change.usd_per_gpu_hour
    return gpus, price


def gpu_estimate_nusd(duration_us: int, gpus: Decimal, usd_per_gpu_hour: Decimal, sharing: int) -> int:
    """Integer nano-USD: duration x gpus x price / sharing (sharing >= 1)."""
    if duration_us <= 0:
        return 0
    exact = Decimal(duration_us) * gpus * usd_per_gpu_hour * NUSD_PER_USD / (US_PER_HOUR * max(1, sharing))
    return int(exact.to_integral_value(ROUND_HALF_UP))
