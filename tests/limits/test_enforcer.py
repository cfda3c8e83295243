"""The check and the add, on the in-process store and on real Redis (the machine's, and a private one
that a test kills)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
import redis
from prometheus_client import CollectorRegistry

from finops.limits.enforcer import LimitEnforcer, LimitRefused
from finops.limits.store import RedisStore
from finops.limits.table import counter_key
from tests.limits.support import (
    REDIS_URL,
    Clock,
    config_with,
    delete_budget_keys,
    private_redis,
    start_redis,
    stop_redis,
    unique,
)
from tests.support.processes import free_port
from tests.support.records import make_record

NOV_30 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)


def refusal(
    enforcer: LimitEnforcer, team: str = "search", feature: str = "autocomplete"
) -> LimitRefused | None:
    try:
        enforcer.check(team, feature, "llama-8b")
    except LimitRefused as exc:
        return exc
    return None


@pytest.fixture
def name() -> Iterator[str]:
    budget = unique("lim")
    yield budget
    delete_budget_keys(budget)


def test_in_process_counter_refuses_at_the_limit_in_openai_shape_then_rolls_over() -> None:
    clock = Clock(NOV_30)
    config = config_with(
        [{"name": "search-cap", "scope": {"team": "search"}, "monthly_usd": "0.00003", "hard_limit": True}]
    )
    enforcer = LimitEnforcer(config, clock=clock)
    assert enforcer.active and not enforcer.store.shared
    started = datetime(2026, 11, 30, 22, 59, tzinfo=UTC)
    enforcer.add(make_record(started_at=started, cost_nusd=14_000))
    enforcer.add(make_record(started_at=started, cost_nusd=14_000))
    assert refusal(enforcer) is None  # 28 000 of 30 000
    enforcer.add(make_record(started_at=started, cost_nusd=14_000))
    refused = refusal(enforcer)
    assert refused is not None and refused.status == 429
    error = orjson.loads(refused.body())["error"]
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
    assert "search-cap" in error["message"] and "team=search" in error["message"]
    assert "2026-12-01T00:00:00Z" in error["message"]
    assert refused.headers == ((b"x-should-retry", b"false"),)
    assert refusal(enforcer, team="ads") is None  # another scope is not affected
    # A call that started in November but ends after midnight still counts in November.
    clock.set(DEC_1)
    assert refusal(enforcer) is None  # December: a fresh counter
    assert enforcer.spend_nusd("search-cap") == 0
    enforcer.add(make_record(started_at=datetime(2026, 11, 30, 23, 59, tzinfo=UTC), cost_nusd=99_000))
    assert refusal(enforcer) is None
    assert enforcer.store.get([counter_key("search-cap", datetime(2026, 11, 1, tzinfo=UTC))]) == {
        counter_key("search-cap", datetime(2026, 11, 1, tzinfo=UTC)): 141_000
    }


def test_gpu_basis_adds_the_estimate() -> None:
    clock = Clock(NOV_30)
    config = config_with([{"name": "gpu-cap", "monthly_usd": "1", "basis": "gpu", "hard_limit": True}])
    enforcer = LimitEnforcer(config, clock=clock)
    # 250 ms on 2 GPUs at 3.6 USD/GPU-hour, shared with 3 other calls: 0.5 ms-GPU-hour... = 125 000 nUSD.
    record = make_record(started_at=datetime(2026, 11, 30, 12, tzinfo=UTC), backend="gpu-a")
    enforcer.add(record, sharing=4)
    assert enforcer.spend_nusd("gpu-cap") == 125_000


def test_no_hard_limit_means_no_work() -> None:
    enforcer = LimitEnforcer(config_with([{"name": "soft", "monthly_usd": "1"}]))
    assert not enforcer.active
    make = make_record
    assert enforcer.counted(make, None) is make
    enforcer.check("search", "autocomplete", "llama-8b")


def test_two_replicas_share_one_counter_through_redis(name: str) -> None:
    config = config_with(
        [{"name": name, "monthly_usd": "0.0001", "hard_limit": True}], limits={"redis_url": REDIS_URL}
    )
    clock = Clock(datetime.now(UTC))
    a, b = LimitEnforcer(config, clock=clock), LimitEnforcer(config, clock=clock)
    assert a.store.shared
    try:
        started = datetime.fromtimestamp(clock(), UTC)
        for _ in range(4):
            a.add(make_record(started_at=started, cost_nusd=20_000))
        assert refusal(a) is None and refusal(b) is None
        a.sync_once()
        b.sync_once()
        assert b.spend_nusd(name) == 80_000  # a's adds, read from Redis
        b.add(make_record(started_at=started, cost_nusd=20_000))
        assert refusal(b) is not None  # its own add, at once
        assert refusal(a) is None  # not seen yet
        b.sync_once()
        a.sync_once()
        assert refusal(a) is not None
        assert a.spend_nusd(name) == b.spend_nusd(name) == 100_000
        key = counter_key(name, a._view.period_start)
        client = redis.Redis.from_url(REDIS_URL)
        assert int(client.get(key) or 0) == 100_000
        # The counter expires a week after the period ends.
        ttl_s = client.ttl(key)
        assert (
            a._view.period_end.timestamp() - clock()
            < ttl_s
            <= a._view.period_end.timestamp() - clock() + 7 * 86400 + 1
        )
        client.close()
    finally:
        a.close()
        b.close()


def test_redis_down_serves_counts_unchecked_and_logs_once_then_catches_up(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with private_redis() as (process, url, port):
        config = config_with(
            [{"name": name, "monthly_usd": "1", "hard_limit": True}], limits={"redis_url": url}
        )
        registry = CollectorRegistry()
        enforcer = LimitEnforcer(config, registry)
        started = datetime.now(UTC)
        enforcer.add(make_record(started_at=started, cost_nusd=1_000))
        enforcer.sync_once()
        assert enforcer.store_up
        stop_redis(process)
        caplog.set_level(logging.WARNING, "finops.limits")
        for _ in range(3):
            enforcer.add(make_record(started_at=started, cost_nusd=2_000))
            enforcer.sync_once()
            assert refusal(enforcer) is None
        assert not enforcer.store_up
        assert registry.get_sample_value("finops_limits_store_up") == 0
        assert registry.get_sample_value("finops_limits_unchecked_calls_total") == 3
        down = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(down) == 1
        # Back (empty: a restarted Redis lost its data); the adds queued meanwhile are sent.
        replacement = start_redis(port)
        try:
            enforcer.sync_once()
            assert enforcer.store_up
            assert registry.get_sample_value("finops_limits_store_up") == 1
            key = counter_key(name, enforcer._view.period_start)
            assert RedisStore(url).get([key]) == {key: 6_000}
            assert any(
                "reachable again" in r.getMessage() and "3 calls" in r.getMessage() for r in caplog.records
            )
        finally:
            enforcer.close()
            stop_redis(replacement)


def test_refuse_mode_answers_503_while_redis_is_away() -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    config = config_with(
        [{"name": "cap", "monthly_usd": "1", "hard_limit": True}],
        limits={"redis_url": closed, "on_redis_down": "refuse"},
    )
    enforcer = LimitEnforcer(config)
    try:
        enforcer.sync_once()
        refused = refusal(enforcer)
        assert refused is not None and refused.status == 503
        assert orjson.loads(refused.body())["error"]["code"] == "limits_unavailable"
    finally:
        enforcer.close()


def test_redis_counters_roll_over_to_a_fresh_key(name: str) -> None:
    clock = Clock(NOV_30)
    config = config_with(
        [{"name": name, "monthly_usd": "0.00001", "hard_limit": True}], limits={"redis_url": REDIS_URL}
    )
    a, b = LimitEnforcer(config, clock=clock), LimitEnforcer(config, clock=clock)
    try:
        a.add(make_record(started_at=NOV_30, cost_nusd=10_000))
        a.sync_once()
        b.sync_once()
        assert refusal(a) is not None and refusal(b) is not None
        clock.set(DEC_1)
        assert refusal(a) is None  # the check itself moves to December's counter
        b.sync_once()
        assert refusal(b) is None and b.spend_nusd(name) == 0
        # A November call that ends in December is added to November's counter.
        b.add(make_record(started_at=NOV_30, cost_nusd=5))
        b.sync_once()
        nov, dec = (
            counter_key(name, datetime(2026, 11, 1, tzinfo=UTC)),
            counter_key(name, DEC_1.replace(second=0)),
        )
        assert RedisStore(REDIS_URL).get([nov, dec]) == {nov: 10_005, dec: 0}
    finally:
        a.close()
        b.close()


def test_embedded_proxy_restores_its_counters_from_the_ledger(db_url: str) -> None:
    """In-process counters are lost on restart: the proxy's refresh reconciles them from the ledger."""
    from finops.db import make_engine
    from finops.ledger.store import insert_records

    config = config_with(
        [{"name": "cap", "scope": {"team": "search"}, "monthly_usd": "0.00002", "hard_limit": True}]
    )
    engine = make_engine(db_url)
    try:
        insert_records(
            engine, [make_record(started_at=datetime.now(UTC), cost_nusd=10_000) for _ in range(2)]
        )
        enforcer = LimitEnforcer(config)
        assert refusal(enforcer) is None
        enforcer.refresh(engine)
        assert enforcer.spend_nusd("cap") == 20_000
        assert refusal(enforcer) is not None
    finally:
        engine.dispose()


