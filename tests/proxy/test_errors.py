"""Every bad input and every failing backend: OpenAI's error shape, the right status, the right ledger row."""

from __future__ import annotations

import json
import socket
import time

import httpx
import openai
import pytest

from finops.tokens.counting import count_chat_prompt
from tests.support.processes import free_port
from tests.support.stack import ProxyStack, backend, start_sim

TAGS = {"X-FinOps-Team": "search", "X-FinOps-Feature": "errors"}
MESSAGES = [{"role": "user", "content": "Explain idle GPU cost in one line."}]
CHAT = {"model": "llama-8b", "messages": MESSAGES}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sim")
    process, url = start_sim(tmp, ("llama-8b",), "--max-model-len", "64")
    yield url
    process.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, sim):
    from tests.support.databases import fresh_postgres

    tmp = tmp_path_factory.mktemp("stack")
    dead = free_port()  # nothing listens here
    with fresh_postgres() as db_url:
        proxy = ProxyStack(
            tmp,
            db_url,
            [
                backend("gpu-a", sim, ["llama-8b"]),
                backend("gone", f"http://127.0.0.1:{dead}", ["ghost-model"]),
            ],
            tagging={"untagged": "reject"},
            proxy={"max_body_bytes": 4096, "read_timeout_s": 0.5},
        ).start()
        yield proxy
        proxy.close()


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def post(stack, payload=None, *, content=None, headers=None, path="/chat/completions"):
    return httpx.post(
        stack.base_url + path,
        json=payload if content is None else None,
        content=content,
        headers={**TAGS, **(headers or {})},
        timeout=10,
    )


