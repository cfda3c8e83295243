"""The pipeline builders are pure: driven here by a function that answers each call, no server."""

from __future__ import annotations

import itertools
import random
from typing import Any

import orjson
import pytest

from finops.loadgen import text
from finops.loadgen.config import LoadConfig, plan_query
from finops.loadgen.pipelines import (
    PIPELINES,
    RETRY_OF_HEADER,
    SIM_ERROR_HEADER,
    CallSpec,
    Context,
    QueryPlan,
    Reply,
    build_pipeline,
    call_headers,
    drive,
    with_faults,
)

MODELS = ["llama-8b", "qwen-1b"]


class Answers:
    """Answers every call: 503 for an injected failure, else 200 with text derived from the body."""

    def __init__(self, fail_stage: str | None = None) -> None:
        self.ids = itertools.count()
        self.fail_stage = fail_stage

    def __call__(self, spec: CallSpec) -> Reply:
        request_id = f"req-{next(self.ids)}"
        if spec.injected_failure or spec.stage == self.fail_stage:
            return Reply(503, request_id, "")
        if spec.endpoint == "embeddings":
            return Reply(200, request_id, "")
        return Reply(200, request_id, f"answer {len(spec.content)} words")


def plan(pipeline: str, index: int = 0, **rates: float) -> QueryPlan:
    return QueryPlan(index, f"trace-{index}", "search", "qa", "llama-8b", pipeline, f"7/{index}", **rates)


def run(pipeline: str, index: int = 0, **rates: float) -> list[tuple[CallSpec, Reply]]:
    return drive(build_pipeline(plan(pipeline, index, **rates)), Answers())


def messages(spec: CallSpec) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = spec.body["messages"]
    return sent


@pytest.mark.parametrize("index", range(5))
def test_chat_is_one_generation_call(index):
    made = run("chat", index)
    assert [spec.stage for spec, _ in made] == ["generation"]
    roles = [m["role"] for m in messages(made[0][0])]
    assert roles == ["system", "user"]
    assert 20 <= len(messages(made[0][0])[0]["content"].split()) <= 80


@pytest.mark.parametrize("index", range(8))
def test_rag_retrieves_then_answers_with_marked_context(index):
    made = run("rag", index)
    stages = [spec.stage for spec, _ in made]
    assert stages in (["retrieval", "generation"], ["retrieval", "rerank", "generation"])
    retrieval = made[0][0]
    assert retrieval.endpoint == "embeddings" and retrieval.path == "/v1/embeddings"
    final = messages(made[-1][0])
    assert [m["role"] for m in final] == ["system", "user", "user"]
    assert final[1]["name"] == "context" and "name" not in final[2]
    # The question embedded is the question asked.
    assert retrieval.body["input"] == final[2]["content"]
    for doc in final[1]["content"].split("\n\n"):
        assert 100 <= len(doc.split("\n", 1)[1].split()) <= 400


def test_rag_sometimes_reranks_and_keeps_fewer_passages():
    reranked = [made for made in (run("rag", i) for i in range(30)) if len(made) == 3]
    assert 0 < len(reranked) < 30
    for made in reranked:
        rerank, generation = made[1][0], made[2][0]
        assert rerank.endpoint == "chat"
        offered = messages(rerank)[1]["content"].count("\n\n[") + 1
        kept = messages(generation)[1]["content"].count("\n\n") + 1
        assert kept < offered or offered == 1


@pytest.mark.parametrize("index", range(5))
def test_multiturn_resends_the_growing_history(index):
    made = run("multiturn", index)
    assert 2 <= len(made) <= 5
    assert {spec.stage for spec, _ in made} == {"generation"}
    for turn, (spec, _) in enumerate(made):
        sent = messages(spec)
        assert len(sent) == 2 + 2 * turn
        assert sent[-1]["role"] == "user"
        if turn:
            previous_spec, previous_reply = made[turn - 1]
            # Everything sent before, then the answer it got, then the new question.
            assert sent[: len(messages(previous_spec))] == messages(previous_spec)
            assert sent[-2] == {"role": "assistant", "content": previous_reply.text}


@pytest.mark.parametrize("index", range(8))
def test_agent_feeds_summarised_tool_results_back(index):
    made = run("agent", index)
    stages = [spec.stage for spec, _ in made]
    assert stages[0] == "generation" and stages[-1] == "generation" and "tool" in stages
    final = messages(made[-1][0])
    assistant_calls = [m for m in final if m["role"] == "assistant"]
    tool_messages = [m for m in final if m["role"] == "tool"]
    call_ids = [call["id"] for m in assistant_calls for call in m["tool_calls"]]
    assert [m["tool_call_id"] for m in tool_messages] == call_ids
    # Each tool message holds the summary a "tool" stage call answered.
    summaries = [reply.text for spec, reply in made if spec.stage == "tool"]
    assert [m["content"] for m in tool_messages] == summaries
    assert stages.count("generation") == len(assistant_calls) + 1
    for spec, _ in made:
        if spec.stage == "generation":
            assert spec.body["tools"] and spec.body["tool_choice"] == "auto"
    for m in assistant_calls:
        for call in m["tool_calls"]:
            assert isinstance(orjson.loads(call["function"]["arguments"]), dict)


@pytest.mark.parametrize("index", range(3))
def test_safety_checks_input_and_output(index):
    made = run("safety", index)
    assert [spec.stage for spec, _ in made] == ["safety", "generation", "safety"]
    question = messages(made[1][0])[-1]["content"]
    assert messages(made[0][0])[-1]["content"] == question
    assert messages(made[2][0])[-1]["content"] == made[1][1].text
    assert made[0][0].body["max_tokens"] <= 4


