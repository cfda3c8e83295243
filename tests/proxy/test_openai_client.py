"""The real openai client through the proxy to the stand-in: responses intact, ledger exact."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import pytest

from finops.tokens.counting import count_chat_prompt, count_prompt_input, count_text
from tests.support.databases import fresh_postgres, fresh_sqlite
from tests.support.stack import ProxyStack, backend, start_sim

HEADERS = {"X-FinOps-Team": "search", "X-FinOps-Feature": "autocomplete"}
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What does GPU idle cost?"},
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    sim, sim_url = start_sim(tmp)
    databases = fresh_postgres() if request.param == "postgres" else fresh_sqlite(tmp)
    with databases as db_url:
        proxy = ProxyStack(tmp, db_url, [backend("gpu-a", sim_url)], tagging={"untagged": "reject"}).start()
        yield proxy
        proxy.close()
    sim.stop()


@pytest.fixture
def client(stack):
    return openai.OpenAI(base_url=stack.base_url, api_key="EMPTY", default_headers=HEADERS, max_retries=0)


def nusd(usd_per_mtok: str, tokens: int) -> int:
    return int(Decimal(usd_per_mtok) * 1000 * tokens)


def test_chat_completion_is_recorded_exactly(stack, client):
    raw = client.chat.completions.with_raw_response.create(model="llama-8b", messages=MESSAGES, max_tokens=12)
    completion = raw.parse()
    request_id = raw.headers["x-finops-request-id"]
    assert completion.usage.prompt_tokens == count_chat_prompt(MESSAGES)
    assert completion.usage.completion_tokens == 12
    assert count_text(completion.choices[0].message.content) == 12

    row = stack.row(request_id)
    expected_cost = nusd("0.10", completion.usage.prompt_tokens) + nusd("0.20", 12)
    assert row["prompt_tokens"] == completion.usage.prompt_tokens
    assert row["completion_tokens"] == 12
    assert row["cost_nusd"] == expected_cost
    assert row["prompt_cost_nusd"] + row["completion_cost_nusd"] == expected_cost
    assert Decimal(raw.headers["x-finops-cost-usd"]) * 10**9 == expected_cost
    assert (row["team"], row["feature"], row["model"], row["backend"]) == (
        "search",
        "autocomplete",
        "llama-8b",
        "gpu-a",
    )
    assert (row["endpoint"], row["streamed"], row["status_code"], row["tokens_estimated"]) == (
        "chat.completions",
        False,
        200,
        False,
    )
    assert row["finish_reason"] == "length"
    assert row["trace_id"] == request_id
    assert row["latency_ms"] > 0 and row["ended_at"] >= row["started_at"]
    assert row["ttft_ms"] is None and row["itl_ms"] is None


def test_streamed_chat_relays_chunks_and_hides_the_usage_chunk(stack, client):
    stream = client.chat.completions.with_raw_response.create(
        model="llama-8b",
        messages=MESSAGES,
        stream=True,
        max_tokens=8,
        extra_headers={"X-FinOps-Trace-Id": "trace-stream-1", "X-FinOps-Stage": "generation"},
    )
    request_id = stream.headers["x-finops-request-id"]
    chunks = list(stream.parse())
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks), "the usage-only chunk reached a client that did not ask"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert count_text(text) == 8

    row = stack.row(request_id)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (count_chat_prompt(MESSAGES), 8)
    assert row["streamed"] is True and row["tokens_estimated"] is False
    assert (row["trace_id"], row["stage"]) == ("trace-stream-1", "generation")
    assert row["ttft_ms"] is not None and 0 < row["ttft_ms"] <= row["latency_ms"]
    assert row["itl_ms"] is not None and row["itl_ms"] >= 0
    assert row["finish_reason"] == "length"


def test_streamed_chat_keeps_the_usage_chunk_when_asked(stack, client):
    chunks = list(
        client.chat.completions.create(
            model="llama-8b",
            messages=MESSAGES,
            stream=True,
            max_tokens=5,
            stream_options={"include_usage": True},
        )
    )
    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0].choices == []
    assert usage_chunks[0].usage.completion_tokens == 5


def test_completions_streamed_and_not(stack, client):
    raw = client.completions.with_raw_response.create(
        model="qwen-1b", prompt="Once upon a time", max_tokens=6
    )
    completion = raw.parse()
    assert completion.usage.prompt_tokens == count_prompt_input("Once upon a time")
    row = stack.row(raw.headers["x-finops-request-id"])
    assert (row["endpoint"], row["model"], row["completion_tokens"]) == ("completions", "qwen-1b", 6)
    assert row["cost_nusd"] == int(
        Decimal("0.015") * 1000 * completion.usage.prompt_tokens + Decimal("0.045") * 1000 * 6
    )

    streamed = client.completions.with_raw_response.create(
        model="qwen-1b", prompt="Once upon a time", max_tokens=6, stream=True
    )
    text = "".join(chunk.choices[0].text for chunk in streamed.parse() if chunk.choices)
    assert count_text(text) == 6
    row = stack.row(streamed.headers["x-finops-request-id"])
    assert (row["streamed"], row["completion_tokens"], row["tokens_estimated"]) == (True, 6, False)


def test_embeddings(stack, client):
    raw = client.embeddings.with_raw_response.create(model="llama-8b", input=["first text", "second one"])
    result = raw.parse()
    assert len(result.data) == 2
    row = stack.row(raw.headers["x-finops-request-id"])
    assert row["endpoint"] == "embeddings"
    assert (
        row["prompt_tokens"] == result.usage.prompt_tokens == count_prompt_input(["first text", "second one"])
    )
    assert row["completion_tokens"] == 0


def test_models_lists_the_union_of_backends(client):
    assert sorted(model.id for model in client.models.list()) == ["llama-8b", "qwen-1b"]


def test_metadata_tags_are_used_and_not_forwarded(stack):
    body = {"model": "llama-8b", "messages": MESSAGES, "metadata": {"team": "ads", "feature": "copy"}}
    response = httpx.post(stack.base_url + "/chat/completions", json=body)
    assert response.status_code == 200
    row = stack.row(response.headers["x-finops-request-id"])
    assert (row["team"], row["feature"]) == ("ads", "copy")
    # The stand-in would count the metadata object if it had been forwarded; it counts only the messages.
    assert row["prompt_tokens"] == count_chat_prompt(MESSAGES)


def test_metrics_count_calls_tokens_and_cost(stack, client):
    client.chat.completions.create(
        model="llama-8b", messages=MESSAGES, max_tokens=3, extra_headers={"X-FinOps-Feature": "metrics-check"}
    )
    stack.wait_rows(lambda rows: any(r["feature"] == "metrics-check" for r in rows))

    def scrape():
        return httpx.get(stack.url + "/metrics").text

    import time

    deadline = time.monotonic() + 5
    text = scrape()
    while 'feature="metrics-check"' not in text and time.monotonic() < deadline:
        time.sleep(0.05)
        text = scrape()
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    labels = (("feature", "metrics-check"), ("model", "llama-8b"), ("team", "search"))
    assert (
        samples[
            (
                "finops_requests_total",
                tuple(sorted((*labels, ("endpoint", "chat.completions"), ("status", "200")))),
            )
        ]
        == 1
    )
    assert samples[("finops_tokens_total", tuple(sorted((*labels, ("kind", "completion")))))] == 3
    assert samples[("finops_cost_usd_total", labels)] > 0
    assert ("finops_time_to_first_token_seconds_bucket" in text) and (
        "finops_inter_token_latency_seconds" in text
    )


def test_chat_prompt_parts_are_recorded(stack, client):
    from finops.tokens.parts import count_parts

    messages = [
        {"role": "system", "content": "Answer from the documents."},
        {"role": "user", "content": "Earlier question?"},
        {"role": "assistant", "content": "Earlier answer."},
        {"role": "user", "name": "context", "content": "Doc: idle GPUs cost 2 USD an hour."},
        {"role": "user", "content": "What does idle cost?"},
    ]
    raw = client.chat.completions.with_raw_response.create(model="llama-8b", messages=messages, max_tokens=2)
    row = stack.row(raw.headers["x-finops-request-id"])
    # The stand-in counts with the same rules, so scaling changes nothing: the parts are the counts.
    expected = count_parts(messages)
    assert (
        row["prompt_system_tokens"],
        row["prompt_history_tokens"],
        row["prompt_context_tokens"],
        row["prompt_user_tokens"],
    ) == (expected.system, expected.history, expected.context, expected.user)
    assert expected.total == row["prompt_tokens"]

    bare = client.chat.completions.with_raw_response.create(
        model="llama-8b", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    row = stack.row(bare.headers["x-finops-request-id"])
    assert row["prompt_user_tokens"] == row["prompt_tokens"] and row["prompt_context_tokens"] == 0
