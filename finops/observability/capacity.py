"""Backend capacity from consecutive scrapes: token rates, prefix-cache hit rate, and a plain verdict.

Pure: the queries hand in scraped rows, these functions turn them into points and verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

# A KV cache this full is full for scheduling purposes: vLLM preempts or queues beyond it.
KV_FULL = 0.9
# Queueing: a request was waiting in at least this share of the scrapes.
QUEUEING_SHARE = 0.5
# Idle: nothing was running in at least this share of the scrapes.
IDLE_SHARE = 0.8


@dataclass(frozen=True)
class Scrape:
    """One row of backend_metrics, as the functions here need it."""

    backend: str
    at: datetime
    up: bool
    error: str | None
    gpus: Decimal
    running: float | None
    waiting: float | None
    kv_cache_usage: float | None
    prompt_tokens_total: float | None
    generation_tokens_total: float | None
    prefix_cache_queries_total: float | None
    prefix_cache_hits_total: float | None
    prefix_cache_hit_rate: float | None


@dataclass(frozen=True)
class CapacityPoint:
    backend: str
    at: datetime
    running: float | None
    waiting: float | None
    kv_cache_usage: float | None
    # Rates over the interval since the backend's previous scrape; None on the first, or after a restart.
    prompt_tokens_per_s: float | None
    generation_tokens_per_s: float | None
    prefix_cache_hit_rate: float | None
    # (prompt + generation tokens) per second per GPU of the backend.
    tokens_per_gpu_second: float | None = None


def _rate(now: float | None, before: float | None, seconds: float) -> float | None:
    if now is None or before is None or seconds <= 0 or now < before:  # a counter going down: restarted
        return None
    return (now - before) / seconds


def capacity_points(scrapes: Sequence[Scrape]) -> list[CapacityPoint]:
    """Points of the scrapes that reached their backend, with rates from each backend's previous one."""
    points: list[CapacityPoint] = []
    previous: dict[str, Scrape] = {}
    for scrape in sorted(scrapes, key=lambda s: (s.backend, s.at)):
        if not scrape.up:
            previous.pop(scrape.backend, None)
            continue
        before = previous.get(scrape.backend)
        prompt_rate = generation_rate = hit_rate = per_gpu = None
        if before is not None:
            seconds = (scrape.at - before.at).total_seconds()
            prompt_rate = _rate(scrape.prompt_tokens_total, before.prompt_tokens_total, seconds)
            generation_rate = _rate(scrape.generation_tokens_total, before.generation_tokens_total, seconds)
            queries = _rate(scrape.prefix_cache_queries_total, before.prefix_cache_queries_total, 1.0)
            hits = _rate(scrape.prefix_cache_hits_total, before.prefix_cache_hits_total, 1.0)
            if queries and hits is not None:
                hit_rate = min(1.0, hits / queries)
            if prompt_rate is not None and generation_rate is not None and scrape.gpus > 0:
                per_gpu = (prompt_rate + generation_rate) / float(scrape.gpus)
        if hit_rate is None and scrape.prefix_cache_hit_rate is not None:
            hit_rate = scrape.prefix_cache_hit_rate
        points.append(
            CapacityPoint(
                scrape.backend,
                scrape.at,
                scrape.running,
                scrape.waiting,
                scrape.kv_cache_usage,
                prompt_rate,
                generation_rate,
                hit_rate,
                per_gpu,
            )
        )
        previous[scrape.backend] = scrape
    return points


def _share(values: Sequence[float | None], test: float) -> tuple[float, float]:
    """(share of known values above ``test``, max of known values); (0, 0) when none are known."""
    known = [v for v in values if v is not None]
    if not known:
        return 0.0, 0.0
    return sum(1 for v in known if v > test) / len(known), max(known)


def verdict(scrapes: Sequence[Scrape]) -> str:
    """A plain verdict on one backend from its recent scrapes (any order)."""
    if not scrapes:
        return "no data: not scraped in the window"
    latest = max(scrapes, key=lambda s: s.at)
    if not latest.up:
        return f"unreachable: {latest.error or 'the last scrape failed'}"
    up = [s for s in scrapes if s.up]
    queued_share, _ = _share([s.waiting for s in up], 0.0)
    _, kv_max = _share([s.kv_cache_usage for s in up], 0.0)
    running_share, _ = _share([s.running for s in up], 0.0)
    if queued_share >= QUEUEING_SHARE:
        if kv_max >= KV_FULL:
            return (
                f"memory-bound: requests queue while the KV cache is full ({kv_max:.0%}); more GPU memory "
                "(or shorter contexts, or a smaller model) helps, more compute alone does not"
            )
        return (
            f"compute-bound: requests queue with KV cache to spare (at most {kv_max:.0%} used); more "
            "GPUs or faster ones help"
        )
    if 1.0 - running_share >= IDLE_SHARE:
        return (
            f"over-provisioned: idle in {1.0 - running_share:.0%} of the scrapes; fewer or smaller GPUs "
            "would do"
        )
    return f"healthy: serving without a queue (KV cache at most {kv_max:.0%} used)"