def no_row_for(stack, response):
    request_id = response.headers.get("x-finops-request-id")
    time.sleep(0.3)  # longer than the writer's flush interval
    return request_id is not None and all(r["request_id"] != request_id for r in stack.rows())


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"{not json", None),
        (json.dumps({"model": "llama-8b", "messages": "hello"}).encode(), "messages"),
        (json.dumps({"model": "llama-8b", "messages": MESSAGES, "max_tokens": "ten"}).encode(), "max_tokens"),
        (json.dumps({"model": "llama-8b", "messages": MESSAGES, "stream": "yes"}).encode(), "stream"),
    ],
)
def test_malformed_json_and_wrong_types_are_400(stack, content, param):
    response = post(stack, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["param"] == param
    assert no_row_for(stack, response)


def test_body_over_the_limit_is_413(stack):
    big = {"model": "llama-8b", "messages": [{"role": "user", "content": "x" * 5000}]}
    response = post(stack, big)
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"
    # Without a Content-Length (chunked upload) the limit holds too.
    chunked = httpx.post(
        stack.base_url + "/chat/completions",
        headers=TAGS,
        content=iter([json.dumps(big).encode()[:3000], json.dumps(big).encode()[3000:]]),
    )
    assert chunked.status_code == 413
    assert no_row_for(stack, response)


def test_unknown_model_is_404(stack):
    response = post(stack, {"model": "gpt-17", "messages": MESSAGES})
    assert response.status_code == 404
    error = error_of(response)
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert no_row_for(stack, response)


def test_missing_tag_is_400_naming_it(stack):
    response = httpx.post(
        stack.base_url + "/chat/completions", json=CHAT, headers={"X-FinOps-Team": "search"}
    )
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("missing_tag", "feature")
    assert no_row_for(stack, response)


def test_wrong_method_and_unknown_path(stack):
    assert error_of(httpx.get(stack.base_url + "/chat/completions"))["code"] == "method_not_allowed"
    response = httpx.post(stack.base_url + "/nothing", json={})
    assert response.status_code == 404
    error_of(response)


def test_unreachable_backend_is_502_and_recorded(stack):
    response = post(stack, {"model": "ghost-model", "messages": MESSAGES})
    assert response.status_code == 502
    assert error_of(response)["code"] == "upstream_unreachable"
    row = stack.row(response.headers["x-finops-request-id"])
    assert (row["status_code"], row["error_type"], row["backend"], row["cost_nusd"]) == (
        502,
        "upstream_unreachable",
        "gone",
        0,
    )


def test_backend_timeout_is_504_and_recorded(stack):
    response = post(stack, CHAT, headers={"X-Sim-TTFT-Ms": "2000"})
    assert response.status_code == 504
    assert error_of(response)["code"] == "upstream_timeout"
    row = stack.row(response.headers["x-finops-request-id"])
    assert (row["status_code"], row["error_type"]) == (504, "upstream_timeout")


@pytest.mark.parametrize("status", [429, 500, 503])
def test_backend_error_status_passes_through_with_its_body(stack, status):
    direct = httpx.post(
        stack_sim_url(stack) + "/v1/chat/completions", json=CHAT, headers={"X-Sim-Error-Status": str(status)}
    )
    response = post(stack, CHAT, headers={"X-Sim-Error-Status": str(status)})
    assert response.status_code == status == direct.status_code
    assert response.json() == direct.json()
    row = stack.row(response.headers["x-finops-request-id"])
    assert (row["status_code"], row["error_type"], row["prompt_tokens"], row["cost_nusd"]) == (
        status,
        "upstream_error",
        0,
        0,
    )


def test_context_overflow_from_the_backend_passes_through(stack):
    long = {"model": "llama-8b", "messages": [{"role": "user", "content": "cost " * 200}]}
    response = post(stack, long)
    assert response.status_code == 400
    assert "context length" in response.json()["error"]["message"]
    row = stack.row(response.headers["x-finops-request-id"])
    assert (row["status_code"], row["error_type"]) == (400, "context_overflow")


def test_backend_dropping_a_stream_gives_an_error_event_and_a_row(stack):
    client = openai.OpenAI(base_url=stack.base_url, api_key="EMPTY", default_headers=TAGS, max_retries=0)
    with pytest.raises(openai.APIError):
        response = client.chat.completions.with_raw_response.create(
            model="llama-8b",
            messages=MESSAGES,
            stream=True,
            max_tokens=10,
            extra_headers={"X-Sim-Drop-After": "3"},
        )
        request_id = response.headers["x-finops-request-id"]
        list(response.parse())
    row = stack.row(request_id)
    assert (row["status_code"], row["error_type"], row["tokens_estimated"]) == (
        502,
        "upstream_disconnected",
        True,
    )
    assert row["prompt_tokens"] == count_chat_prompt(MESSAGES)
    assert row["completion_tokens"] == 3


def test_client_disconnect_mid_stream_is_billed_for_what_was_generated(stack):
    port = int(stack.url.rsplit(":", 1)[1])
    body = json.dumps({"model": "llama-8b", "messages": MESSAGES, "stream": True, "max_tokens": 200}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"x-finops-team: search\r\nx-finops-feature: disconnect\r\n"
        b"x-sim-itl-ms: 20\r\nx-sim-output-tokens: 200\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while received.count(b"data: ") < 6:
            more = sock.recv(65536)
            assert more, f"the proxy closed the stream early: {received!r}"
            received += more
    header = received.split(b"\r\n\r\n", 1)[0].decode().lower()
    request_id = header.split("x-finops-request-id: ", 1)[1].split("\r\n", 1)[0]
    row = stack.row(request_id)
    assert row["client_disconnected"] is True
    assert (row["status_code"], row["error_type"], row["tokens_estimated"]) == (
        499,
        "client_disconnected",
        True,
    )
    assert row["prompt_tokens"] == count_chat_prompt(MESSAGES)
    assert 5 <= row["completion_tokens"] < 200
    assert row["cost_nusd"] > 0


def test_malformed_sse_is_relayed_and_the_call_still_recorded(stack):
    response = post(stack, {**CHAT, "stream": True, "max_tokens": 4}, headers={"X-Sim-Malformed": "2"})
    assert response.status_code == 200
    assert b"data: {" in response.content
    row = stack.row(response.headers["x-finops-request-id"])
    assert row["completion_tokens"] == 4 and row["tokens_estimated"] is False


def stack_sim_url(stack) -> str:
    import yaml

    return yaml.safe_load(stack.config_path.read_text())["backends"][0]["url"]


def test_client_leaving_during_prefill_aborts_the_upstream_at_once(stack):
    port = int(stack.url.rsplit(":", 1)[1])
    body = json.dumps({"model": "llama-8b", "messages": MESSAGES, "stream": True}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"x-finops-team: search\r\nx-finops-feature: prefill\r\nx-sim-ttft-ms: 4000\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            more = sock.recv(65536)
            assert more, "the proxy closed before answering"
            head += more
    request_id = head.decode().lower().split("x-finops-request-id: ", 1)[1].split("\r\n", 1)[0]
    # This stack's read timeout is 0.5 s: a 499 rather than a 504 shows the departure was acted on at once,
    # in the middle of the (4 s) prefill, not at the next chunk.
    row = stack.row(request_id, timeout_s=3.0)
    assert (row["status_code"], row["error_type"], row["completion_tokens"]) == (
        499,
        "client_disconnected",
        0,
    )
    assert row["latency_ms"] < 3000
