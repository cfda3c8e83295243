"""Chat completions from the real stand-in, through the real OpenAI client and raw HTTP."""

from __future__ import annotations

import json

import httpx
import pytest
from openai.types.chat import ChatCompletionMessageParam

from finops.tokens.counting import count_chat_prompt, count_text
from tests.sim.harness import SimServer, sse_datas, stream_chunks

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are a careful assistant."},
    {"role": "user", "content": "What did the platform team spend on inference last week?"},
]


def test_non_streaming_chat_has_vllm_shape_and_exact_usage(sim: SimServer) -> None:
    completion = sim.client().chat.completions.create(model="llama-8b", messages=MESSAGES)

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "llama-8b"
    assert completion.created > 0
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_chat_prompt(MESSAGES)
    assert completion.usage.completion_tokens == 16
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 16
    assert count_text(choice.message.content or "") == completion.usage.completion_tokens
    assert completion.usage.prompt_tokens_details is None


def test_non_streaming_chat_raw_body_carries_vllm_fields(sim: SimServer) -> None:
    response = httpx.post(
        sim.api_base + "/chat/completions", json={"model": "llama-8b", "messages": MESSAGES}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) >= {"id", "object", "created", "model", "choices", "usage"}
    choice = body["choices"][0]
    assert choice["logprobs"] is None
    assert choice["stop_reason"] is None
    assert choice["message"]["tool_calls"] == []
    assert body["usage"] == {
        "prompt_tokens": count_chat_prompt(MESSAGES),
        "total_tokens": count_chat_prompt(MESSAGES) + 16,
        "completion_tokens": 16,
        "prompt_tokens_details": None,
    }


def test_same_request_gets_same_answer(sim: SimServer) -> None:
    client = sim.client()
    first = client.chat.completions.create(model="llama-8b", messages=MESSAGES)
    second = client.chat.completions.create(model="llama-8b", messages=MESSAGES)
    other = client.chat.completions.create(
        model="llama-8b",
        messages=[{"role": "user", "content": "Something else entirely"}],
    )

    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.id != second.id
    assert other.choices[0].message.content != first.choices[0].message.content


def test_request_without_model_is_served_by_the_first_model(sim: SimServer) -> None:
    response = httpx.post(sim.api_base + "/chat/completions", json={"messages": MESSAGES})

    assert response.status_code == 200
    assert response.json()["model"] == "llama-8b"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_below_output_length_stops_with_length(sim: SimServer, field: str) -> None:
    client = sim.client()
    if field == "max_tokens":
        completion = client.chat.completions.create(model="llama-8b", messages=MESSAGES, max_tokens=5)
    else:
        completion = client.chat.completions.create(
            model="llama-8b", messages=MESSAGES, max_completion_tokens=5
        )

    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5
    assert count_text(completion.choices[0].message.content or "") == 5


def test_max_tokens_above_output_length_stops_naturally(sim: SimServer) -> None:
    completion = sim.client().chat.completions.create(model="llama-8b", messages=MESSAGES, max_tokens=100)

    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 16


@pytest.mark.parametrize("output_tokens", [1, 2, 3, 5, 8, 13, 21, 55, 144, 377])
def test_completion_tokens_equal_the_tokens_of_the_text(sim: SimServer, output_tokens: int) -> None:
    client = sim.client(default_headers={"X-Sim-Output-Tokens": str(output_tokens)})
    completion = client.chat.completions.create(model="other-model", messages=MESSAGES)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == output_tokens
    assert count_text(completion.choices[0].message.content or "") == output_tokens

    stream = client.chat.completions.create(
        model="other-model",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    contents = [chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == output_tokens
    assert count_text("".join(contents)) == output_tokens


def test_streaming_chat_chunks_follow_vllm_order(sim: SimServer) -> None:
    stream = sim.client().chat.completions.create(model="llama-8b", messages=MESSAGES, stream=True)
    chunks = list(stream)

    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].id.startswith("chatcmpl-")
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    first = chunks[0].choices[0]
    assert (first.delta.role, first.delta.content, first.finish_reason) == ("assistant", "", None)
    tokens = chunks[1:-1]
    assert len(tokens) == 16
    for chunk in tokens:
        assert chunk.choices[0].finish_reason is None
        assert count_text(chunk.choices[0].delta.content or "") == 1
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices[0].delta.content == ""
    assert all(chunk.usage is None for chunk in chunks)


def test_stream_without_include_usage_has_no_usage_key_anywhere(sim: SimServer) -> None:
    chunks = stream_chunks(
        sim, "/chat/completions", {"model": "llama-8b", "messages": MESSAGES, "stream": True}
    )

    assert len(chunks) == 1 + 16 + 1
    assert all("usage" not in chunk for chunk in chunks)
    assert all(len(chunk["choices"]) == 1 for chunk in chunks)


def test_stream_with_include_usage_ends_with_a_usage_only_chunk(sim: SimServer) -> None:
    body = {
        "model": "llama-8b",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = httpx.post(sim.api_base + "/chat/completions", json=body)
    datas = sse_datas(response)

    assert datas[-1] == "[DONE]"
    chunks = [json.loads(data) for data in datas[:-1]]
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["object"] == "chat.completion.chunk"
    prompt_tokens = count_chat_prompt(MESSAGES)
    assert usage_chunk["usage"] == {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + 16,
        "completion_tokens": 16,
    }
    assert all("usage" not in chunk for chunk in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_stream_options_without_include_usage_flag_default_to_usage_as_vllm(sim: SimServer) -> None:
    body = {"model": "llama-8b", "messages": MESSAGES, "stream": True, "stream_options": {}}
    chunks = stream_chunks(sim, "/chat/completions", body)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 16


def test_include_usage_false_sends_no_usage(sim: SimServer) -> None:
    body = {
        "model": "llama-8b",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": False},
    }
    chunks = stream_chunks(sim, "/chat/completions", body)
    assert all("usage" not in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_continuous_usage_stats_put_running_usage_on_every_chunk(sim: SimServer) -> None:
    body = {
        "model": "llama-8b",
        "messages": MESSAGES,
        "stream": True,
        "max_tokens": 4,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
    }
    chunks = stream_chunks(sim, "/chat/completions", body)
    completion_tokens = [chunk["usage"]["completion_tokens"] for chunk in chunks]
    # role chunk, 4 tokens, the finish chunk, the final usage chunk
    assert completion_tokens == [0, 1, 2, 3, 4, 4, 4]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"


def test_stream_options_without_stream_is_rejected(sim: SimServer) -> None:
    body = {"model": "llama-8b", "messages": MESSAGES, "stream_options": {"include_usage": True}}
    response = httpx.post(sim.api_base + "/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "BadRequestError"


def test_stream_max_tokens_ends_with_length(sim: SimServer) -> None:
    stream = sim.client().chat.completions.create(
        model="llama-8b",
        messages=MESSAGES,
        stream=True,
        max_tokens=3,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["length"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_cached_tokens_header_reports_prompt_tokens_details(sim: SimServer) -> None:
    client = sim.client(default_headers={"X-Sim-Cached-Tokens": "6"})
    completion = client.chat.completions.create(model="llama-8b", messages=MESSAGES)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 6

    stream = client.chat.completions.create(
        model="llama-8b",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    last = list(stream)[-1]
    assert last.usage is not None
    assert last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 6
