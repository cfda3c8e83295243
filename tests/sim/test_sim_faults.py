"""Fault and latency knobs, per request (``X-Sim-*`` headers) and per server (CLI rates)."""

from __future__ import annotations

import json
import time

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from finops.tokens.counting import count_text
from tests.sim.harness import (
    SimLauncher,
    SimServer,
    dechunk,
    raw_exchange,
    split_response,
    sse_datas,
    stream_chunks,
)

CHAT_PATH = "/v1/chat/completions"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "How much did feature search cost?"},
]
STREAM_BODY = orjson.dumps({"model": "llama-8b", "messages": MESSAGES, "stream": True})
PLAIN_BODY = orjson.dumps({"model": "llama-8b", "messages": MESSAGES})


def _events(chunks: list[bytes]) -> list[bytes]:
    return [event for event in b"".join(chunks).split(b"\n\n") if event]


def test_drop_after_n_closes_the_stream_mid_body(sim: SimServer) -> None:
    raw = raw_exchange(sim, CHAT_PATH, STREAM_BODY, {"X-Sim-Drop-After": "3"})

    status, headers, body = split_response(raw)
    assert status == 200
    assert headers["transfer-encoding"] == "chunked"
    chunks, complete = dechunk(body)
    assert not complete, "a dropped stream must not end with the terminating chunk"
    events = _events(chunks)
    # The role chunk, then exactly three content chunks, then nothing.
    assert len(events) == 4
    deltas = [json.loads(event.removeprefix(b"data: "))["choices"][0]["delta"] for event in events]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert all(count_text(delta["content"]) == 1 for delta in deltas[1:])
    assert b"[DONE]" not in body


def test_dropped_stream_is_a_protocol_error_for_http_clients(sim: SimServer) -> None:
    received: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST", sim.api_base + "/chat/completions", content=STREAM_BODY, headers={"X-Sim-Drop-After": "5"}
        ) as response,
    ):
        received.extend(line for line in response.iter_lines() if line)
    assert len(received) == 6


def test_drop_after_zero_closes_before_any_response_byte(sim: SimServer) -> None:
    assert raw_exchange(sim, CHAT_PATH, PLAIN_BODY, {"X-Sim-Drop-After": "0"}) == b""
    with pytest.raises(openai.APIConnectionError):
        sim.client(default_headers={"X-Sim-Drop-After": "0"}).chat.completions.create(
            model="llama-8b",
            messages=MESSAGES,
        )


def test_drop_after_bytes_truncates_a_non_streaming_body(sim: SimServer) -> None:
    status, headers, body = split_response(
        raw_exchange(sim, CHAT_PATH, PLAIN_BODY, {"X-Sim-Drop-After": "25"})
    )

    assert status == 200
    assert int(headers["content-length"]) > 25
    assert len(body) == 25


def test_drops_leave_the_server_log_clean(sim: SimServer) -> None:
    raw_exchange(sim, CHAT_PATH, STREAM_BODY, {"X-Sim-Drop-After": "1"})
    raw_exchange(sim, CHAT_PATH, PLAIN_BODY, {"X-Sim-Drop-After": "0"})
    raw_exchange(sim, CHAT_PATH, PLAIN_BODY, {"X-Sim-Drop-After": "10"})
    assert httpx.get(sim.base_url + "/health").status_code == 200
    assert sim.log() == ""


def test_malformed_header_puts_one_bad_event_mid_stream(sim: SimServer) -> None:
    response = httpx.post(
        sim.api_base + "/chat/completions",
        content=STREAM_BODY,
        headers={"X-Sim-Malformed": "4", "X-Sim-Output-Tokens": "8"},
    )
    datas = sse_datas(response)

    assert datas[-1] == "[DONE]"
    bad = [index for index, data in enumerate(datas) if data.startswith("{not json")]
    assert bad == [5]  # after the role chunk and four content chunks
    chunks = [json.loads(data) for index, data in enumerate(datas[:-1]) if index not in bad]
    content = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert count_text(content) == 8


