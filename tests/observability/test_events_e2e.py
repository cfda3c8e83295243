"""Events through the real proxy and stand-in: context overflow (the backend's 400 and the configured
limit), truncation, client disconnects and upstream errors, in the ledger, in /metrics and per feature."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from finops.config import load_config
from finops.db import unit_of_work
from finops.jobs.registry import run_job
from finops.observability.exposition import parse_exposition
from finops.observability.queries import event_counts
from tests.support.stack import ProxyStack, backend, start_sim

CHAT = {"model": "llama-8b", "messages": [{"role": "user", "content": "Say hi."}]}
LONG = {"model": "llama-8b", "messages": [{"role": "user", "content": "cost " * 60}]}


def tags(feature: str) -> dict[str, str]:
    return {"X-FinOps-Team": "search", "X-FinOps-Feature": feature}


@pytest.fixture
def stack(tmp_path, pg_url):
    sim, url = start_sim(tmp_path, ("llama-8b",))
    proxy = ProxyStack(
        tmp_path,
        pg_url,
        [backend("gpu-a", url, ["llama-8b"])],
        observability={"context_limit_tokens": {"llama-8b": 40}},
    ).start()
    yield proxy
    proxy.close()
    sim.stop()


def event_metric(stack: ProxyStack, feature: str, event: str) -> float:
    samples = parse_exposition(httpx.get(stack.url + "/metrics").text).get("finops_call_events_total", [])
    wanted = {"model": "llama-8b", "team": "search", "feature": feature, "event": event}
    return sum(value for labels, value in samples if labels == wanted)


def test_events_are_classified_counted_and_shown_per_feature(stack):
    post = lambda payload, feature, **headers: httpx.post(  # noqa: E731
        stack.base_url + "/chat/completions", json=payload, headers={**tags(feature), **headers}, timeout=30
    )
    # The stand-in's context window knob: a prompt too long for it gets vLLM's own 400, relayed as is.
    overflow = post(CHAT, "chat", **{"X-Sim-Max-Model-Len": "4"})
    assert overflow.status_code == 400
    assert "maximum context length is 4 tokens" in overflow.json()["error"]["message"]
    overflow_stream = post({**CHAT, "stream": True}, "chat", **{"X-Sim-Max-Model-Len": "4"})
    assert overflow_stream.status_code == 400
    truncated = post({**CHAT, "max_tokens": 2}, "chat")
    assert truncated.json()["choices"][0]["finish_reason"] == "length"
    over_limit = post(LONG, "rag")  # served (the model's window is 8192), but above the configured 40
    assert over_limit.status_code == 200
    failed = post(CHAT, "rag", **{"X-Sim-Error-Status": "503"})
    assert failed.status_code == 503
    # A client that leaves a slow stream before its first token.
    with httpx.stream(
        "POST",
        stack.base_url + "/chat/completions",
        json={**CHAT, "stream": True},
        headers={**tags("rag"), "X-Sim-TTFT-Ms": "3000"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
    ids = [
        r.headers["x-finops-request-id"] for r in (overflow, overflow_stream, truncated, over_limit, failed)
    ]
    rows = stack.wait_rows(lambda rows: len(rows) == 6, timeout_s=20)
    by_id = {r["request_id"]: r for r in rows}
    assert [by_id[i]["error_type"] for i in ids] == [
        "context_overflow",
        "context_overflow",
        None,
        None,
        "upstream_error",
    ]
    assert by_id[ids[2]]["finish_reason"] == "length"
    assert sum(r["client_disconnected"] for r in rows) == 1

    # /metrics counts the same events, from the ledger writer's thread.
    deadline = time.monotonic() + 10
    while event_metric(stack, "rag", "client_disconnected") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert event_metric(stack, "chat", "context_overflow") == 2.0
    assert event_metric(stack, "chat", "truncated") == 1.0
    assert event_metric(stack, "rag", "context_over_limit") == 1.0
    assert event_metric(stack, "rag", "upstream_server_error") == 1.0
    assert event_metric(stack, "rag", "client_disconnected") == 1.0

    config = load_config(stack.config_path)
    run_job(stack.engine, config, "latency_rollups")
    now = datetime.now(UTC)
    with unit_of_work(stack.engine) as session:
        counts = event_counts(session, now - timedelta(hours=2), now + timedelta(hours=1), by="feature")
    assert sorted((c.group, c.event, c.calls) for c in counts) == [
        ("chat", "context_overflow", 2),
        ("chat", "truncated", 1),
        ("rag", "client_disconnected", 1),
        ("rag", "context_over_limit", 1),
        ("rag", "upstream_server_error", 1),
    ]
