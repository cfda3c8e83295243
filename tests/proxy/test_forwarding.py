"""What the proxy sends upstream and relays back, checked against a recording backend."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.support.recording_backend import RecordingBackend
from tests.support.stack import ProxyStack, backend

# Key order, spacing and a unicode escape that a re-serialising proxy would change.
ODD_BODY = (
    b'{ "usage" : {"completion_tokens": 2, "prompt_tokens": 5, "total_tokens": 7},\n'
    b'  "model": "llama-8b", "id": "x", "choices": [{"index": 0, "finish_reason": "stop",\n'
    b'  "message": {"role": "assistant", "content": "caf\\u00e9 ok"}}], "object": "chat.completion"}'
)


@pytest.fixture
def recorder():
    server = RecordingBackend(body=ODD_BODY)
    yield server
    server.close()


@pytest.fixture
def stack(tmp_path, recorder, pg_url):
    proxy = ProxyStack(tmp_path, pg_url, [backend("rec", recorder.url, ["llama-8b"])]).start()
    yield proxy
    proxy.close()


def test_non_streamed_body_is_relayed_byte_for_byte(stack, recorder):
    response = httpx.post(
        stack.base_url + "/chat/completions",
        json={"model": "llama-8b", "messages": [{"role": "user", "content": "hi"}]},
        headers={"X-FinOps-Team": "a", "X-FinOps-Feature": "b"},
    )
    assert response.status_code == 200
    assert response.content == ODD_BODY
    assert response.headers["x-backend-header"] == "kept"
    row = stack.row(response.headers["x-finops-request-id"])
    assert (row["prompt_tokens"], row["completion_tokens"]) == (5, 2)


def test_forwarded_request_drops_tags_and_asks_for_stream_usage(stack, recorder):
    recorder.content_type = "text/event-stream"
    recorder.body = b"data: [DONE]\n\n"
    body = {
        "model": "llama-8b",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "metadata": {"team": "a", "feature": "b"},
    }
    response = httpx.post(
        stack.base_url + "/chat/completions",
        json=body,
        headers={"X-FinOps-Stage": "gen", "X-Custom": "passes", "Authorization": "Bearer EMPTY"},
    )
    assert response.status_code == 200
    sent = recorder.requests[-1]
    assert sent.path == "/v1/chat/completions"
    forwarded = orjson.loads(sent.body)
    assert "metadata" not in forwarded
    assert forwarded["stream_options"] == {"include_usage": True}
    assert not any(name.startswith("x-finops-") for name in sent.headers)
    assert sent.headers["x-custom"] == "passes"
    # A key that is not a finops key (vLLM's own, or a placeholder) is passed through untouched.
    assert sent.headers["authorization"] == "Bearer EMPTY"


def test_backend_api_key_replaces_the_clients(tmp_path, recorder, pg_url):
    proxy = ProxyStack(
        tmp_path, pg_url, [backend("rec", recorder.url, ["llama-8b"], api_key="vllm-secret")]
    ).start()
    try:
        httpx.post(
            proxy.base_url + "/chat/completions",
            json={"model": "llama-8b", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer client-thing"},
        )
        assert recorder.requests[-1].headers["authorization"] == "Bearer vllm-secret"
    finally:
        proxy.close()


def test_usage_less_backend_is_estimated(stack, recorder):
    recorder.body = orjson.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "model": "llama-8b",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "hello there"},
                }
            ],
        }
    )
    messages = [{"role": "user", "content": "say hello"}]
    response = httpx.post(
        stack.base_url + "/chat/completions", json={"model": "llama-8b", "messages": messages}
    )
    from finops.tokens.counting import count_chat_prompt, count_text

    row = stack.row(response.headers["x-finops-request-id"])
    assert row["tokens_estimated"] is True
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        count_chat_prompt(messages),
        count_text("hello there"),
    )
    assert row["cost_nusd"] > 0
