"""Property tests: exact additivity, factor 1 for a bare call, order independence, retry rule model."""

from __future__ import annotations

import random
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from finops.traces import PARTS, Breakdown, TraceCall, compute, group_stats
from tests.traces.support import EPOCH_US

STAGES = [
    None,
    "",
    "generation",
    "Generation",
    " retrieval ",
    "rerank",
    "EMBEDDING",
    "tool",
    "agent",
    "safety",
    "summarize",
    "planner",
]
ENDPOINTS = ["chat.completions", "completions", "embeddings"]
STATUSES = [200, 200, 200, 201, 400, 429, 499, 500, 503]


@st.composite
def trace_calls(draw: st.DrawFn, *, max_calls: int = 8) -> list[TraceCall]:
    count = draw(st.integers(1, max_calls))
    calls = []
    for n in range(count):
        request_id = f"r{n}"
        # Few distinct start times, so that ties (ordered by request id) are common.
        start_us = EPOCH_US + draw(st.integers(0, 3)) * 1_000
        endpoint = draw(st.sampled_from(ENDPOINTS))
        prompt = draw(st.integers(0, 5_000))
        completion = 0 if endpoint == "embeddings" else draw(st.integers(0, 2_000))
        if endpoint == "chat.completions" and prompt and draw(st.booleans()):
            cuts = sorted(draw(st.lists(st.integers(0, prompt), min_size=3, max_size=3)))
            system, history, context, user = (
                cuts[0],
                cuts[1] - cuts[0],
                cuts[2] - cuts[1],
                prompt - cuts[2],
            )
            if not system + history + context + user:
                system = prompt
        else:
            system = history = context = user = 0
        cost = draw(st.integers(0, 10**9))
        prompt_cost: int | None = None
        completion_cost: int | None = None
        if draw(st.booleans()):
            split = draw(st.integers(0, cost))
            prompt_cost, completion_cost = split, cost - split
        retry_of = draw(st.one_of(st.none(), st.sampled_from([f"r{k}" for k in range(max_calls)] + ["x"])))
        calls.append(
            TraceCall(
                request_id=request_id,
                started_at_us=start_us,
                ended_at_us=start_us + draw(st.integers(0, 10_000)),
                endpoint=endpoint,
                stage=draw(st.sampled_from(STAGES)),
                status_code=draw(st.sampled_from(STATUSES)),
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost_nusd=cost,
                body_sha256=draw(st.sampled_from([None, "h1", "h2", "h3"])),
                retry_of=retry_of,
                system_tokens=system,
                history_tokens=history,
                context_tokens=context,
                user_tokens=user,
                prompt_cost_nusd=prompt_cost,
                completion_cost_nusd=completion_cost,
            )
        )
    return calls


@settings(max_examples=500)
@given(trace_calls())
def test_breakdown_adds_up_exactly(calls: list[TraceCall]) -> None:
    trace = compute("t", calls)
    assert (
        trace.tokens.total == trace.total_tokens == sum(c.prompt_tokens + c.completion_tokens for c in calls)
    )
    assert trace.cost_nusd.total == trace.total_cost_nusd == sum(c.cost_nusd for c in calls)
    assert trace.tokens.baseline == trace.baseline_tokens
    assert trace.cost_nusd.baseline == trace.baseline_cost_nusd
    assert all(value >= 0 for value in trace.tokens.values() + trace.cost_nusd.values())
    # Each call is spread over the parts without loss, and the calls add up to the trace.
    for mark in trace.marks:
        assert mark.tokens.total == mark.call.prompt_tokens + mark.call.completion_tokens
        assert mark.cost_nusd.total == mark.call.cost_nusd
        if mark.is_retry:
            assert mark.tokens == Breakdown(retries=mark.tokens.total)
            assert mark.cost_nusd == Breakdown(retries=mark.cost_nusd.total)
        if not mark.call.succeeded:
            assert mark.is_retry
    assert Breakdown.sum(mark.tokens for mark in trace.marks) == trace.tokens
    assert Breakdown.sum(mark.cost_nusd for mark in trace.marks) == trace.cost_nusd
    assert trace.retries == sum(mark.is_retry for mark in trace.marks)
    assert trace.tokens.retries == sum(mark.tokens.total for mark in trace.marks if mark.is_retry)


@settings(max_examples=300)
@given(trace_calls())
def test_factor_is_total_over_baseline_and_at_least_one(calls: list[TraceCall]) -> None:
    trace = compute("t", calls)
    if trace.baseline_tokens:
        assert trace.amplification_tokens == Fraction(trace.total_tokens, trace.baseline_tokens)
        assert trace.amplification_tokens >= 1
    else:
        assert trace.amplification_tokens is None
    if trace.baseline_cost_nusd:
        assert trace.amplification_cost == Fraction(trace.total_cost_nusd, trace.baseline_cost_nusd)
        assert trace.amplification_cost >= 1
    else:
        assert trace.amplification_cost is None


