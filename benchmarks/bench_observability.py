"""Benchmark of the observability pieces: by hand, not a test.

    python benchmarks/bench_observability.py [--values 1000000] [--records 100000]

Reports: sketch inserts per second and size for log-normal latencies; merging 24 hourly sketches into
a day and reading p50/p90/p99; the cost per record of the proxy's call-event counter (on the ledger
writer's thread); the latency rollup job's throughput on a SQLite ledger (the same code as Postgres).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from finops.config import FinopsConfig
from finops.db import make_engine, unit_of_work
from finops.ledger.record import UsageRecord
from finops.ledger.store import insert_records
from finops.migrate import upgrade
from finops.observability.rollup import run_latency_rollups
from finops.observability.sketch import Sketch, merged
from finops.proxy.metrics import ProxyMetrics

T0 = datetime(2026, 11, 30, tzinfo=UTC)


def record(rng: random.Random, n: int) -> UsageRecord:
    ttft = rng.lognormvariate(5, 1)
    started = T0 + timedelta(seconds=rng.uniform(0, 24 * 3600))
    return UsageRecord(
        request_id=uuid.UUID(int=rng.getrandbits(128)).hex,
        trace_id=f"t{n}",
        started_at=started,
        ended_at=started + timedelta(milliseconds=ttft + 500),
        team=rng.choice(["search", "support", "ads"]),
        feature=rng.choice(["chat", "rag", "agent", "summary"]),
        model=rng.choice(["llama-8b", "llama-70b", "qwen-1b"]),
        requested_model="m",
        backend=rng.choice(["gpu-a", "gpu-b", "gpu-c", "gpu-d"]),
        stage=None,
        endpoint="chat.completions",
        streamed=True,
        status_code=200,
        prompt_tokens=rng.randrange(10, 4000),
        completion_tokens=rng.randrange(1, 500),
        cached_tokens=0,
        tokens_estimated=False,
        ttft_ms=ttft,
        itl_ms=rng.uniform(5, 60),
        latency_ms=ttft + 500,
        prompt_cost_nusd=1,
        completion_cost_nusd=1,
        cost_nusd=2,
        priced=True,
        api_key_id=None,
        finish_reason="length" if rng.random() < 0.05 else "stop",
        error_type=None,
        client_disconnected=False,
        body_sha256=None,
        retry_of=None,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    rng = random.Random(7)

    values = [rng.lognormvariate(5, 1.5) for _ in range(args.values)]
    sketch = Sketch()
    t = time.perf_counter()
    sketch.extend(values)
    elapsed = time.perf_counter() - t
    print(f"sketch: {args.values / elapsed:,.0f} values/s; {len(sketch.buckets)} buckets, "
          f"{len(sketch.to_json())} bytes stored")  # fmt: skip

    hours = [Sketch().extend(rng.lognormvariate(5, 1.5) for _ in range(2000)) for _ in range(24)]
    stored = [h.to_json() for h in hours]
    t = time.perf_counter()
    day = merged(Sketch.from_json(text) for text in stored)
    quantiles = [day.quantile(q) for q in (0.5, 0.9, 0.99)]
    elapsed = time.perf_counter() - t
    print(f"day from 24 stored hours (48k calls) + p50/p90/p99: {elapsed * 1000:.2f} ms -> "
          f"{', '.join(f'{q:.1f}' for q in quantiles if q is not None)} ms")  # fmt: skip

    records = [record(rng, n) for n in range(args.records)]
    for name, limits in (("without a context limit", {}), ("with context limits", {"*": 3000})):
        metrics = ProxyMetrics()
        metrics.call_events.context_limits = limits
        labels = ("llama-8b", "search", "chat")
        t = time.perf_counter()
        for rec in records:
            metrics.call_events.observe(rec, labels)
        per_call_events = (time.perf_counter() - t) / len(records)
        t = time.perf_counter()
        metrics.observe(records)
        per_observe = (time.perf_counter() - t) / len(records)
        print(f"proxy /metrics per record ({name}): call events {per_call_events * 1e6:.2f} us "
              f"of observe() {per_observe * 1e6:.2f} us, on the ledger writer's thread")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        insert_records(engine, records)
        config = FinopsConfig(database_url=url)
        t = time.perf_counter()
        with unit_of_work(engine) as session:
            result = run_latency_rollups(session, config, T0 + timedelta(days=1))
        elapsed = time.perf_counter() - t
        print(f"latency rollup job: {result.calls:,} ledger rows in {elapsed:.2f} s "
              f"({result.calls / elapsed:,.0f} rows/s), {result.rows:,} sketch and event rows")  # fmt: skip
        engine.dispose()


if __name__ == "__main__":
    main()