def test_a_limits_swap_during_a_lookup_never_leaves_a_stale_match() -> None:
    """Regression: the tag-match cache once outlived a swap of the limits. A lookup that read the old
    view, then filled the cache after the swap, left the old budget there, and every later check of
    those tags raised KeyError (a 500 for every call with them)."""
    from finops.limits.table import LimitBudget

    old = LimitBudget("cap-old", "search", None, None, 10, "tokens")
    new = LimitBudget("cap-new", "search", None, None, 10**12, "tokens")
    enforcer = LimitEnforcer(config_with([]), clock=Clock(NOV_30))
    enforcer.set_limits([old])
    stale_view = enforcer._view  # the writer thread read the view...
    enforcer.set_limits([new])  # ...the refresh thread swapped the limits...
    enforcer._matching(stale_view, "search", "autocomplete", "llama-8b")  # ...then the writer looked up
    assert refusal(enforcer) is None  # the new limit is far from spent; no KeyError
    enforcer.add(make_record(started_at=NOV_30, cost_nusd=10**12))
    refused = refusal(enforcer)
    assert refused is not None and "cap-new" in refused.message


def test_the_503_of_unreachable_limits_leaves_the_clients_retries_on() -> None:
    from finops.limits.enforcer import budget_exceeded, limits_unavailable
    from finops.limits.table import LimitBudget

    assert limits_unavailable().headers == ()
    cap = LimitBudget("cap", None, None, None, 1, "tokens")
    assert budget_exceeded(cap, 2, DEC_1).headers == ((b"x-should-retry", b"false"),)
