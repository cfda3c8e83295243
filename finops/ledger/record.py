"""The usage record: what the proxy knows about one call, handed to the ledger writer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import orjson


class UsageRecord(NamedTuple):
    """One row of ``token_ledger``; field names are its column names, in COPY order.

    Immutable, and a NamedTuple rather than a frozen dataclass: the proxy makes one per call, and a
    frozen dataclass's __init__ (one object.__setattr__ per field) cost several times more.
    """

    request_id: str
    trace_id: str
    started_at: datetime
    ended_at: datetime
    team: str
    feature: str
    model: str
    requested_model: str
    backend: str | None
    stage: str | None
    endpoint: str
    streamed: bool
    status_code: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    tokens_estimated: bool
    ttft_ms: float | None
    itl_ms: float | None
    latency_ms: float
    prompt_cost_nusd: int
    completion_cost_nusd: int
    cost_nusd: int
    priced: bool
    api_key_id: str | None
    finish_reason: str | None
    error_type: str | None
    client_disconnected: bool
    body_sha256: str | None
    retry_of: str | None
    prompt_system_tokens: int | None = None
    prompt_history_tokens: int | None = None
    prompt_context_tokens: int | None = None
    prompt_user_tokens: int | None = None


COLUMNS: tuple[str, ...] = UsageRecord._fields
_TIME_FIELDS = ("started_at", "ended_at")


def record_to_json(record: UsageRecord) -> bytes:
    return orjson.dumps(record._asdict())


def record_from_json(data: bytes | str) -> UsageRecord:
    values: dict[str, Any] = orjson.loads(data)
    for name in _TIME_FIELDS:
        values[name] = datetime.fromisoformat(values[name])
    return UsageRecord(**values)
