"""Capacity points (rates from consecutive scrapes) and the plain verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from finops.observability.capacity import Scrape, capacity_points, verdict

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def scrape(seconds: float, **values: object) -> Scrape:
    fields: dict[str, object] = {
        "backend": "gpu-a",
        "at": T0 + timedelta(seconds=seconds),
        "up": True,
        "error": None,
        "gpus": Decimal(2),
        "running": 4.0,
        "waiting": 0.0,
        "kv_cache_usage": 0.3,
        "prompt_tokens_total": None,
        "generation_tokens_total": None,
        "prefix_cache_queries_total": None,
        "prefix_cache_hits_total": None,
        "prefix_cache_hit_rate": None,
    }
    fields.update(values)
    return Scrape(**fields)  # type: ignore[arg-type]


def test_rates_from_consecutive_scrapes_and_restart():
    points = capacity_points(
        [
            scrape(15, prompt_tokens_total=2500.0, generation_tokens_total=700.0,
                   prefix_cache_queries_total=2500.0, prefix_cache_hits_total=1000.0),
            scrape(0, prompt_tokens_total=1000.0, generation_tokens_total=400.0,
                   prefix_cache_queries_total=1000.0, prefix_cache_hits_total=400.0),
            # Counters went down: the backend restarted, no rate for this interval.
            scrape(30, prompt_tokens_total=10.0, generation_tokens_total=5.0),
        ]
    )  # fmt: skip
    assert [p.at for p in points] == [T0, T0 + timedelta(seconds=15), T0 + timedelta(seconds=30)]
    first, second, third = points
    assert first.prompt_tokens_per_s is None and first.tokens_per_gpu_second is None
    assert second.prompt_tokens_per_s == 100.0
    assert second.generation_tokens_per_s == 20.0
    assert second.prefix_cache_hit_rate == 0.4  # 600 hits of 1500 queried tokens in the interval
    assert second.tokens_per_gpu_second == 60.0  # 120 tokens/s over 2 GPUs
    assert third.prompt_tokens_per_s is None


def test_a_failed_scrape_breaks_the_rate_chain():
    points = capacity_points(
        [
            scrape(0, prompt_tokens_total=0.0),
            scrape(15, up=False, error="down", running=None),
            scrape(30, prompt_tokens_total=300.0),
        ]
    )
    assert [p.prompt_tokens_per_s for p in points] == [None, None]


def test_verdicts():
    queue_full = [scrape(i * 15, waiting=5.0, kv_cache_usage=0.98) for i in range(4)]
    assert verdict(queue_full).startswith("memory-bound")
    queue_room = [scrape(i * 15, waiting=3.0, kv_cache_usage=0.5) for i in range(4)]
    assert verdict(queue_room).startswith("compute-bound")
    idle = [scrape(i * 15, running=0.0, kv_cache_usage=0.0) for i in range(10)]
    assert verdict(idle).startswith("over-provisioned")
    assert verdict([scrape(i * 15) for i in range(4)]).startswith("healthy")
    assert verdict([]).startswith("no data")
    down = [*queue_full, scrape(100, up=False, error="cannot reach http://h/metrics", running=None)]
    assert verdict(down) == "unreachable: cannot reach http://h/metrics"


@given(
    st.lists(
        st.tuples(st.floats(0, 50), st.floats(0, 20), st.floats(0, 1), st.booleans()),
        min_size=1,
        max_size=30,
    )
)
def test_verdict_is_always_one_of_the_plain_kinds(values):
    scrapes = [scrape(i, running=r, waiting=w, kv_cache_usage=k, up=up, error=None if up else "x")
               for i, (r, w, k, up) in enumerate(values)]  # fmt: skip
    kind = verdict(scrapes).split(":")[0]
    assert kind in {"memory-bound", "compute-bound", "over-provisioned", "healthy", "unreachable"}
    if values[-1][3] and any(up and w > 0 for _, w, _, up in values) is False:
        assert kind in {"over-provisioned", "healthy"}
