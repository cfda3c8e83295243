"""The pure parts: the limit table, counter keys, the GPU estimate, the in-process store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from finops.config import BudgetConfig
from finops.limits.estimate import gpu_estimate_nusd, rate_at
from finops.limits.store import MemoryStore
from finops.limits.table import LimitBudget, counter_key, matching, merge_limits, usd_to_nusd
from tests.limits.support import config_with


def row(name: str, hard_limit: bool, **scope: str | None) -> SimpleNamespace:
    return SimpleNamespace(
        name=name,
        team=scope.get("team"),
        feature=scope.get("feature"),
        model=scope.get("model"),
        monthly_nusd=5_000,
        basis="tokens",
        hard_limit=hard_limit,
    )


def test_config_budgets_override_the_table_by_name_and_only_hard_limits_count() -> None:
    config = [
        BudgetConfig(name="a", monthly_usd=Decimal("1.5"), hard_limit=True, scope={"team": "x"}),
        BudgetConfig(name="b", monthly_usd=Decimal(2), hard_limit=False),
    ]
    rows = [row("a", False), row("b", True), row("c", True, feature="f"), row("d", False)]
    limits = merge_limits(config, rows)  # type: ignore[arg-type]
    assert limits == [
        LimitBudget("a", "x", None, None, 1_500_000_000, "tokens"),
        LimitBudget("c", None, "f", None, 5_000, "tokens"),
    ]


def test_no_table_rows_means_the_config_budgets() -> None:
    config = [BudgetConfig(name="g", monthly_usd=Decimal("0.000000001"), hard_limit=True)]
    assert merge_limits(config, []) == [LimitBudget("g", None, None, None, 1, "tokens")]


@given(st.decimals(min_value=Decimal("0.000000001"), max_value=Decimal(10**9), places=9))
def test_usd_to_nusd_is_exact_at_nine_places(usd: Decimal) -> None:
    assert Decimal(usd_to_nusd(usd)) == usd * 10**9


def test_scope_matching() -> None:
    limits = [
        LimitBudget("global", None, None, None, 1, "tokens"),
        LimitBudget("team", "search", None, None, 1, "tokens"),
        LimitBudget("both", "search", "chat", "llama-8b", 1, "tokens"),
    ]
    assert [b.name for b in matching(limits, "search", "chat", "llama-8b")] == ["global", "team", "both"]
    assert [b.name for b in matching(limits, "search", "chat", "qwen")] == ["global", "team"]
    assert [b.name for b in matching(limits, "ads", "chat", "llama-8b")] == ["global"]


def test_each_period_has_its_own_counter() -> None:
    november = counter_key("b", datetime(2026, 11, 1, tzinfo=UTC))
    december = counter_key("b", datetime(2026, 12, 1, tzinfo=UTC))
    assert november != december
    assert november == "finops:limit:b:2026-11-01T00:00:00Z"


@given(
    st.integers(min_value=0, max_value=10**10),
    st.decimals(min_value=Decimal("0.1"), max_value=Decimal(16), places=2),
    st.decimals(min_value=0, max_value=Decimal(100), places=4),
    st.integers(min_value=1, max_value=512),
)
def test_gpu_estimate_splits_the_gpus_among_the_calls_in_flight(
    duration_us: int, gpus: Decimal, price: Decimal, sharing: int
) -> None:
    alone = gpu_estimate_nusd(duration_us, gpus, price, 1)
    shared = gpu_estimate_nusd(duration_us, gpus, price, sharing)
    exact = Decimal(duration_us) * gpus * price * 10**9 / 3_600_000_000
    assert abs(Decimal(alone) - exact) <= Decimal("0.5")
    # n calls sharing the GPUs for the same time add up to the GPUs' cost, up to rounding each.
    assert abs(Decimal(shared * sharing) - exact) <= Decimal(sharing) / 2 + Decimal("0.5")


def test_gpu_estimate_uses_the_rate_in_force() -> None:
    config = config_with(
        [],
    ).backends[0]
    assert rate_at(config, datetime(2026, 1, 1, tzinfo=UTC)) == (Decimal(2), Decimal("3.6"))
    # One GPU-hour at 3.6 USD: two GPUs for 1800 s, alone.
    assert gpu_estimate_nusd(1_800_000_000, Decimal(2), Decimal("3.6"), 1) == 3_600_000_000


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(-(10**6), 10**9)), max_size=60))
def test_memory_store_adds_from_many_threads_lose_nothing(adds: list[tuple[str, int]]) -> None:
    store = MemoryStore(clock=lambda: 0.0)
    threads = [threading.Thread(target=store.add, args=({key: amount}, {key: 100})) for key, amount in adds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = {k: sum(a for key, a in adds if key == k) for k in ("a", "b", "c")}
    assert store.get(["a", "b", "c"]) == expected


def test_memory_store_counters_expire() -> None:
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    store.add({"k": 5}, {"k": 10})
    assert store.get(["k"]) == {"k": 5}
    now[0] = 10.0
    assert store.get(["k"]) == {"k": 0}
