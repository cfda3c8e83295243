"""Reconciliation sets each hard-limit counter exactly to the ledger's spend of the period."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis

from finops.attribution.models import GpuLedgerRow
from finops.budgets.models import BudgetRow
from finops.db import make_engine, unit_of_work
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from finops.limits.estimate import gpu_estimate_nusd
from finops.limits.reconcile import reconcile_counters
from finops.limits.store import CounterStore, MemoryStore, RedisStore
from finops.limits.table import counter_key
from tests.limits.support import REDIS_URL, config_with, delete_budget_keys, unique
from tests.support.records import make_record

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[CounterStore]:
    if request.param == "memory":
        yield MemoryStore(clock=lambda: NOW.timestamp())
    else:
        redis_store = RedisStore(REDIS_URL)
        yield redis_store
        redis_store.close()


def test_token_counters_are_set_from_the_ledger(db_url: str, store: CounterStore) -> None:
    name, table_name = unique("tok"), unique("table")
    config = config_with(
        [{"name": name, "scope": {"team": "search"}, "monthly_usd": "1", "hard_limit": True}],
        timezone="Europe/Paris",
    )
    engine = make_engine(db_url)
    # In Paris time November starts at 2026-10-31T23:00Z and ends at 2026-11-30T23:00Z.
    in_period = [
        make_record(team="search", started_at=datetime(2026, 10, 31, 23, 0, tzinfo=UTC), cost_nusd=111),
        make_record(team="search", started_at=NOW - timedelta(hours=1), cost_nusd=2_000_003),
        make_record(team="search", feature="chat", model="qwen-1b", started_at=NOW, cost_nusd=40),
    ]
    outside = [
        make_record(team="search", started_at=datetime(2026, 10, 31, 22, 59, 59, tzinfo=UTC), cost_nusd=7),
        make_record(team="ads", started_at=NOW, cost_nusd=900),
    ]
    insert_records(engine, in_period + outside)
    with unit_of_work(engine) as session:
        session.add(
            BudgetRow(
                name=table_name,
                team=None,
                feature="chat",
                model=None,
                monthly_nusd=10**9,
                basis="tokens",
                thresholds="1.0",
                forecast=False,
                channels="",
                hard_limit=True,
                source="api",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    key = counter_key(name, datetime(2026, 10, 31, 23, tzinfo=UTC))
    table_key = counter_key(table_name, datetime(2026, 10, 31, 23, tzinfo=UTC))
    try:
        store.add({key: 5, table_key: -3}, {})  # whatever the counters held before
        with unit_of_work(engine) as session:
            result = reconcile_counters(session, config, store, NOW)
        assert {r.budget: (r.counter_before_nusd, r.ledger_nusd) for r in result} == {
            name: (5, 2_000_154),
            table_name: (-3, 40),
        }
        assert store.get([key, table_key]) == {key: 2_000_154, table_key: 40}
        # Reconciling again changes nothing; a call added meanwhile is kept on top of the ledger.
        store.add({key: 1_000}, {})
        with unit_of_work(engine) as session:
            reconcile_counters(session, config, store, NOW)
        assert store.get([key]) == {key: 2_000_154}  # the add was not in the ledger: reconciled away
    finally:
        delete_budget_keys(name, table_name)
        engine.dispose()


def test_gpu_counters_take_attributed_windows_and_estimate_the_rest(db_url: str, store: CounterStore) -> None:
    name = unique("gpu")
    config = config_with(
        [{"name": name, "scope": {"team": "search"}, "monthly_usd": "1", "basis": "gpu", "hard_limit": True}]
    )
    engine = make_engine(db_url)
    window = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    with unit_of_work(engine) as session:
        for team, cost in (("search", 1_000), ("search", 2_500), ("ads", 9_999), (None, 77)):
            session.add(
                GpuLedgerRow(
                    backend="gpu-a",
                    window_start=window,
                    window_end=window + timedelta(minutes=1),
                    request_id=None if team is None else "r",
                    team=team,
                    feature="f" if team else None,
                    model="llama-8b" if team else None,
                    gpu_seconds=Decimal(1),
                    cost_nusd=cost,
                )
            )
    after = window + timedelta(minutes=1)
    # Not attributed yet: two overlapping calls of search (sharing 2 at the first's end) and one of ads.
    first = make_record(team="search", started_at=after, backend="gpu-a")  # 250 ms
    second = make_record(team="search", started_at=after + timedelta(milliseconds=100), backend="gpu-a")
    other = make_record(team="ads", started_at=after, backend="gpu-a")
    before_horizon = make_record(team="search", started_at=window, backend="gpu-a")  # in the windows
    insert_records(engine, [first, second, other, before_horizon])
    key = counter_key(name, NOVEMBER)
    try:
        with unit_of_work(engine) as session:
            reconcile_counters(session, config, store, NOW)
        # first ends at +250 ms with second and other in flight (3); second ends at +350 ms, after first
        # and other ended at +250 ms: alone.
        expected = (
            3_500
            + gpu_estimate_nusd(250_000, Decimal(2), Decimal("3.6"), 3)
            + gpu_estimate_nusd(250_000, Decimal(2), Decimal("3.6"), 1)
        )
        assert store.get([key]) == {key: expected}
    finally:
        delete_budget_keys(name)
        engine.dispose()


def test_the_limits_job_reconciles_redis(pg_url: str) -> None:
    name = unique("job")
    config = config_with(
        [{"name": name, "monthly_usd": "1", "hard_limit": True}],
        database_url=pg_url,
        limits={"redis_url": REDIS_URL},
    )
    engine = make_engine(pg_url)
    now = datetime.now(UTC)
    insert_records(engine, [make_record(started_at=now, cost_nusd=123_456)])
    client = redis.Redis.from_url(REDIS_URL)
    try:
        result = run_job(engine, config, "limits", now=now)
        assert f"{name}: counter 0 -> 123456 nUSD" in str(result)
        key = counter_key(name, datetime(now.year, now.month, 1, tzinfo=UTC))
        assert int(client.get(key) or 0) == 123_456
        assert client.ttl(key) > 7 * 86400
        # Without Redis the job has nothing to do: the proxy reconciles its own counters.
        local = config.model_copy(update={"limits": config.limits.model_copy(update={"redis_url": None})})
        assert "reconciles its in-process counters itself" in str(run_job(engine, local, "limits", now=now))
    finally:
        client.close()
        delete_budget_keys(name)
        engine.dispose()