def test_some_generation_calls_stream_and_others_do_not():
    streamed = [
        spec.stream
        for name in PIPELINES
        for i in range(10)
        for spec, _ in run(name, i)
        if spec.stage == "generation"
    ]
    assert any(streamed) and not all(streamed)
    assert all(not spec.stream for i in range(10) for spec, _ in run("agent", i)[:-1])


def test_headers_carry_the_querys_trace_tags_and_the_calls_stage():
    query = plan("agent", 3)
    made = drive(build_pipeline(query), Answers())
    for spec, _ in made:
        headers = call_headers(query, spec, api_key="fo-secret")
        assert headers["X-FinOps-Trace-Id"] == "trace-3"
        assert headers["X-FinOps-Team"] == "search" and headers["X-FinOps-Feature"] == "qa"
        assert headers["X-FinOps-Stage"] == spec.stage
        assert headers["Authorization"] == "Bearer fo-secret"
    assert "Authorization" not in call_headers(query, made[0][0])


def test_planned_queries_share_a_trace_id_within_a_query_only():
    config = LoadConfig(run_id="run1")
    plans = [plan_query(config, MODELS, i) for i in range(20)]
    assert len({p.trace_id for p in plans}) == 20
    assert all(p.trace_id.startswith("run1-") for p in plans)


def test_retries_repeat_the_body_by_hash_or_by_header():
    made = [
        pair
        for name in PIPELINES
        for i in range(20)
        for pair in run(name, i, retry_rate=0.5, failure_rate=0.0)
    ]
    kinds = {spec.retry for spec, _ in made}
    assert {"hash", "header"} <= kinds
    for (first, first_reply), (again, _) in itertools.pairwise(made):
        if again.retry is None:
            continue
        assert again.content == first.content, "a retry sends the same bytes"
        assert again.stage == first.stage
        if again.retry == "hash":
            assert again.header(RETRY_OF_HEADER) is None
        else:
            assert again.header(RETRY_OF_HEADER) == first_reply.request_id


def test_injected_failures_fail_then_retry_by_header():
    made = [pair for i in range(10) for pair in run("chat", i, failure_rate=1.0)]
    assert len(made) == 20
    for (failing, failed), (again, reply) in zip(made[::2], made[1::2], strict=True):
        assert failing.injected_failure and failing.header(SIM_ERROR_HEADER) == "503"
        assert failed.status == 503
        assert again.retry == "failure" and not again.injected_failure
        assert again.header(RETRY_OF_HEADER) == failed.request_id
        assert again.header(SIM_ERROR_HEADER) is None
        assert again.content == failing.content and reply.ok


def test_the_inner_pipeline_sees_the_retry_answer_once():
    # Multi-turn history holds each answer once, however often the call was repeated.
    made = run("multiturn", 4, retry_rate=1.0, failure_rate=0.0)
    generations = [spec for spec, _ in made if spec.retry is None]
    final = messages(generations[-1])
    assert sum(m["role"] == "assistant" for m in final) == len(generations) - 1


def test_a_failed_call_ends_the_query():
    made = drive(build_pipeline(plan("rag", 0)), Answers(fail_stage="retrieval"))
    assert [spec.stage for spec, _ in made] == ["retrieval"]


def test_faults_do_not_change_the_messages():
    # Faults draw from their own generator, and the pipeline is sent the same answers: with retries
    # and failures injected, the first attempts carry exactly the bodies of a run without faults.
    for name in PIPELINES:
        for index in range(5):
            plain = [spec.content for spec, _ in run(name, index)]
            faulty = run(name, index, retry_rate=0.5, failure_rate=0.3)
            assert [spec.content for spec, _ in faulty if spec.retry is None] == plain
            assert any(spec.retry for spec, _ in faulty) or len(plain) == 1


def test_same_seed_same_calls_other_seed_other_calls():
    def bodies(seed: str) -> list[bytes]:
        query = QueryPlan(0, "t", "a", "b", "llama-8b", "agent", seed, 0.5, 0.2, 0.1)
        return [
            spec.content + repr(spec.headers).encode() for spec, _ in drive(build_pipeline(query), Answers())
        ]

    assert bodies("1/0") == bodies("1/0")
    assert bodies("1/0") != bodies("2/0")


def test_plans_are_deterministic_and_follow_the_mix():
    config = LoadConfig(seed=3, run_id="r")
    first = [plan_query(config, MODELS, i) for i in range(200)]
    assert first == [plan_query(config, MODELS, i) for i in range(200)]
    assert first != [plan_query(LoadConfig(seed=4, run_id="r"), MODELS, i) for i in range(200)]
    counts = {name: sum(p.pipeline == name for p in first) for name in PIPELINES}
    assert counts["chat"] > counts["agent"] > 0 and all(counts.values())
    # One model per team/feature, whatever the seed.
    by_feature = {(p.team, p.feature): p.model for p in first}
    assert all(p.model == by_feature[(p.team, p.feature)] for p in first)


def test_with_faults_passes_an_empty_pipeline_through():
    def empty(ctx: Context):
        return
        yield

    assert (
        drive(with_faults(empty(Context(random.Random(0), "m")), random.Random(0), 1.0, 1.0), Answers()) == []
    )


def test_text_lengths_vary_within_their_ranges():
    rng = random.Random(0)
    prompts = [len(text.system_prompt(rng).split()) for _ in range(200)]
    assert min(prompts) >= 20 and max(prompts) <= 80 and len(set(prompts)) > 20
    docs = [len(text.document(rng).split("\n", 1)[1].split()) for _ in range(100)]
    assert min(docs) >= 100 and max(docs) <= 400 and len(set(docs)) > 20
    questions = [len(text.question(rng).split()) for _ in range(200)]
    assert min(questions) >= 4 and max(questions) <= 40
