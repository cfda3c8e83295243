"""The scheduled ``limits`` job: reconcile the shared (Redis) counters from the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from finops.config import FinopsConfig
from finops.limits.reconcile import Reconciled, reconcile_counters
from finops.limits.store import RedisStore


@dataclass(frozen=True)
class LimitsRun:
    reconciled: list[Reconciled]
    skipped: str | None = None

    def __str__(self) -> str:
        if self.skipped:
            return self.skipped
        if not self.reconciled:
            return "no budget has a hard limit"
        return "; ".join(
            f"{r.budget}: counter {r.counter_before_nusd} -> {r.ledger_nusd} nUSD" for r in self.reconciled
        )


def run_limits(session: Session, config: FinopsConfig, now: datetime | None = None) -> LimitsRun:
    if not config.limits.redis_url:
        # In-process counters live in the proxy, which reconciles them itself.
        return LimitsRun([], "no limits.redis_url: the proxy reconciles its in-process counters itself")
    store = RedisStore(config.limits.redis_url, timeout_s=max(config.limits.redis_timeout_s, 2.0))
    try:
        return LimitsRun(reconcile_counters(session, config, store, now or datetime.now(UTC)))
    finally:
        store.close()
