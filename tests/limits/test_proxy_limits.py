"""Hard limits end to end: real proxy processes, the vLLM stand-in, real Redis and Postgres."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from finops.budgets.models import BudgetRow
from finops.db import unit_of_work
from finops.limits.table import counter_key
from tests.limits.support import REDIS_URL, delete_budget_keys, private_redis, stop_redis, unique
from tests.support.databases import fresh_postgres
from tests.support.processes import free_port
from tests.support.stack import ProxyStack, backend, start_sim

MESSAGES = [{"role": "user", "content": "How much did search spend?"}]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_sim(tmp_path_factory.mktemp("sim"), ("llama-8b",))
    yield url
    process.stop()


@pytest.fixture
def db() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url


def metric(stack: ProxyStack, name: str, **labels: str) -> float | None:
    text = httpx.get(stack.url + "/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def chat(stack: ProxyStack, team: str, feature: str = "limits", **headers: str) -> httpx.Response:
    return httpx.post(
        stack.base_url + "/chat/completions",
        json={"model": "llama-8b", "messages": MESSAGES},
        headers={"X-FinOps-Team": team, "X-FinOps-Feature": feature, **headers},
        timeout=30,
    )


def spend_of(stack: ProxyStack, team: str) -> int:
    return sum(r["cost_nusd"] for r in stack.rows() if r["team"] == team)


def test_429_in_openai_shape_naming_the_budget(tmp_path: Path, sim: str, db: str) -> None:
    """In-process counter (no Redis): the embedded default."""
    stack = ProxyStack(
        tmp_path,
        db,
        [backend("gpu-a", sim, ["llama-8b"])],
        budgets=[
            {"name": "search-cap", "scope": {"team": "search"}, "monthly_usd": "0.00001", "hard_limit": True}
        ],
    ).start()
    try:
        client = openai.OpenAI(
            base_url=stack.base_url,
            api_key="EMPTY",
            default_headers={"X-FinOps-Team": "search", "X-FinOps-Feature": "limits"},
        )
        served = 0
        with pytest.raises(openai.RateLimitError) as caught:
            for _ in range(50):
                client.chat.completions.create(model="llama-8b", messages=MESSAGES)  # type: ignore[arg-type]
                served += 1
                # The cost reaches the counter from the ledger writer's thread, just after the answer.
                wait_for(
                    lambda: (
                        metric(stack, "finops_limits_spend_nusd", budget="search-cap")
                        == spend_of(stack, "search")
                    ),
                    "the counter to take the call",
                )
        error = caught.value
        assert error.status_code == 429
        assert error.code == "budget_exceeded" and error.type == "insufficient_quota"
        assert "budget 'search-cap' (team=search) has reached its hard limit" in error.message
        assert error.response.headers["x-finops-request-id"]
        # The spend reached the limit with the last call served, not before.
        rows = stack.rows()
        costs = [r["cost_nusd"] for r in rows]
        assert len(rows) == served and sum(costs) >= 10_000 > sum(costs) - costs[-1]
        # x-should-retry: false, so the client did not retry the 429: one refusal for one call.
        assert (
            metric(stack, "finops_limits_refused_calls_total", budget="search-cap", code="budget_exceeded")
            == 1
        )
        # Another team is not in the budget's scope.
        other = openai.OpenAI(
            base_url=stack.base_url, api_key="EMPTY", default_headers={"X-FinOps-Team": "ads"}
        ).chat.completions.create(model="llama-8b", messages=MESSAGES)  # type: ignore[arg-type]
        assert other.choices[0].message.content
        assert metric(stack, "finops_limits_store_up") == 1
    finally:
        stack.close()


def test_two_proxies_share_one_limit_through_redis(tmp_path: Path, sim: str, db: str) -> None:
    """Waves of concurrent calls through two proxies; the limit comes from the budgets table."""
    name = unique("shared")
    stacks = [
        ProxyStack(
            tmp_path, db, [backend("gpu-a", sim, ["llama-8b"])], limits={"redis_url": REDIS_URL}
        ).start()
        for _ in range(2)
    ]
    try:
        # One call's cost (every call here is the same: same prompt, same answer length).
        assert chat(stacks[0], "calibrate").status_code == 200
        call_nusd = stacks[0].wait_rows(lambda rows: len(rows) == 1)[0]["cost_nusd"]
        limit_nusd = call_nusd * 29 // 2  # reached during the third wave of six
        now = datetime.now(UTC)
        with unit_of_work(stacks[0].engine) as session:
            session.add(
                BudgetRow(
                    name=name,
                    team="wave",
                    feature=None,
                    model=None,
                    monthly_nusd=limit_nusd,
                    basis="tokens",
                    thresholds="1.0",
                    forecast=False,
                    channels="",
                    hard_limit=True,
                    source="api",
                    created_at=now,
                    updated_at=now,
                )
            )
        for stack in stacks:
            wait_for(
                lambda s=stack: metric(s, "finops_limits_amount_nusd", budget=name) == limit_nusd,
                "the proxies to load the budget",
            )
        waves: list[list[tuple[int, httpx.Response]]] = []
        while not waves or any(r.status_code == 200 for _, r in waves[-1]):
            assert len(waves) < 10, "the limit never stopped the calls"
            waves.append(wave(stacks, per_proxy=3, latency_ms=1000))
            admitted = sum(r.status_code == 200 for wave_ in waves for _, r in wave_)
            stacks[0].wait_rows(lambda rows, n=admitted: sum(r["team"] == "wave" for r in rows) == n)
            ledger_spend = spend_of(stacks[0], "wave")
            for stack in stacks:  # both replicas have read every add back from Redis
                wait_for(
                    lambda s=stack, v=ledger_spend: metric(s, "finops_limits_spend_nusd", budget=name) == v,
                    "the replicas to see the shared counter",
                )
        assert len(waves) == 4, [[r.status_code for _, r in w] for w in waves]
        # Both replicas admitted calls, and both refused the last wave, naming the budget.
        assert {i for w in waves[:3] for i, r in w if r.status_code == 200} == {0, 1}
        assert {i for i, _ in waves[3]} == {0, 1}
        for _, response in waves[3]:
            assert response.status_code == 429
            assert response.json()["error"]["code"] == "budget_exceeded"
            assert name in response.json()["error"]["message"]

        rows = sorted((r for r in stacks[0].rows() if r["team"] == "wave"), key=lambda r: r["ended_at"])
        total = sum(r["cost_nusd"] for r in rows)
        # Redis holds exactly the ledger's spend.
        client = redis.Redis.from_url(REDIS_URL)
        key = counter_key(name, datetime(now.year, now.month, 1, tzinfo=UTC))
        assert int(client.get(key) or 0) == total
        client.close()
        # The bound, from the ledger: the limit was reached when the call that took the spend over it
        # ended; what was spent beyond is the calls in flight at that moment.
        running = 0
        for crossing in rows:
            running += crossing["cost_nusd"]
            if running >= limit_nusd:
                break
        reached_at = crossing["ended_at"]
        in_flight = [r for r in rows if r["started_at"] <= reached_at < r["ended_at"]]
        assert total - running == sum(r["cost_nusd"] for r in in_flight)
        assert total - limit_nusd <= sum(r["cost_nusd"] for r in in_flight) + crossing["cost_nusd"]
        assert total < 2 * limit_nusd  # not one limit per replica
    finally:
        for stack in stacks:
            stack.close()
        delete_budget_keys(name)


def test_free_running_clients_on_two_proxies_lose_no_add(tmp_path: Path, sim: str, db: str) -> None:
    """Six clients call through two proxies back to back until refused: no add is lost between the
    replicas (Redis ends equal to the ledger), and the overshoot stays within the calls in flight."""
    name = unique("free")
    stacks = [
        ProxyStack(
            tmp_path, db, [backend("gpu-a", sim, ["llama-8b"])], limits={"redis_url": REDIS_URL}
        ).start()
        for _ in range(2)
    ]
    clients_per_proxy = 3
    try:
        assert chat(stacks[0], "calibrate").status_code == 200
        call_nusd = stacks[0].wait_rows(lambda rows: len(rows) == 1)[0]["cost_nusd"]
        limit_nusd = call_nusd * 21 // 2
        now = datetime.now(UTC)
        with unit_of_work(stacks[0].engine) as session:
            session.add(
                BudgetRow(
                    name=name,
                    team="free",
                    feature=None,
                    model=None,
                    monthly_nusd=limit_nusd,
                    basis="tokens",
                    thresholds="1.0",
                    forecast=False,
                    channels="",
                    hard_limit=True,
                    source="api",
                    created_at=now,
                    updated_at=now,
                )
            )
        for stack in stacks:
            wait_for(
                lambda s=stack: metric(s, "finops_limits_amount_nusd", budget=name) == limit_nusd,
                "the proxies to load the budget",
            )

        def client(i: int) -> int:
            for served in range(40):
                response = chat(stacks[i], "free", **{"X-SIM-TTFT-Ms": "1000"})
                if response.status_code == 429:
                    assert response.json()["error"]["code"] == "budget_exceeded"
                    return served
                assert response.status_code == 200
            raise AssertionError("never refused")

        targets = [i for i in range(2) for _ in range(clients_per_proxy)]
        with ThreadPoolExecutor(len(targets)) as pool:
            served = list(pool.map(client, targets))
        rows = stacks[0].wait_rows(lambda rows: sum(r["team"] == "free" for r in rows) == sum(served))
        total = sum(r["cost_nusd"] for r in rows if r["team"] == "free")
        wait_for(
            lambda: all(metric(s, "finops_limits_spend_nusd", budget=name) == total for s in stacks),
            "the replicas to see the last adds",
        )
        client_ = redis.Redis.from_url(REDIS_URL)
        key = counter_key(name, datetime(now.year, now.month, 1, tzinfo=UTC))
        assert int(client_.get(key) or 0) == total
        client_.close()
        assert total >= limit_nusd
        # Each client has one call open at a time; while the last add travels to the other replica
        # (limits.sync_interval_s, far below the 1 s a call takes here) a client can start one more.
        assert total - limit_nusd < 2 * len(targets) * call_nusd
    finally:
        for stack in stacks:
            stack.close()
        delete_budget_keys(name)


def wave(stacks: list[ProxyStack], per_proxy: int, latency_ms: int) -> list[tuple[int, httpx.Response]]:
    """per_proxy calls through each proxy, all at once."""
    targets = [i for i in range(len(stacks)) for _ in range(per_proxy)]
    barrier = threading.Barrier(len(targets))

    def one(i: int) -> tuple[int, httpx.Response]:
        barrier.wait()
        return i, chat(stacks[i], "wave", **{"X-Sim-TTFT-Ms": str(latency_ms)})

    with ThreadPoolExecutor(len(targets)) as pool:
        return list(pool.map(one, targets))


def test_redis_down_keeps_serving_and_says_so(tmp_path: Path, sim: str, db: str) -> None:
    name = unique("down")
    with private_redis() as (process, url, _port):
        stack = ProxyStack(
            tmp_path,
            db,
            [backend("gpu-a", sim, ["llama-8b"])],
            budgets=[{"name": name, "scope": {"team": "search"}, "monthly_usd": "1", "hard_limit": True}],
            limits={"redis_url": url},
        ).start()
        try:
            assert chat(stack, "search").status_code == 200
            assert metric(stack, "finops_limits_store_up") == 1
            stop_redis(process)
            wait_for(lambda: metric(stack, "finops_limits_store_up") == 0, "the proxy to notice")
            for _ in range(3):
                assert chat(stack, "search").status_code == 200
            assert metric(stack, "finops_limits_unchecked_calls_total") == 3
            assert chat(stack, "ads").status_code == 200  # not under a hard limit: not "unchecked"
            assert metric(stack, "finops_limits_unchecked_calls_total") == 3
            time.sleep(0.5)  # ten more failed syncs: still one line in the log
            assert stack.process is not None
            assert stack.process.log().count("limit counters unreachable") == 1
        finally:
            stack.close()


def test_refuse_mode_answers_503(tmp_path: Path, sim: str, db: str) -> None:
    stack = ProxyStack(
        tmp_path,
        db,
        [backend("gpu-a", sim, ["llama-8b"])],
        budgets=[{"name": "cap", "scope": {"team": "search"}, "monthly_usd": "1", "hard_limit": True}],
        limits={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "on_redis_down": "refuse"},
    ).start()
    try:
        wait_for(lambda: metric(stack, "finops_limits_store_up") == 0, "the proxy to find Redis away")
        refused = chat(stack, "search")
        assert refused.status_code == 503
        body: dict[str, Any] = refused.json()
        assert body["error"]["code"] == "limits_unavailable" and body["error"]["type"] == "api_error"
        assert chat(stack, "ads").status_code == 200  # no hard limit over it
        assert all(r["team"] == "ads" for r in stack.wait_rows(lambda rows: len(rows) == 1))
    finally:
        stack.close()
