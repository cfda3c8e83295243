"""Errors the stand-in answers the way vLLM does: unknown model, bad JSON, too-long prompts."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from finops.tokens.counting import count_chat_prompt, count_prompt_input
from tests.sim.harness import SimLauncher, SimServer

LONG_MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "cost " * 9000}]


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == response.status_code
    return error  # type: ignore[no-any-return]


def test_unknown_model_is_404_not_found(sim: SimServer) -> None:
    response = httpx.post(
        sim.api_base + "/chat/completions",
        json={"model": "gpt-17", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 404
    error = _error(response)
    assert error["type"] == "NotFoundError"
    assert error["message"] == "The model `gpt-17` does not exist."

    with pytest.raises(openai.NotFoundError) as caught:
        sim.client().completions.create(model="gpt-17", prompt="hi")
    assert caught.value.status_code == 404


def test_malformed_json_body_is_400(sim: SimServer) -> None:
    response = httpx.post(
        sim.api_base + "/chat/completions",
        content=b'{"model": "llama-8b", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "BadRequestError"
    assert "JSON" in str(error["message"])


def test_body_that_is_not_an_object_is_400(sim: SimServer) -> None:
    response = httpx.post(sim.api_base + "/embeddings", json=["not", "an", "object"])
    assert response.status_code == 400
    assert _error(response)["type"] == "BadRequestError"


def test_prompt_longer_than_context_gets_vllms_context_length_error(sim: SimServer) -> None:
    prompt_tokens = count_chat_prompt(LONG_MESSAGES)
    with pytest.raises(openai.BadRequestError) as caught:
        sim.client().chat.completions.create(model="llama-8b", messages=LONG_MESSAGES)

    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "BadRequestError"
    assert body["message"] == (
        f"This model's maximum context length is 8192 tokens. However, your request has {prompt_tokens} "
        "input tokens. Please reduce the length of the input messages."
    )


def test_max_tokens_beyond_the_context_window_stops_at_the_window(start_sim: SimLauncher) -> None:
    server = start_sim("--max-model-len", "30", "--output-tokens", "100")
    prompt = "hello there"
    completion = server.client().completions.create(model="llama-8b", prompt=prompt, max_tokens=200)

    assert completion.usage is not None
    assert completion.usage.completion_tokens == 30 - count_prompt_input(prompt)
    assert completion.choices[0].finish_reason == "length"


def test_prompt_that_leaves_room_is_cut_at_the_context_window(start_sim: SimLauncher) -> None:
    server = start_sim("--max-model-len", "40", "--output-tokens", "100")
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "what does this cost"}]
    prompt_tokens = count_chat_prompt(messages)
    completion = server.client().chat.completions.create(model="llama-8b", messages=messages)

    assert completion.usage is not None
    assert completion.usage.completion_tokens == 40 - prompt_tokens
    assert completion.choices[0].finish_reason == "length"


def test_embedding_input_longer_than_context_is_400(sim: SimServer) -> None:
    response = httpx.post(sim.api_base + "/embeddings", json={"model": "llama-8b", "input": "cost " * 9000})
    assert response.status_code == 400
    assert "in the input for embedding generation" in str(_error(response)["message"])


def test_bad_sim_header_is_400_naming_the_header(sim: SimServer) -> None:
    response = httpx.post(
        sim.api_base + "/chat/completions",
        json={"model": "llama-8b", "messages": []},
        headers={"X-Sim-TTFT-Ms": "soon"},
    )
    assert response.status_code == 400
    assert "X-Sim-ttft-ms" in str(_error(response)["message"])
