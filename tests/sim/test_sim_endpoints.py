"""Text completions, embeddings, models and health on the real stand-in."""

from __future__ import annotations

import base64
import math
import struct

import httpx

from finops.tokens.counting import count_prompt_input, count_text
from tests.sim.harness import SimServer, stream_chunks

PROMPT = "Write one line about the cost of GPUs:"


def test_text_completion_non_streaming(sim: SimServer) -> None:
    completion = sim.client().completions.create(model="llama-8b", prompt=PROMPT, max_tokens=10)

    assert completion.id.startswith("cmpl-")
    assert completion.object == "text_completion"
    assert completion.model == "llama-8b"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_prompt_input(PROMPT)
    assert completion.usage.completion_tokens == 10
    assert count_text(completion.choices[0].text) == 10
    assert completion.choices[0].logprobs is None


def test_text_completion_streaming_with_usage(sim: SimServer) -> None:
    body = {"model": "llama-8b", "prompt": PROMPT, "stream": True, "stream_options": {"include_usage": True}}
    chunks = stream_chunks(sim, "/completions", body)

    assert all(chunk["object"] == "text_completion" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    texts = [chunk["choices"][0]["text"] for chunk in chunks[:-2]]
    assert len(texts) == 16
    assert all(count_text(text) == 1 for text in texts)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in chunk for chunk in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 16 == count_text("".join(texts))
    assert chunks[-1]["usage"]["prompt_tokens"] == count_prompt_input(PROMPT)


def test_text_completion_stream_through_openai_client(sim: SimServer) -> None:
    stream = sim.client().completions.create(model="other-model", prompt=PROMPT, stream=True, max_tokens=4)
    chunks = list(stream)

    assert [chunk.choices[0].finish_reason for chunk in chunks] == [None, None, None, None, "length"]
    assert count_text("".join(chunk.choices[0].text for chunk in chunks)) == 4
    assert all(chunk.usage is None for chunk in chunks)


def test_completion_prompt_of_token_ids_counts_the_ids(sim: SimServer) -> None:
    completion = sim.client().completions.create(model="llama-8b", prompt=[1, 2, 3, 4, 5, 6, 7])
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 7


def test_completion_without_prompt_is_rejected(sim: SimServer) -> None:
    response = httpx.post(sim.api_base + "/completions", json={"model": "llama-8b"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "BadRequestError"


def test_embeddings_through_openai_client_base64_default(sim: SimServer) -> None:
    inputs = ["the first text", "a second, longer text to embed"]
    result = sim.client().embeddings.create(model="llama-8b", input=inputs)

    assert result.model == "llama-8b"
    assert [item.index for item in result.data] == [0, 1]
    for item in result.data:
        assert len(item.embedding) == 8
        assert math.isclose(math.fsum(x * x for x in item.embedding), 1.0, rel_tol=1e-5)
    assert result.usage.prompt_tokens == count_prompt_input(inputs)
    assert result.usage.total_tokens == result.usage.prompt_tokens
    again = sim.client().embeddings.create(model="llama-8b", input=inputs)
    assert again.data[0].embedding == result.data[0].embedding
    assert result.data[0].embedding != result.data[1].embedding


def test_embeddings_raw_float_and_base64_agree(sim: SimServer) -> None:
    body = {"model": "llama-8b", "input": "hello", "dimensions": 4}
    as_floats = httpx.post(sim.api_base + "/embeddings", json={**body, "encoding_format": "float"}).json()
    as_base64 = httpx.post(sim.api_base + "/embeddings", json={**body, "encoding_format": "base64"}).json()

    assert as_floats["id"].startswith("embd-")
    assert as_floats["object"] == "list"
    assert as_floats["data"][0]["object"] == "embedding"
    vector = as_floats["data"][0]["embedding"]
    assert len(vector) == 4
    decoded = struct.unpack("<4f", base64.b64decode(as_base64["data"][0]["embedding"]))
    assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(vector, decoded, strict=True))
    assert as_floats["usage"] == {
        "prompt_tokens": 1,
        "total_tokens": 1,
        "completion_tokens": 0,
        "prompt_tokens_details": None,
    }


def test_models_lists_served_models_as_vllm(sim: SimServer) -> None:
    models = list(sim.client().models.list())
    assert [model.id for model in models] == ["llama-8b", "other-model"]
    assert all(model.owned_by == "vllm" for model in models)

    raw = httpx.get(sim.api_base + "/models").json()
    assert raw["object"] == "list"
    assert raw["data"][0]["max_model_len"] == 8192
    assert raw["data"][0]["root"] == "llama-8b"


def test_health_is_200_with_empty_body(sim: SimServer) -> None:
    response = httpx.get(sim.base_url + "/health")
    assert response.status_code == 200
    assert response.content == b""


def test_unknown_path_and_wrong_method(sim: SimServer) -> None:
    assert httpx.get(sim.api_base + "/nowhere").status_code == 404
    response = httpx.get(sim.api_base + "/chat/completions")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
