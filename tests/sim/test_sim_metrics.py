"""``/metrics``: vLLM's names and labels, parsed by prometheus_client, moving by the right amounts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families

from finops.tokens.counting import count_chat_prompt, count_prompt_input
from tests.sim.harness import SimLauncher, SimServer, metric, stream_chunks

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Break down last month's GPU spend by team."},
]
VLLM_FAMILIES = {
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:request_success": "counter",
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:gpu_cache_usage_perc": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:time_to_first_token_seconds": "histogram",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimServer]:
    # Its own stand-in, so that only this module's requests move these counters.
    launcher = SimLauncher(tmp_path_factory.mktemp("sim-metrics"))
    yield launcher("--model", "llama-8b", "--model", "other-model")
    launcher.stop_all()


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_metrics_text_parses_with_vllm_families_and_labels(server: SimServer) -> None:
    response = httpx.get(server.base_url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")

    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert {name: families[name].type for name in VLLM_FAMILIES} == VLLM_FAMILIES
    for name in VLLM_FAMILIES:
        models = {sample.labels["model_name"] for sample in families[name].samples}
        assert models == {"llama-8b", "other-model"}
    reasons = {sample.labels["finished_reason"] for sample in families["vllm:request_success"].samples}
    assert reasons == {"stop", "length", "abort"}


def test_counters_move_by_the_tokens_of_each_request(server: SimServer) -> None:
    before = server.metrics()
    client = server.client()
    client.chat.completions.create(model="llama-8b", messages=MESSAGES)
    body = {"model": "llama-8b", "messages": MESSAGES, "stream": True, "max_tokens": 5}
    stream_chunks(server, "/chat/completions", body)
    client.completions.create(model="llama-8b", prompt="one two three", max_tokens=40)
    client.embeddings.create(model="llama-8b", input=["alpha beta", "gamma"])
    # A failed request and a request for the other model must not move llama-8b's counters.
    httpx.post(
        server.api_base + "/chat/completions",
        json={"model": "llama-8b", "messages": MESSAGES},
        headers={"X-Sim-Error-Status": "500"},
    )
    client.chat.completions.create(model="other-model", messages=MESSAGES)
    after = server.metrics()

    def delta(name: str, model: str = "llama-8b", **labels: str) -> float:
        return metric(after, name, model, **labels) - metric(before, name, model, **labels)

    chat_prompt = count_chat_prompt(MESSAGES)
    expected_prompt = (
        2 * chat_prompt + count_prompt_input("one two three") + count_prompt_input(["alpha beta", "gamma"])
    )
    assert delta("vllm:prompt_tokens_total") == expected_prompt
    assert delta("vllm:generation_tokens_total") == 16 + 5 + 16
    assert delta("vllm:request_success_total", finished_reason="stop") == 3  # chat, completion, embeddings
    assert delta("vllm:request_success_total", finished_reason="length") == 1
    assert delta("vllm:request_success_total", finished_reason="abort") == 0
    assert delta("vllm:time_to_first_token_seconds_count") == 3
    assert delta("vllm:prompt_tokens_total", "other-model") == chat_prompt
    assert delta("vllm:generation_tokens_total", "other-model") == 16
    assert metric(after, "vllm:num_requests_running", "llama-8b") == 0
    assert metric(after, "vllm:num_requests_waiting", "llama-8b") == 0


def test_ttft_histogram_places_slow_first_tokens_in_high_buckets(server: SimServer) -> None:
    before = server.metrics()
    httpx.post(
        server.api_base + "/chat/completions",
        json={"model": "other-model", "messages": MESSAGES},
        headers={"X-Sim-TTFT-Ms": "300"},
    )
    after = server.metrics()

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, "other-model", **labels) - metric(before, name, "other-model", **labels)

    assert delta("vllm:time_to_first_token_seconds_bucket", le="0.25") == 0
    assert delta("vllm:time_to_first_token_seconds_bucket", le="0.5") == 1
    assert delta("vllm:time_to_first_token_seconds_bucket", le="+Inf") == 1
    assert 0.3 <= delta("vllm:time_to_first_token_seconds_sum") < 0.5


def test_running_gauge_and_kv_usage_follow_in_flight_requests(server: SimServer) -> None:
    def slow_request() -> None:
        httpx.post(
            server.api_base + "/chat/completions",
            json={"model": "llama-8b", "messages": MESSAGES, "stream": True},
            headers={"X-Sim-ITL-Ms": "40", "X-Sim-Output-Tokens": "25"},
            timeout=10,
        )

    threads = [threading.Thread(target=slow_request) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        _wait_for(lambda: metric(server.metrics(), "vllm:num_requests_running", "llama-8b") == 2)
        during = server.metrics()
        assert metric(during, "vllm:kv_cache_usage_perc", "llama-8b") > 0
        assert metric(during, "vllm:gpu_cache_usage_perc", "llama-8b") == metric(
            during, "vllm:kv_cache_usage_perc", "llama-8b"
        )
        assert metric(during, "vllm:num_requests_running", "other-model") == 0
    finally:
        for thread in threads:
            thread.join()
    after = server.metrics()
    assert metric(after, "vllm:num_requests_running", "llama-8b") == 0
    assert metric(after, "vllm:kv_cache_usage_perc", "llama-8b") == 0


def test_client_leaving_mid_stream_aborts_the_request(server: SimServer) -> None:
    before = server.metrics()
    body = orjson.dumps({"model": "llama-8b", "messages": MESSAGES, "stream": True})
    host, port = server.host_port
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: sim\r\ncontent-type: application/json\r\n"
        b"x-sim-itl-ms: 30\r\nx-sim-output-tokens: 200\r\ncontent-length: %d\r\n\r\n" % len(body)
    ) + body
    with socket.create_connection((host, port)) as sock:
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(0.2)

    def aborted() -> bool:
        now = server.metrics()
        return metric(now, "vllm:request_success_total", "llama-8b", finished_reason="abort") == (
            metric(before, "vllm:request_success_total", "llama-8b", finished_reason="abort") + 1
        )

    _wait_for(aborted)
    after = server.metrics()
    assert metric(after, "vllm:num_requests_running", "llama-8b") == 0
    generated = metric(after, "vllm:generation_tokens_total", "llama-8b") - metric(
        before, "vllm:generation_tokens_total", "llama-8b"
    )
    # Generation stopped when the client left, long before the 200 tokens it would have produced.
    assert 0 < generated < 200


def test_dropped_stream_counts_as_abort_with_the_tokens_sent(server: SimServer) -> None:
    before = server.metrics()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            server.api_base + "/chat/completions",
            json={"model": "llama-8b", "messages": MESSAGES, "stream": True},
            headers={"X-Sim-Drop-After": "7"},
        )
    after = server.metrics()

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, "llama-8b", **labels) - metric(before, name, "llama-8b", **labels)

    assert delta("vllm:request_success_total", finished_reason="abort") == 1
    assert delta("vllm:generation_tokens_total") == 7
    assert metric(after, "vllm:num_requests_running", "llama-8b") == 0