@settings(max_examples=300)
@given(trace_calls(), st.randoms(use_true_random=False))
def test_order_independence(calls: list[TraceCall], rng: random.Random) -> None:
    shuffled = list(calls)
    rng.shuffle(shuffled)
    assert compute("t", shuffled) == compute("t", calls)


@given(
    endpoint=st.sampled_from(["chat.completions", "completions"]),
    stage=st.sampled_from([None, "generation", "GENERATION"]),
    prompt=st.integers(0, 100_000),
    completion=st.integers(0, 100_000),
    prompt_rate=st.integers(0, 10_000),
    completion_rate=st.integers(0, 10_000),
    split_given=st.booleans(),
    parts_given=st.booleans(),
)
def test_bare_generation_call_has_factor_exactly_one(
    endpoint, stage, prompt, completion, prompt_rate, completion_rate, split_given, parts_given
) -> None:
    prompt_cost = prompt * prompt_rate
    completion_cost = completion * completion_rate
    call = TraceCall(
        request_id="only",
        started_at_us=EPOCH_US,
        ended_at_us=EPOCH_US + 1,
        endpoint=endpoint,
        stage=stage,
        status_code=200,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_nusd=prompt_cost + completion_cost,
        user_tokens=prompt if parts_given and endpoint == "chat.completions" else 0,
        prompt_cost_nusd=prompt_cost if split_given else None,
        completion_cost_nusd=completion_cost if split_given else None,
    )
    trace = compute("t", [call])
    assert trace.amplification_tokens == (1 if prompt + completion else None)
    assert trace.amplification_cost == (1 if prompt_cost + completion_cost else None)
    assert trace.tokens.excess == 0
    assert trace.cost_nusd.excess == 0


# --- the retry rule, stated as reachability and checked by brute force -------------------------------


def model_retry(ordered: list[TraceCall]) -> list[bool]:
    """A call is a retry iff it failed, or it reaches a successful earlier call by repeat links.

    A repeat link goes from a call to an earlier call that its retry_of names or whose body hash it has.
    """
    index = {call.request_id: i for i, call in enumerate(ordered)}

    def links(i: int) -> list[int]:
        call = ordered[i]
        out = [
            j for j in range(i) if call.body_sha256 is not None and ordered[j].body_sha256 == call.body_sha256
        ]
        if call.retry_of in index and index[call.retry_of] < i:
            out.append(index[call.retry_of])
        return out

    def reaches_success(i: int) -> bool:
        seen, stack = set(), links(i)
        while stack:
            j = stack.pop()
            if j in seen:
                continue
            seen.add(j)
            if ordered[j].succeeded:
                return True
            stack.extend(links(j))
        return False

    return [not call.succeeded or reaches_success(i) for i, call in enumerate(ordered)]


@settings(max_examples=500)
@given(trace_calls())
def test_retry_rule_matches_the_reachability_model(calls: list[TraceCall]) -> None:
    trace = compute("t", calls)
    ordered = [mark.call for mark in trace.marks]
    assert ordered == sorted(calls, key=lambda c: (c.started_at_us, c.request_id))
    assert [mark.is_retry for mark in trace.marks] == model_retry(ordered)


@settings(max_examples=200)
@given(trace_calls())
def test_baseline_comes_from_first_and_last_delivered_generation(calls: list[TraceCall]) -> None:
    trace = compute("t", calls)
    generation = [m for m in trace.marks if m.category == "generation" and not m.is_retry]
    if not generation:
        return
    first, last = generation[0].call, generation[-1].call
    user = first.prompt_tokens - first.system_tokens - first.history_tokens - first.context_tokens
    assert trace.baseline_tokens == user + last.completion_tokens
    assert trace.baseline_source == "generation"


@settings(max_examples=100)
@given(st.lists(trace_calls(max_calls=4), min_size=1, max_size=12))
def test_group_stats_are_nearest_rank_over_defined_factors(traces: list[list[TraceCall]]) -> None:
    results = [compute(f"t{n}", calls) for n, calls in enumerate(traces)]
    stats = group_stats(results)
    assert stats.traces == len(results)
    assert stats.cost_per_query_nusd == Fraction(sum(r.total_cost_nusd for r in results), len(results))
    factors = sorted(r.amplification_tokens for r in results if r.amplification_tokens is not None)
    if not factors:
        assert stats.amplification_tokens is None
        return
    assert stats.amplification_tokens is not None
    assert stats.amplification_tokens.max == factors[-1]
    # Nearest rank: at least p% of the values are <= it, and fewer than p% are < it.
    for percent, value in ((50, stats.amplification_tokens.p50), (90, stats.amplification_tokens.p90)):
        assert value in factors
        assert 100 * sum(f <= value for f in factors) >= percent * len(factors)
        assert 100 * sum(f < value for f in factors) < percent * len(factors)


def test_parts_are_listed_in_breakdown_order() -> None:
    assert tuple(Breakdown(*range(len(PARTS))).as_dict()) == PARTS
