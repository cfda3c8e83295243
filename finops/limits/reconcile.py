"""Set every hard-limit counter from the ledger: the exact spend of the period so far.

The correction is an atomic INCRBY of (ledger spend - the value read before the ledger query), not a
SET: an add from a proxy that lands between the read and the write is kept, so no call is lost from
the counter. The price of that is a small, safe-side window: a call added to the counter between the
read and the ledger query whose row is already in the ledger is counted twice until the next run.
Calls added to the counter but not yet written to the ledger (the writer flushes every
``ledger.flush_interval_ms``) are dropped from the counter by this run and come back with the next.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from finops.attribution.models import GpuLedgerRow
from finops.budgets.periods import month_bounds
from finops.budgets.scope import matches
from finops.config import FinopsConfig
from finops.ledger.models import TokenLedgerRow
from finops.limits.estimate import gpu_estimate_nusd, rate_at
from finops.limits.store import CounterStore
from finops.limits.table import LimitBudget, counter_key, load_limits

# Counters outlive their period by this much, so that the last period can still be read.
EXPIRY_AFTER_PERIOD = timedelta(days=7)


@dataclass(frozen=True)
class Reconciled:
    budget: str
    key: str
    counter_before_nusd: int
    ledger_nusd: int


def expire_at_s(period_end: datetime) -> int:
    return int((period_end + EXPIRY_AFTER_PERIOD).timestamp())


def _scope_filters(
    budget: LimitBudget, columns: type[TokenLedgerRow] | type[GpuLedgerRow]
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if budget.team is not None:
        filters.append(columns.team == budget.team)
    if budget.feature is not None:
        filters.append(columns.feature == budget.feature)
    if budget.model is not None:
        filters.append(columns.model == budget.model)
    return filters


def token_spend_nusd(session: Session, budget: LimitBudget, start: datetime, end: datetime) -> int:
    """Token cost of the calls in scope that started in [start, end)."""
    total = session.scalar(
        select(func.coalesce(func.sum(TokenLedgerRow.cost_nusd), 0)).where(
            TokenLedgerRow.started_at >= start,
            TokenLedgerRow.started_at < end,
            *_scope_filters(budget, TokenLedgerRow),
        )
    )
    return int(total or 0)


def gpu_spend_nusd(
    session: Session, config: FinopsConfig, budget: LimitBudget, start: datetime, end: datetime
) -> int:
    """GPU cost: the attributed windows of the period (a global scope includes the idle rows, which
    belong to no team), plus, per backend, the real-time estimate for calls after its last attributed
    window."""
    attributed = session.scalar(
        select(func.coalesce(func.sum(GpuLedgerRow.cost_nusd), 0)).where(
            GpuLedgerRow.window_start >= start,
            GpuLedgerRow.window_start < end,
            *_scope_filters(budget, GpuLedgerRow),
        )
    )
    horizons = dict(
        session.execute(
            select(GpuLedgerRow.backend, func.max(GpuLedgerRow.window_end))
            .where(GpuLedgerRow.window_start >= start, GpuLedgerRow.window_start < end)
            .group_by(GpuLedgerRow.backend)
        ).all()
    )
    return int(attributed or 0) + _unattributed_estimate_nusd(session, config, budget, start, end, horizons)


def _unattributed_estimate_nusd(
    session: Session,
    config: FinopsConfig,
    budget: LimitBudget,
    start: datetime,
    end: datetime,
    horizons: dict[str, datetime],
) -> int:
    backends = {b.name: b for b in config.backends}
    total = 0
    for name, backend in backends.items():
        since = max(start, horizons.get(name) or start)
        # Every call of the backend (not only the scope's): the sharing count needs all of them.
        spans = session.execute(
            select(
                TokenLedgerRow.started_at,
                TokenLedgerRow.ended_at,
                TokenLedgerRow.team,
                TokenLedgerRow.feature,
                TokenLedgerRow.model,
            ).where(
                TokenLedgerRow.backend == name,
                TokenLedgerRow.started_at >= since,
                TokenLedgerRow.started_at < end,
            )
        ).all()
        starts = sorted(s.started_at for s in spans)
        ends = sorted(s.ended_at for s in spans)
        for started_at, ended_at, team, feature, model in spans:
            if not matches(budget, team, feature, model):
                continue
            # Calls in flight at this call's end, itself included, as the proxy counts it.
            sharing = bisect.bisect_right(starts, ended_at) - bisect.bisect_left(ends, ended_at)
            gpus, price = rate_at(backend, started_at.astimezone(UTC))
            duration_us = (ended_at - started_at) // timedelta(microseconds=1)
            total += gpu_estimate_nusd(duration_us, gpus, price, sharing)
    return total


def ledger_spend_nusd(
    session: Session, config: FinopsConfig, budget: LimitBudget, start: datetime, end: datetime
) -> int:
    if budget.basis == "gpu":
        return gpu_spend_nusd(session, config, budget, start, end)
    return token_spend_nusd(session, budget, start, end)


def reconcile_counters(
    session: Session, config: FinopsConfig, store: CounterStore, now: datetime
) -> list[Reconciled]:
    """Set each hard-limit budget's counter for the period holding ``now`` to its ledger spend."""
    limits = load_limits(session, config)
    if not limits:
        return []
    start, end = month_bounds(now, config.timezone)
    keys = {b.name: counter_key(b.name, start) for b in limits}
    # Read before the ledger: what lands in between is kept by the delta (see the module docstring).
    before = store.get(list(keys.values()))
    spend = {b.name: ledger_spend_nusd(session, config, b, start, end) for b in limits}
    deltas: dict[str, int] = defaultdict(int)
    for budget in limits:
        key = keys[budget.name]
        deltas[key] += spend[budget.name] - before[key]
    expiry = expire_at_s(end)
    store.add(deltas, dict.fromkeys(deltas, expiry))
    return [Reconciled(b.name, keys[b.name], before[keys[b.name]], spend[b.name]) for b in limits]
