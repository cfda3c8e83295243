"""What hard limits add to each proxied call, per operation, without the HTTP noise (run by hand).

    python benchmarks/bench_limits.py          # a few seconds; needs Redis at 127.0.0.1:6379 for "redis"

Prints microseconds per call of: the check before routing (event loop) with no hard-limit budget,
with one matching budget, and the add on the ledger writer thread (in-process store, and Redis, where
the add only queues; the limits thread's round trip is timed on its own).
"""

from __future__ import annotations

import argparse
import os
import timeit
from datetime import UTC, datetime

import redis

from finops.config import FinopsConfig
from finops.ledger.record import UsageRecord
from finops.limits.enforcer import LimitEnforcer

NAME = f"bench-limits-{os.getpid()}"


def _config(hard_limit: bool, redis_url: str | None) -> FinopsConfig:
    return FinopsConfig.model_validate(
        {
            "budgets": [
                {"name": NAME, "scope": {"team": "bench"}, "monthly_usd": "1000000", "hard_limit": hard_limit}
            ],
            "limits": {"redis_url": redis_url},
        }
    )


def _record() -> UsageRecord:
    now = datetime.now(UTC)
    return UsageRecord(
        "r", "t", now, now, "bench", "f", "m", "m", None, None, "chat.completions", False, 200,
        10, 16, 0, False, None, None, 1.0, 1_000, 3_200, 4_200, True, None, "stop", None, False, None, None,
    )  # fmt: skip


def per_call_us(fn: object, number: int) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))  # type: ignore[arg-type]
    return best / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    n = args.number
    record = _record()
    rows: list[tuple[str, float]] = []
    off = LimitEnforcer(_config(False, None))
    rows.append(("check, no hard-limit budget", per_call_us(lambda: off.check("bench", "f", "m"), n)))
    memory = LimitEnforcer(_config(True, None))
    rows.append(("check, one matching budget", per_call_us(lambda: memory.check("bench", "f", "m"), n)))
    rows.append(("add, in-process store", per_call_us(lambda: memory.add(record), n // 4)))
    shared = LimitEnforcer(_config(True, args.redis_url))
    try:
        rows.append(("add, Redis (queued)", per_call_us(lambda: shared.add(record), n // 4)))
        rows.append(("limits thread sync (INCRBY + MGET)", per_call_us(shared.sync_once, 2_000)))
    finally:
        shared.close()
        client = redis.Redis.from_url(args.redis_url)
        keys = list(client.scan_iter(match=f"finops:limit:{NAME}:*"))
        if keys:
            client.delete(*keys)
        client.close()
    for what, us in rows:
        print(f"{what:<40} {us:8.2f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
