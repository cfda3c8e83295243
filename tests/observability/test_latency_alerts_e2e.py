"""Latency injected on the stand-in (its X-Sim-TTFT-Ms knob) through the real proxy raises a 2x alert
once and resolves it once, delivered through the alerts outbox to a real local Slack webhook receiver."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from finops.alerts.models import AlertDeliveryRow
from finops.alerts.outbox import deliver
from finops.config import load_config
from finops.db import unit_of_work
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from finops.observability.models import LatencyIncidentRow
from tests.support.recording_backend import RecordingBackend
from tests.support.records import make_record
from tests.support.stack import ProxyStack, backend, start_sim

WINDOW_S = 6.0
BASELINE_TTFT_MS = 40.0
SLOW_TTFT_MS = 300  # 7.5x the baseline: well over 2x
FAST_TTFT_MS = 10
TAGS = {"X-FinOps-Team": "search", "X-FinOps-Feature": "chat"}


@pytest.fixture
def receiver():
    hook = RecordingBackend(body=b"ok", content_type="text/plain")
    yield hook
    hook.close()


@pytest.fixture
def stack(tmp_path, pg_url, receiver):
    sim, url = start_sim(tmp_path, ("llama-8b",))
    proxy = ProxyStack(
        tmp_path,
        pg_url,
        [backend("gpu-a", url, ["llama-8b"])],
        channels={"ops": {"type": "slack", "webhook_url": receiver.url + "/hook"}},
        latency_alerts=[
            {
                "name": "ttft-p90",
                "metric": "ttft",
                "percentile": 90,
                "by": "model",
                "window_s": WINDOW_S,
                "factor": 2,
                "min_calls": 5,
                "channels": ["ops"],
            }
        ],
    ).start()
    yield proxy
    proxy.close()
    sim.stop()


def streamed_calls(stack: ProxyStack, n: int, ttft_ms: int) -> None:
    for _ in range(n):
        with httpx.stream(
            "POST",
            stack.base_url + "/chat/completions",
            json={"model": "llama-8b", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
            headers={**TAGS, "X-Sim-TTFT-Ms": str(ttft_ms)},
            timeout=30,
        ) as response:
            assert response.status_code == 200
            response.read()


def test_injected_latency_alerts_once_and_resolves_once(stack, receiver):
    config = load_config(stack.config_path)
    engine = stack.engine
    now = datetime.now(UTC)
    # Yesterday's normal: the trailing day's hourly sketches hold ttft ~40 ms for llama-8b.
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    insert_records(
        engine,
        [
            make_record(
                started_at=hour + timedelta(seconds=10 * i),
                streamed=True,
                ttft_ms=BASELINE_TTFT_MS + (i % 5),
                itl_ms=5.0,
                latency_ms=200.0,
            )
            for i in range(50)
        ],
    )
    run_job(engine, config, "latency_rollups")

    def alerts() -> tuple[int, int]:
        result = run_job(engine, config, "latency_alerts")
        return result.fired, result.resolved

    streamed_calls(stack, 6, SLOW_TTFT_MS)
    stack.wait_rows(
        lambda rows: sum(r["ttft_ms"] is not None and r["ttft_ms"] >= SLOW_TTFT_MS for r in rows) == 6
    )
    assert alerts() == (1, 0)
    assert alerts() == (0, 0)  # the same incident, still open: no second alert
    streamed_calls(stack, 1, SLOW_TTFT_MS)
    assert alerts() == (0, 0)

    time.sleep(WINDOW_S)  # the slow calls leave the window
    streamed_calls(stack, 6, FAST_TTFT_MS)
    stack.wait_rows(
        lambda rows: sum(r["ttft_ms"] is not None and r["ttft_ms"] < 2 * BASELINE_TTFT_MS for r in rows) >= 56
    )
    assert alerts() == (0, 1)
    assert alerts() == (0, 0)

    with unit_of_work(engine) as session:
        incidents = session.scalars(select(LatencyIncidentRow)).all()
        deliveries = session.scalars(select(AlertDeliveryRow).order_by(AlertDeliveryRow.id)).all()
    assert len(incidents) == 1
    incident = incidents[0]
    assert (incident.rule, incident.group_value, incident.baseline_kind) == (
        "ttft-p90",
        "llama-8b",
        "trailing_day",
    )
    assert incident.baseline_ms == pytest.approx(BASELINE_TTFT_MS + 4, rel=0.01)
    assert incident.peak_ms >= SLOW_TTFT_MS and incident.resolved_at is not None
    assert [(d.source, d.source_id, d.channel, d.status) for d in deliveries] == [
        ("latency", f"incident-{incident.id}:fired", "ops", "pending"),
        ("latency", f"incident-{incident.id}:resolved", "ops", "pending"),
    ]

    # The budgets engineer's delivery path sends them to the Slack webhook.
    for delivery in deliveries:
        assert deliver(engine, config, delivery.id).status == "delivered"
    sent = [json.loads(r.body)["text"] for r in receiver.requests]
    assert len(sent) == 2
    assert sent[0].startswith("[finops] latency: p90 time to first token of model llama-8b is ")
    assert "x its baseline of 44 ms" in sent[0]
    assert sent[1].startswith("[finops] resolved: p90 time to first token of model llama-8b is back to ")
