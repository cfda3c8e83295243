"""The proxy's side of hard limits: the check before routing, the add when a call ends.

Hot path (event loop): ``check`` is a dictionary lookup against a snapshot of the counters; it never
waits on Redis. Adds are made on the ledger writer's thread once the call's cost is known, applied to
the local snapshot at once (this replica stops at the limit without waiting for Redis) and queued for
the limits thread, which every ``limits.sync_interval_s`` sends the queued adds (INCRBY) and reads
back every counter (MGET) in one round trip, so that each replica sees the others' spend.

The bound that gives: spend goes over a limit by at most the cost of the calls in flight when it was
reached, where "in flight" counts a call from its admission until its cost reached the counter (the
ledger writer's flush, ``ledger.flush_interval_ms``) and, for calls admitted by other replicas, until
they had read the counter again (``limits.sync_interval_s``).

Redis unreachable: the adds stay queued (summed per counter, so memory stays bounded) and are sent
when it is back; meanwhile the replica checks against its last snapshot plus its own adds and counts
those calls as unchecked, or refuses them with 503 when ``limits.on_redis_down: refuse``. The outage
is logged once when it starts and once when it ends, and shown in /metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from finops.budgets.periods import month_bounds
from finops.config import FinopsConfig
from finops.db import unit_of_work
from finops.ledger.record import UsageRecord
from finops.limits.estimate import gpu_estimate_nusd, rate_at
from finops.limits.reconcile import expire_at_s, reconcile_counters
from finops.limits.store import CounterStore, MemoryStore, RedisStore, StoreUnavailable
from finops.limits.table import LimitBudget, counter_key, from_config, load_limits, matching
from finops.proxy.errors import ProxyError

log = logging.getLogger("finops.limits")

# Clients choose team and feature: past this many distinct tag sets the match cache starts over.
MAX_CACHED_TAG_SETS = 10_000
NO_RETRY = ((b"x-should-retry", b"false"),)  # the openai client would otherwise retry a 429


class InFlight(Protocol):
    @property
    def in_flight(self) -> int: ...


class LimitRefused(ProxyError):
    """429 (the budget is spent) or 503 (the counters are unreachable and the config says refuse)."""


def budget_exceeded(budget: LimitBudget, spend_nusd: int, period_end: datetime) -> LimitRefused:
    refused = LimitRefused(
        429,
        f"budget '{budget.name}' ({budget.scope_text}) has reached its hard limit: "
        f"{_usd(spend_nusd)} of {_usd(budget.amount_nusd)} USD spent this period; calls in its scope are "
        f"refused until {period_end.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        "insufficient_quota",
        "budget_exceeded",
    )
    # Retrying cannot help until the period ends; a 503 (below) keeps the client's usual retries.
    refused.headers = NO_RETRY
    return refused


def limits_unavailable() -> LimitRefused:
    return LimitRefused(
        503,
        "hard budget limits cannot be checked (the counter store is unreachable); retry shortly",
        "api_error",
        "limits_unavailable",
    )


def _usd(nusd: int) -> str:
    sign = "-" if nusd < 0 else ""
    whole, frac = divmod(abs(nusd), 10**9)
    return f"{sign}{whole}.{frac:09d}".rstrip("0").rstrip(".") if frac else f"{sign}{whole}"


@dataclass(frozen=True)
class View:
    """The limits and the counter keys of the current period, swapped whole (readers need no lock)."""

    limits: tuple[LimitBudget, ...]
    period_start: datetime
    period_end: datetime
    period_end_s: float
    keys: dict[str, str]  # budget name -> counter key
    expiry_s: int  # when this period's counters expire (epoch seconds)
    # (team, feature, model) -> the limits that match; it lives in the view so that it is swapped with
    # the limits it was computed from (a cache of its own could keep a stale entry across a swap).
    match_cache: dict[tuple[str, str, str], tuple[LimitBudget, ...]] = field(default_factory=dict)


class LimitEnforcer:
    def __init__(
        self,
        config: FinopsConfig,
        registry: CollectorRegistry | None = None,
        *,
        store: CounterStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        settings = config.limits
        self.store: CounterStore = store or (
            RedisStore(settings.redis_url, settings.redis_timeout_s)
            if settings.redis_url
            else MemoryStore(clock)
        )
        self._refuse_when_down = settings.on_redis_down == "refuse"
        self._sync_interval_s = settings.sync_interval_s
        self._reconcile_every_s = settings.reconcile_every_s
        self._clock = clock
        self._backends = {b.name: b for b in config.backends}
        self._view = self._make_view(tuple(from_config(b) for b in config.budgets if b.hard_limit), clock())
        # Last known value of each counter (Redis's, plus this replica's adds not sent yet).
        self._spend: dict[str, int] = {}
        self._pending: dict[str, int] = defaultdict(int)
        self._pending_expiry: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_reconcile_s: float | None = None
        self.store_up = True
        self._down_since: float | None = None
        self._unchecked_in_outage = 0
        self._metrics(registry or CollectorRegistry())

    def _metrics(self, registry: CollectorRegistry) -> None:
        self.unchecked_calls = Counter(
            "finops_limits_unchecked_calls_total",
            "Calls under a hard limit served while the counter store was unreachable (checked against "
            "the last known counters only)",
            registry=registry,
        )
        self.refused_calls = Counter(
            "finops_limits_refused_calls_total",
            "Calls refused by a hard limit (429) or because limits could not be checked (503)",
            ["budget", "code"],
            registry=registry,
        )
        registry.register(_LimitsCollector(self))

    # -- the limit table --------------------------------------------------------------------------
    def _make_view(self, limits: tuple[LimitBudget, ...], now_s: float) -> View:
        start, end = month_bounds(datetime.fromtimestamp(now_s, UTC), self.config.timezone)
        keys = {b.name: counter_key(b.name, start) for b in limits}
        return View(limits, start, end, end.timestamp(), keys, expire_at_s(end))

    def set_limits(self, limits: Sequence[LimitBudget]) -> None:
        if tuple(limits) != self._view.limits:
            self._view = self._make_view(tuple(limits), self._clock())

    def refresh(self, engine: Engine) -> None:
        """Reload the limits from the budgets table (blocking: the state's refresh thread). With the
        in-process store, also reconcile the counters from the ledger: no job can reach them."""
        try:
            self._refresh(engine)
        except Exception as exc:
            log.warning(
                "could not reload hard limits or reconcile their counters (%s); keeping the last", exc
            )

    def _refresh(self, engine: Engine) -> None:
        with unit_of_work(engine) as session:
            self.set_limits(load_limits(session, self.config))
            due = self._last_reconcile_s is None or (
                self._clock() - self._last_reconcile_s >= self._reconcile_every_s
            )
            if not self.store.shared and self._view.limits and due:
                now = datetime.fromtimestamp(self._clock(), UTC)
                reconcile_counters(session, self.config, self.store, now)
                self._last_reconcile_s = self._clock()
                self._spend.update(self.store.get(list(self._view.keys.values())))

    @property
    def active(self) -> bool:
        return bool(self._view.limits)

    # -- hot path: the check (event loop) ---------------------------------------------------------
    def check(self, team: str, feature: str, model: str) -> None:
        """Raise LimitRefused when a hard-limit budget in this call's scope is spent."""
        view = self._view
        if not view.limits:
            return
        if self._clock() >= view.period_end_s:
            view = self._roll()
        budgets = self._matching(view, team, feature, model)
        if not budgets:
            return
        if not self.store_up:
            if self._refuse_when_down:
                self.refused_calls.labels("", "limits_unavailable").inc()
                raise limits_unavailable()
            self.unchecked_calls.inc()
            self._unchecked_in_outage += 1
        for budget in budgets:
            key = view.keys.get(budget.name)
            spend = self._spend.get(key, 0) if key is not None else 0
            if spend >= budget.amount_nusd:
                self.refused_calls.labels(budget.name, "budget_exceeded").inc()
                raise budget_exceeded(budget, spend, view.period_end)

    def _matching(self, view: View, team: str, feature: str, model: str) -> tuple[LimitBudget, ...]:
        tags = (team, feature, model)
        cache = view.match_cache
        budgets = cache.get(tags)
        if budgets is None:
            if len(cache) >= MAX_CACHED_TAG_SETS:
                cache.clear()
            budgets = cache[tags] = matching(view.limits, team, feature, model)
        return budgets

    def _roll(self) -> View:
        """A new period began: new counter keys (a fresh counter each), the same limits."""
        view = self._make_view(self._view.limits, self._clock())
        self._view = view
        return view

    # -- the add (ledger writer thread) -----------------------------------------------------------
    def counted(self, make: Callable[[], UsageRecord], backend: InFlight | None) -> Callable[[], UsageRecord]:
        """Wrap a deferred ledger record so that its cost is added to the counters once it is made.

        Called on the event loop when the call ends, so the backend's calls in flight (for the GPU
        estimate) are read at that moment; the wrapper runs on the writer thread."""
        if not self._view.limits:
            return make
        sharing = max(1, backend.in_flight) if backend is not None else 1

        def run() -> UsageRecord:
            record = make()
            try:
                self.add(record, sharing)
            except Exception:
                log.exception("could not add call %s to the limit counters", record.request_id)
            return record

        return run

    def add(self, record: UsageRecord, sharing: int = 1) -> None:
        view = self._view
        budgets = self._matching(view, record.team, record.feature, record.model)
        if not budgets:
            return
        # A call counts in the period it started in (the ledger's rule), even when it ends after.
        if view.period_start <= record.started_at < view.period_end:
            keys, expiry_s = view.keys, view.expiry_s
        else:
            start, end = month_bounds(record.started_at, self.config.timezone)
            keys, expiry_s = {b.name: counter_key(b.name, start) for b in budgets}, expire_at_s(end)
        increments: dict[str, int] = {}
        for budget in budgets:
            amount = record.cost_nusd if budget.basis == "tokens" else self._gpu_estimate(record, sharing)
            if amount > 0:
                key = keys[budget.name]
                increments[key] = increments.get(key, 0) + amount
        if increments:
            self._apply(increments, expiry_s)

    def _gpu_estimate(self, record: UsageRecord, sharing: int) -> int:
        backend = self._backends.get(record.backend or "")
        if backend is None:
            return 0
        gpus, price = rate_at(backend, record.started_at)
        duration_us = (record.ended_at - record.started_at) // timedelta(microseconds=1)
        return gpu_estimate_nusd(duration_us, gpus, price, sharing)

    def _apply(self, increments: dict[str, int], expiry_s: int) -> None:
        if not self.store.shared:
            # In-process: the store is this process's memory; adding cannot fail or block for long.
            self._spend.update(self.store.add(increments, dict.fromkeys(increments, expiry_s)))
            return
        with self._lock:
            for key, amount in increments.items():
                self._pending[key] += amount
                self._pending_expiry[key] = expiry_s
                self._spend[key] = self._spend.get(key, 0) + amount

    # -- the limits thread (Redis) ----------------------------------------------------------------
    def start(self) -> None:
        if self.store.shared and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="finops-limits", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
            self.sync_once()  # the last adds, if Redis takes them
        self.store.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sync_once()
            self._stop.wait(self._sync_interval_s)

    def sync_once(self) -> None:
        """Send the queued adds, then read every counter of the current period."""
        if self._clock() >= self._view.period_end_s:
            self._roll()
        with self._lock:
            increments, expiry = dict(self._pending), dict(self._pending_expiry)
            self._pending.clear()
            self._pending_expiry.clear()
        try:
            if increments:
                self.store.add(increments, expiry)
        except StoreUnavailable as exc:
            with self._lock:
                for key, amount in increments.items():
                    self._pending[key] += amount
                    self._pending_expiry.setdefault(key, expiry[key])
            self._went_down(exc)
            return
        keys = list(self._view.keys.values())
        try:
            values = self.store.get(keys)
        except StoreUnavailable as exc:
            self._went_down(exc)
            return
        with self._lock:
            for key, value in values.items():
                self._spend[key] = value + self._pending.get(key, 0)
            # Counters of periods gone by are no longer read.
            for key in [k for k in self._spend if k not in values and k not in self._pending]:
                del self._spend[key]
        self._came_back()

    def _went_down(self, exc: Exception) -> None:
        if self.store_up:
            self.store_up = False
            self._down_since = self._clock()
            self._unchecked_in_outage = 0
            action = (
                "refusing calls under hard limits (503)"
                if self._refuse_when_down
                else ("serving calls under hard limits against the last known counters")
            )
            log.warning("limit counters unreachable (%s); %s until they are back", exc, action)

    def _came_back(self) -> None:
        if not self.store_up:
            self.store_up = True
            down_s = self._clock() - (self._down_since or self._clock())
            log.warning(
                "limit counters reachable again after %.1f s; %d calls were served unchecked",
                down_s,
                self._unchecked_in_outage,
            )

    # -- for /metrics and tests -------------------------------------------------------------------
    def spend_nusd(self, budget_name: str) -> int:
        view = self._view
        return self._spend.get(view.keys.get(budget_name, ""), 0)


class _LimitsCollector(Collector):
    def __init__(self, enforcer: LimitEnforcer) -> None:
        self.enforcer = enforcer

    def collect(self) -> Iterator[Metric]:
        e = self.enforcer
        up = GaugeMetricFamily(
            "finops_limits_store_up",
            "1 while the hard-limit counter store (Redis, or this process) answers",
        )
        up.add_metric([], 1.0 if e.store_up else 0.0)
        yield up
        spend = GaugeMetricFamily(
            "finops_limits_spend_nusd",
            "Spend of each hard-limit budget this period as this replica last saw it, nano-USD",
            labels=["budget"],
        )
        amount = GaugeMetricFamily(
            "finops_limits_amount_nusd",
            "Hard limit of each budget for the period, nano-USD",
            labels=["budget"],
        )
        for budget in e._view.limits:
            spend.add_metric([budget.name], float(e.spend_nusd(budget.name)))
            amount.add_metric([budget.name], float(budget.amount_nusd))
        yield spend
        yield amount
