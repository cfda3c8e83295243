"""Benchmark of GPU-second attribution: by hand, not a test.

    python benchmarks/bench_attribution.py [--calls 1000000] [--backends 8] [--concurrency 40]

Generates calls with a fixed seed: per backend, start times uniform over a span chosen so that about
``--concurrency`` calls are in flight on average, durations log-uniform in 0.2-30 s, prompt and
completion tokens spread over realistic ranges (1% report no tokens). Only the attribution is timed;
the conservation invariants are checked afterwards.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections import defaultdict
from decimal import Decimal

from finops.attribution import ONE_MINUTE_US, BackendRate, CallSpan, GpuRow, attribute_backends

EPOCH_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, a realistic magnitude for timestamps
MIN_DURATION_S = 0.2
MAX_DURATION_S = 30.0


def make_calls(count: int, backends: list[str], concurrency: float, seed: int) -> list[CallSpan]:
    rng = random.Random(seed)
    mean_duration_s = (MAX_DURATION_S - MIN_DURATION_S) / math.log(MAX_DURATION_S / MIN_DURATION_S)
    span_us = int(count / len(backends) * mean_duration_s / concurrency * 1e6)
    log_lo, log_hi = math.log(MIN_DURATION_S * 1e6), math.log(MAX_DURATION_S * 1e6)
    calls = []
    for n in range(count):
        start_us = EPOCH_US + rng.randrange(span_us)
        duration_us = int(math.exp(rng.uniform(log_lo, log_hi)))
        silent = rng.random() < 0.01
        calls.append(
            CallSpan(
                request_id=f"req-{n:08d}",
                backend=backends[n % len(backends)],
                start_us=start_us,
                end_us=start_us + duration_us,
                prompt_tokens=0 if silent else rng.randint(20, 8000),
                completion_tokens=0 if silent else rng.randint(1, 1500),
            )
        )
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--backends", type=int, default=8)
    parser.add_argument("--concurrency", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best and the median are shown")
    args = parser.parse_args()

    names = [f"vllm-{k}" for k in range(args.backends)]
    # Whole GPUs, multi-GPU nodes and a MIG half, at a price that is not a whole nano-USD per minute.
    gpus = [Decimal("0.5") if k % 3 == 0 else Decimal(k % 4 + 1) for k in range(len(names))]
    rates = [BackendRate(name, gpus[k], usd_per_gpu_hour=Decimal("2.49")) for k, name in enumerate(names)]
    calls = make_calls(args.calls, names, args.concurrency, args.seed)
    start_us = min(c.start_us for c in calls) // ONE_MINUTE_US * ONE_MINUTE_US
    end_us = -(-max(c.end_us for c in calls) // ONE_MINUTE_US) * ONE_MINUTE_US
    busy_us = sum(c.end_us - c.start_us for c in calls)
    hours = (end_us - start_us) / 3.6e9
    print(
        f"{len(calls):,} calls on {len(names)} backends over {hours:.2f} h, "
        f"mean {busy_us / len(names) / (end_us - start_us):.1f} calls in flight per backend"
    )

    wall_s: list[float] = []
    cpu_s: list[float] = []
    rows: list[GpuRow] = []
    for _ in range(args.repeat):
        rows = []  # let the previous run's rows go before timing the next one
        began_wall, began_cpu = time.perf_counter(), time.process_time()
        rows = attribute_backends(rates, calls, start_us, end_us)
        wall_s.append(time.perf_counter() - began_wall)
        cpu_s.append(time.process_time() - began_cpu)
    best_s = min(wall_s)
    print(f"{len(rows):,} rows; wall s per run {', '.join(f'{s:.2f}' for s in wall_s)}")
    print(f"CPU s per run {', '.join(f'{s:.2f}' for s in cpu_s)}")
    print(
        f"best {best_s:.2f} s ({len(calls) / best_s:,.0f} calls/s), "
        f"median {statistics.median(wall_s):.2f} s ({len(calls) / statistics.median(wall_s):,.0f} calls/s)"
    )

    gpu_us: defaultdict[tuple[str, int], int] = defaultdict(int)
    cost_nusd: defaultdict[tuple[str, int], int] = defaultdict(int)
    for row in rows:
        gpu_us[row.backend, row.window_start_us] += row.gpu_us
        cost_nusd[row.backend, row.window_start_us] += row.cost_nusd
    for rate in rates:
        gpu_total_us = rate.gpu_us_per_us * ONE_MINUTE_US
        for window_start_us in range(start_us, end_us, ONE_MINUTE_US):
            assert gpu_us[rate.name, window_start_us] == gpu_total_us
            window_end_us = window_start_us + ONE_MINUTE_US
            cost_rate = rate.nusd_per_us
            expected = math.floor(cost_rate * window_end_us) - math.floor(cost_rate * window_start_us)
            assert cost_nusd[rate.name, window_start_us] == expected
    print("conservation holds in every window")


if __name__ == "__main__":
    main()
