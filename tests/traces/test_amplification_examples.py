"""Hand-built pipelines whose factor and breakdown are worked out by hand in the comments."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from finops.traces import Breakdown, TraceCall, compute, compute_all
from tests.traces.support import EPOCH_US, chat, embed


def test_bare_call_has_factor_one() -> None:
    trace = compute("t", [chat("a", 0, user=42, out=17)])
    assert trace.amplification_tokens == 1
    assert trace.amplification_cost == 1
    assert trace.tokens == Breakdown(baseline=59)
    assert trace.cost_nusd == Breakdown(baseline=42 * 100 + 17 * 300)
    assert trace.baseline_source == "generation"
    assert trace.retries == 0


def test_rag_retrieval_then_generation_with_context() -> None:
    calls = [
        embed("q-embed", 0, 20),  # no stage on the embeddings endpoint: retrieval
        chat("answer", 1, stage="generation", system=50, context=900, user=20, out=150),
    ]
    trace = compute("rag", calls)
    # Tokens: 20 + (970 + 150) = 1140; baseline = user 20 + output 150 = 170.
    assert trace.total_tokens == 1140
    assert trace.baseline_tokens == 170
    assert trace.amplification_tokens == Fraction(1140, 170)
    assert trace.tokens == Breakdown(baseline=170, context_expansion=950, retrieval=20)
    # Cost: 200 + 97_000 + 45_000; baseline = 20 x 100 + 150 x 300 = 47_000.
    assert trace.cost_nusd == Breakdown(baseline=47_000, context_expansion=95_000, retrieval=200)
    assert trace.total_cost_nusd == 142_200
    assert trace.amplification_cost == Fraction(142_200, 47_000)
    assert [mark.category for mark in trace.marks] == ["retrieval", "generation"]


def test_multi_turn_history_is_context_expansion() -> None:
    trace = compute("chat", [chat("turn-3", 0, system=30, history=400, user=25, out=100)])
    assert trace.tokens == Breakdown(baseline=125, context_expansion=430)
    assert trace.amplification_tokens == Fraction(555, 125)
    # Prompt 455 x 100 = 45_500, output 30_000; baseline 2_500 + 30_000.
    assert trace.cost_nusd == Breakdown(baseline=32_500, context_expansion=43_000)
    assert trace.amplification_cost == Fraction(75_500, 32_500)


def test_agent_loop_with_tool_calls() -> None:
    calls = [
        chat("g1", 0, system=100, user=30, out=40),  # asks for a tool
        chat("t1", 1, stage="tool", user=60, out=20),
        chat("g2", 2, stage="Generation ", system=100, history=70, context=20, user=30, out=50),
        chat("t2", 3, stage="AGENT", user=80, out=10),
        # The final answer comes from a larger model: baseline output is priced at its rate.
        chat("g3", 4, system=100, history=150, context=30, user=30, out=120, in_nusd=200, out_nusd=600),
    ]
    trace = compute("agent", calls)
    # Baseline: g1's user 30 + g3's output 120. Tool steps: t1 80, t2 90, g1's output 40,
    # g2's user 30 and output 50, g3's re-sent user 30. Context: 100 + 190 + 280.
    assert trace.tokens == Breakdown(baseline=150, context_expansion=570, tool_steps=320)
    assert trace.total_tokens == 1040
    assert trace.amplification_tokens == Fraction(1040, 150)
    # Cost: baseline 30 x 100 + 120 x 600 = 75_000; context 10_000 + 19_000 + 280 x 200;
    # tool steps 12_000 + 11_000 + 12_000 + 3_000 + 15_000 + 30 x 200.
    assert trace.cost_nusd == Breakdown(baseline=75_000, context_expansion=85_000, tool_steps=59_000)
    assert trace.amplification_cost == Fraction(219_000, 75_000)
    assert [mark.category for mark in trace.marks] == [
        "generation",
        "tool_steps",
        "generation",
        "tool_steps",
        "generation",
    ]


def test_safety_pass_before_and_after() -> None:
    calls = [
        chat("check-in", 0, stage="safety", user=40, out=5, in_nusd=50, out_nusd=50),
        chat("answer", 1, system=20, user=40, out=200),
        chat("check-out", 2, stage="SAFETY", user=230, out=5, in_nusd=50, out_nusd=50),
    ]
    trace = compute("guarded", calls)
    assert trace.tokens == Breakdown(baseline=240, context_expansion=20, safety=280)
    assert trace.amplification_tokens == Fraction(9, 4)
    # Safety 2_250 + 11_750; answer prompt 6_000 (user 4_000) and output 60_000.
    assert trace.cost_nusd == Breakdown(baseline=64_000, context_expansion=2_000, safety=14_000)
    assert trace.amplification_cost == Fraction(5, 4)


def test_injected_retry_failed_then_repeated_then_duplicated() -> None:
    calls = [
        chat("g1", 0, system=50, user=20, status=500, body="h1"),
        chat("g2", 1, system=50, user=20, out=100, body="h1", retry_of="g1"),  # delivered the answer
        chat("g3", 2, system=50, user=20, out=100, body="h1"),  # the client timed out and sent it again
    ]
    trace = compute("retried", calls)
    assert [mark.retry_reason for mark in trace.marks] == ["failed", None, "hash"]
    assert trace.retries == 2
    assert trace.tokens == Breakdown(baseline=120, context_expansion=50, retries=240)
    assert trace.amplification_tokens == Fraction(410, 120)
    assert trace.cost_nusd == Breakdown(baseline=32_000, context_expansion=5_000, retries=44_000)
    assert trace.amplification_cost == Fraction(81_000, 32_000)


def test_rag_with_rerank_summarize_and_unknown_stage() -> None:
    calls = [
        embed("e", 0, 12, stage="Embedding"),
        chat("r", 1, stage="rerank", user=500, out=0, in_nusd=20),
        chat("s", 2, stage="summarize", user=300, out=60),
        chat("x", 3, stage="query-rewrite", user=25, out=15),
        chat("g", 4, system=10, context=360, user=25, out=80),
    ]
    trace = compute("pipeline", calls)
    assert trace.tokens == Breakdown(baseline=105, context_expansion=370, retrieval=512, other=360 + 40)
    assert trace.cost_nusd == Breakdown(
        baseline=2_500 + 24_000,
        context_expansion=37_000,
        retrieval=120 + 10_000,
        other=30_000 + 18_000 + 2_500 + 4_500,
    )
    assert [mark.category for mark in trace.marks] == [
        "retrieval",
        "retrieval",
        "other",
        "other",
        "generation",
    ]


def test_client_disconnect_is_a_failed_retry() -> None:
    calls = [
        chat("g1", 0, user=20, out=30, status=499),
        chat("g2", 1, user=20, out=90),
    ]
    trace = compute("t", calls)
    assert [mark.retry_reason for mark in trace.marks] == ["failed", None]
    assert trace.tokens == Breakdown(baseline=110, retries=50)


def test_lone_embeddings_call_is_its_own_baseline() -> None:
    trace = compute("e", [embed("e", 0, 33)])
    assert trace.baseline_source == "first_call"
    assert trace.amplification_tokens == 1
    assert trace.amplification_cost == 1
    assert trace.tokens == Breakdown(baseline=33)


def test_retrieval_only_trace_takes_its_first_call_as_baseline() -> None:
    trace = compute("search", [embed("e", 0, 10), chat("r", 1, stage="rerank", user=90)])
    assert trace.baseline_source == "first_call"
    assert trace.tokens == Breakdown(baseline=10, retrieval=90)
    assert trace.amplification_tokens == 10


def test_all_failed_trace_has_no_factor() -> None:
    trace = compute("down", [chat("a", 0, user=10, status=503), chat("b", 1, user=10, status=503)])
    assert trace.baseline_source == "none"
    assert trace.baseline_tokens == 0
    assert trace.amplification_tokens is None
    assert trace.amplification_cost is None
    assert trace.tokens == Breakdown(retries=20)


def test_unpriced_baseline_has_no_cost_factor() -> None:
    trace = compute("free", [chat("a", 0, user=10, out=5, in_nusd=0, out_nusd=0)])
    assert trace.amplification_tokens == 1
    assert trace.amplification_cost is None


def test_cost_split_without_prompt_and_completion_costs_goes_by_tokens() -> None:
    call = TraceCall(
        request_id="c",
        started_at_us=EPOCH_US,
        ended_at_us=EPOCH_US + 1,
        endpoint="chat.completions",
        stage=None,
        status_code=200,
        prompt_tokens=3,
        completion_tokens=1,
        cost_nusd=10,
        system_tokens=1,
        user_tokens=2,
    )
    # Prompt share 10 x 3/4 = 7.5 -> 8 (a half to the prompt); user share 8 x 2/3 = 5.33 -> 5.
    trace = compute("t", [call])
    assert trace.cost_nusd == Breakdown(baseline=5 + 2, context_expansion=3)
    assert trace.amplification_cost == Fraction(10, 7)


def test_times_and_counts() -> None:
    calls = [chat("b", 2, user=1, out=1), chat("a", 0, user=1, out=1), chat("c", 1, stage="tool", user=1)]
    trace = compute("t", calls)
    assert trace.first_call_at_us == EPOCH_US
    assert trace.last_call_at_us == EPOCH_US + 2_000_000
    assert trace.ended_at_us == EPOCH_US + 2_500_000
    assert trace.calls == 3
    assert [mark.call.request_id for mark in trace.marks] == ["a", "c", "b"]


def test_empty_trace_and_duplicate_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="no calls"):
        compute("t", [])
    with pytest.raises(ValueError, match="twice"):
        compute("t", [chat("a", 0, user=1), chat("a", 1, user=1)])


def test_marks_say_where_each_piece_went() -> None:
    calls = [chat("g1", 0, system=5, user=10, out=20), chat("g2", 1, history=30, user=10, out=40)]
    first, last = compute("t", calls).marks
    assert (first.expansion_to, first.user_to, first.completion_to) == (
        "context_expansion",
        "baseline",
        "tool_steps",
    )
    assert (last.expansion_to, last.user_to, last.completion_to) == (
        "context_expansion",
        "tool_steps",
        "baseline",
    )
    assert first.tokens == Breakdown(baseline=10, context_expansion=5, tool_steps=20)
    assert last.cost_nusd == Breakdown(baseline=12_000, context_expansion=3_000, tool_steps=1_000)


def test_compute_all_groups_by_trace_id_or_request_id() -> None:
    calls = [
        replace(chat("a", 0, user=1, out=1), trace_id="T"),
        replace(chat("b", 1, stage="tool", user=2), trace_id="T"),
        chat("lone", 2, user=3, out=3),
    ]
    results = {trace.trace_id: trace for trace in compute_all(calls)}
    assert set(results) == {"T", "lone"}
    assert results["T"].calls == 2
    assert results["T"].tokens == Breakdown(baseline=2, tool_steps=2)
    assert results["lone"].amplification_tokens == 1


def test_generation_that_never_delivered_has_no_factor() -> None:
    calls = [embed("e", 0, 10), chat("g", 1, context=100, user=10, status=500)]
    trace = compute("t", calls)
    assert trace.baseline_source == "none"
    assert trace.amplification_tokens is None
    assert trace.tokens == Breakdown(retrieval=10, retries=110)