def test_malformed_header_on_a_plain_request_returns_a_body_that_is_not_json(sim: SimServer) -> None:
    response = httpx.post(
        sim.api_base + "/chat/completions", content=PLAIN_BODY, headers={"X-Sim-Malformed": "0"}
    )
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_no_usage_header_removes_usage_everywhere(sim: SimServer) -> None:
    client = sim.client(default_headers={"X-Sim-No-Usage": "1"})
    completion = client.chat.completions.create(model="llama-8b", messages=MESSAGES)
    assert completion.usage is None

    raw = httpx.post(
        sim.api_base + "/completions", json={"prompt": "x"}, headers={"X-Sim-No-Usage": "1"}
    ).json()
    assert "usage" not in raw

    body = {
        "model": "llama-8b",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = stream_chunks(sim, "/chat/completions", body, {"X-Sim-No-Usage": "1"})
    assert all("usage" not in chunk and chunk["choices"] for chunk in chunks)


def test_backend_without_usage(start_sim: SimLauncher) -> None:
    server = start_sim("--no-usage")
    client = server.client()
    assert client.chat.completions.create(model="llama-8b", messages=MESSAGES).usage is None
    assert client.completions.create(model="llama-8b", prompt="x").usage is None
    embeddings = httpx.post(server.api_base + "/embeddings", json={"input": "x"}).json()
    assert "usage" not in embeddings

    body = {
        "model": "llama-8b",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = stream_chunks(server, "/chat/completions", body)
    assert all("usage" not in chunk for chunk in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(503, openai.InternalServerError), (429, openai.RateLimitError), (500, openai.InternalServerError)],
)
def test_error_status_header_answers_that_status(
    sim: SimServer, status: int, error_class: type[openai.APIStatusError]
) -> None:
    client = sim.client(default_headers={"X-Sim-Error-Status": str(status)})
    with pytest.raises(error_class) as caught:
        client.chat.completions.create(model="llama-8b", messages=MESSAGES)
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == status
    assert set(body) == {"message", "type", "param", "code"}

    stream_response = httpx.post(
        sim.api_base + "/chat/completions", content=STREAM_BODY, headers={"X-Sim-Error-Status": str(status)}
    )
    assert stream_response.status_code == status
    assert stream_response.json()["error"]["code"] == status


def test_error_rate_one_fails_every_generation(start_sim: SimLauncher) -> None:
    server = start_sim("--error-rate", "1", "--error-status", "502")
    for path, body in (
        ("/chat/completions", {"messages": MESSAGES}),
        ("/completions", {"prompt": "x"}),
        ("/embeddings", {"input": "x"}),
    ):
        response = httpx.post(server.api_base + path, json=body)
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "BadGatewayError"
    assert httpx.get(server.api_base + "/models").status_code == 200


def test_drop_rate_one_drops_every_request(start_sim: SimLauncher) -> None:
    server = start_sim("--drop-rate", "1", "--output-tokens", "10")
    for _ in range(5):
        _, _, body = split_response(raw_exchange(server, CHAT_PATH, STREAM_BODY))
        chunks, complete = dechunk(body)
        assert not complete
        assert len(_events(chunks)) <= 10  # the role chunk and fewer than all ten tokens
    assert raw_exchange(server, CHAT_PATH, PLAIN_BODY) == b""
    assert server.log() == ""


def test_malformed_rate_one_breaks_every_stream_once(start_sim: SimLauncher) -> None:
    server = start_sim("--malformed-rate", "1", "--output-tokens", "6")
    for _ in range(3):
        datas = sse_datas(httpx.post(server.api_base + "/chat/completions", content=STREAM_BODY))
        assert [data for data in datas if data.startswith("{not json")] == ["{not json"]
        assert datas[-1] == "[DONE]"
    # Plain responses are left alone by the rate.
    assert httpx.post(server.api_base + "/chat/completions", content=PLAIN_BODY).json()["usage"]


def _failure_pattern(server: SimServer) -> list[int]:
    with httpx.Client(base_url=server.api_base) as client:
        return [
            client.post(
                "/chat/completions", json={"messages": [{"role": "user", "content": str(i)}]}
            ).status_code
            for i in range(30)
        ]


def test_fault_rates_are_reproducible_for_a_seed(start_sim: SimLauncher) -> None:
    servers = start_sim.many(
        ["--error-rate", "0.5", "--seed", "3"],
        ["--error-rate", "0.5", "--seed", "3"],
        ["--error-rate", "0.5", "--seed", "4"],
    )
    first, again, other = (_failure_pattern(server) for server in servers)

    assert set(first) == {200, 500}
    assert first == again
    assert first != other


def test_seed_changes_the_generated_text(start_sim: SimLauncher) -> None:
    one, two = start_sim.many(["--seed", "1"], ["--seed", "2"])
    text_one = httpx.post(one.api_base + "/chat/completions", content=PLAIN_BODY).json()
    text_two = httpx.post(two.api_base + "/chat/completions", content=PLAIN_BODY).json()
    assert text_one["choices"][0]["message"]["content"] != text_two["choices"][0]["message"]["content"]
    assert text_one["usage"] == text_two["usage"]


def test_latency_headers_pace_a_stream(sim: SimServer) -> None:
    headers = {"X-Sim-TTFT-Ms": "150", "X-Sim-ITL-Ms": "20", "X-Sim-Output-Tokens": "6"}
    started = time.perf_counter()
    arrivals: list[float] = []
    with httpx.stream(
        "POST", sim.api_base + "/chat/completions", content=STREAM_BODY, headers=headers
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and '"content":"' in line and '"content":""' not in line:
                arrivals.append(time.perf_counter() - started)

    assert len(arrivals) == 6
    assert arrivals[0] >= 0.15
    # The five gaps between tokens add up to at least five inter-token latencies.
    assert arrivals[-1] - arrivals[0] >= 5 * 0.02 - 0.005
    assert arrivals[-1] < 0.15 + 5 * 0.02 + 1.0


def test_latency_headers_delay_a_plain_response(sim: SimServer) -> None:
    headers = {"X-Sim-TTFT-Ms": "100", "X-Sim-ITL-Ms": "10", "X-Sim-Output-Tokens": "11"}
    started = time.perf_counter()
    response = httpx.post(sim.api_base + "/chat/completions", content=PLAIN_BODY, headers=headers)
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert 0.1 + 10 * 0.01 <= elapsed < 0.2 + 1.0


def test_server_latency_settings_apply_to_every_request(start_sim: SimLauncher) -> None:
    server = start_sim("--ttft-ms", "120")
    started = time.perf_counter()
    httpx.post(server.api_base + "/completions", json={"prompt": "x"})
    assert time.perf_counter() - started >= 0.12


def test_zero_latency_stream_is_fast_and_one_http_chunk_per_event(sim: SimServer) -> None:
    body = orjson.dumps({"model": "llama-8b", "messages": MESSAGES, "stream": True, "max_tokens": 300})
    headers = {"X-Sim-Output-Tokens": "300"}
    started = time.perf_counter()
    _, _, raw_body = split_response(raw_exchange(sim, CHAT_PATH, body, headers))
    elapsed = time.perf_counter() - started

    chunks, complete = dechunk(raw_body)
    assert complete
    # Role, 300 tokens, finish, [DONE]: each its own HTTP chunk, so a relay sees real streaming.
    assert len(chunks) == 303
    assert all(chunk.startswith(b"data: ") and chunk.endswith(b"\n\n") for chunk in chunks)
    assert elapsed < 1.0
