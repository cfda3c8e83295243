"""Benchmark of trace amplification: by hand, not a test.

    python benchmarks/bench_traces.py [--traces 100000] [--calls-per-trace 5] [--repeat 3]

Generates traces with a fixed seed: between 1 and 2 x ``--calls-per-trace`` - 1 calls each (so the
mean is ``--calls-per-trace``), the last one a generation call, the earlier ones drawn from the
conventional stages (embedding on the embeddings endpoint, retrieval, rerank, tool, agent, safety,
summarize, intermediate generation, an unknown stage), chat prompts split into system / history /
context / user, prices as a ledger would give them. About 4% of calls fail, 3% repeat the previous
call's body and 2% name it in ``retry_of``. Only ``compute`` over every trace is timed (one core);
additivity is checked afterwards, and the group statistics are timed on their own.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace

from finops.traces import TraceCall, TraceCost, compute, group_stats

EPOCH_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, a realistic magnitude for timestamps
STAGES = ["embedding", "retrieval", "rerank", "tool", "agent", "safety", "summarize", "generation", "plan"]
STAGE_WEIGHTS = [14, 14, 8, 16, 6, 14, 4, 20, 4]


def make_call(rng: random.Random, trace_id: str, n: int, start_us: int, stage: str | None) -> TraceCall:
    embeddings = stage == "embedding" and rng.random() < 0.8
    endpoint = "embeddings" if embeddings else "chat.completions"
    if embeddings:
        system = history = context = 0
        user = rng.randint(5, 400)
        completion = 0
    else:
        system = rng.randint(0, 800)
        history = rng.randint(0, 2_000) if rng.random() < 0.4 else 0
        context = rng.randint(0, 6_000) if rng.random() < 0.5 else 0
        user = rng.randint(5, 300)
        completion = rng.randint(1, 1_200)
    prompt = system + history + context + user
    # Prices per token of a mid-size model, in nano-USD: not round, like a real price book.
    prompt_cost = prompt * 137
    completion_cost = completion * 411
    return TraceCall(
        request_id=f"{trace_id}-{n}",
        started_at_us=start_us,
        ended_at_us=start_us + rng.randint(20_000, 20_000_000),
        endpoint=endpoint,
        stage=stage,
        status_code=500 if rng.random() < 0.03 else 499 if rng.random() < 0.01 else 200,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_nusd=prompt_cost + completion_cost,
        body_sha256=f"{rng.getrandbits(64):016x}",
        system_tokens=system,
        history_tokens=history,
        context_tokens=context,
        user_tokens=user,
        prompt_cost_nusd=prompt_cost,
        completion_cost_nusd=completion_cost,
        trace_id=trace_id,
    )


def make_traces(count: int, calls_per_trace: int, seed: int) -> list[tuple[str, list[TraceCall]]]:
    rng = random.Random(seed)
    traces = []
    for t in range(count):
        trace_id = f"trace-{t:07d}"
        length = rng.randint(1, 2 * calls_per_trace - 1)
        start_us = EPOCH_US + rng.randrange(86_400_000_000)
        stages: list[str | None] = rng.choices(STAGES, STAGE_WEIGHTS, k=length - 1)
        stages.append(None if rng.random() < 0.5 else "Generation")
        calls: list[TraceCall] = []
        for n, stage in enumerate(stages):
            call = make_call(rng, trace_id, n, start_us, stage)
            roll = rng.random()
            if calls and roll < 0.03:
                # The same request sent again: same body, so the hash marks it.
                call = replace(
                    calls[-1],
                    request_id=call.request_id,
                    started_at_us=call.started_at_us,
                    ended_at_us=call.ended_at_us,
                    status_code=call.status_code,
                )
            elif calls and roll < 0.05:
                call = replace(call, retry_of=calls[-1].request_id)
            calls.append(call)
            start_us += rng.randint(1_000, 3_000_000)
        rng.shuffle(calls)  # the ledger hands rows over in no particular order
        traces.append((trace_id, calls))
    return traces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--calls-per-trace", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best and the median are shown")
    args = parser.parse_args()

    traces = make_traces(args.traces, args.calls_per_trace, args.seed)
    calls = sum(len(members) for _, members in traces)
    print(f"{len(traces):,} traces, {calls:,} calls")

    wall_s: list[float] = []
    cpu_s: list[float] = []
    results: list[TraceCost] = []
    for _ in range(args.repeat):
        results = []  # let the previous run's results go before timing the next one
        began_wall, began_cpu = time.perf_counter(), time.process_time()
        results = [compute(trace_id, members) for trace_id, members in traces]
        wall_s.append(time.perf_counter() - began_wall)
        cpu_s.append(time.process_time() - began_cpu)
    best_s, median_s = min(wall_s), statistics.median(wall_s)
    print(f"wall s per run {', '.join(f'{s:.2f}' for s in wall_s)}")
    print(f"CPU s per run {', '.join(f'{s:.2f}' for s in cpu_s)}")
    print(
        f"best {best_s:.2f} s ({len(traces) / best_s:,.0f} traces/s, {calls / best_s:,.0f} calls/s), "
        f"median {median_s:.2f} s ({len(traces) / median_s:,.0f} traces/s)"
    )

    began = time.perf_counter()
    stats = group_stats(results)
    stats_s = time.perf_counter() - began
    tokens, cost = stats.amplification_tokens, stats.amplification_cost
    assert tokens is not None and cost is not None
    print(
        f"group stats over all traces in {stats_s:.2f} s: amplification tokens p50 {float(tokens.p50):.2f} "
        f"p90 {float(tokens.p90):.2f} max {float(tokens.max):.2f}, cost p50 {float(cost.p50):.2f} "
        f"p90 {float(cost.p90):.2f}; cost per query {float(stats.cost_per_query_nusd or 0) / 1e9:.6f} USD"
    )

    for (_, members), result in zip(traces, results, strict=True):
        assert result.tokens.total == sum(c.prompt_tokens + c.completion_tokens for c in members)
        assert result.cost_nusd.total == sum(c.cost_nusd for c in members)
    retries = sum(result.retries for result in results)
    print(f"breakdown adds up exactly in every trace; {retries:,} retry calls marked")


if __name__ == "__main__":
    main()
