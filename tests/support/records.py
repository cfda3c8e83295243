from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from finops.ledger.record import UsageRecord


def make_record(**overrides: Any) -> UsageRecord:
    started = overrides.pop("started_at", datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC))
    values: dict[str, Any] = dict(
        request_id=uuid.uuid4().hex,
        trace_id="trace-1",
        started_at=started,
        ended_at=started + timedelta(milliseconds=250),
        team="search",
        feature="autocomplete",
        model="llama-8b",
        requested_model="llama-8b",
        backend="gpu-a",
        stage=None,
        endpoint="chat.completions",
        streamed=False,
        status_code=200,
        prompt_tokens=100,
        completion_tokens=20,
        cached_tokens=0,
        tokens_estimated=False,
        ttft_ms=None,
        itl_ms=None,
        latency_ms=250.0,
        prompt_cost_nusd=10_000,
        completion_cost_nusd=4_000,
        cost_nusd=14_000,
        priced=True,
        api_key_id=None,
        finish_reason="stop",
        error_type=None,
        client_disconnected=False,
        body_sha256="ab" * 32,
        retry_of=None,
    )
    values.update(overrides)
    return UsageRecord(**values)
