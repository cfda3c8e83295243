"""Builders for trace calls with round prices, so that expected costs can be worked out by hand."""

from __future__ import annotations

from finops.traces import TraceCall

EPOCH_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def chat(
    request_id: str,
    at_s: float,
    *,
    stage: str | None = None,
    system: int = 0,
    history: int = 0,
    context: int = 0,
    user: int = 0,
    out: int = 0,
    in_nusd: int = 100,
    out_nusd: int = 300,
    status: int = 200,
    body: str | None = None,
    retry_of: str | None = None,
    endpoint: str = "chat.completions",
) -> TraceCall:
    """A chat call priced at ``in_nusd`` per prompt token and ``out_nusd`` per completion token."""
    prompt = system + history + context + user
    start_us = EPOCH_US + int(at_s * 1_000_000)
    return TraceCall(
        request_id=request_id,
        started_at_us=start_us,
        ended_at_us=start_us + 500_000,
        endpoint=endpoint,
        stage=stage,
        status_code=status,
        prompt_tokens=prompt,
        completion_tokens=out,
        cost_nusd=prompt * in_nusd + out * out_nusd,
        body_sha256=body,
        retry_of=retry_of,
        system_tokens=system,
        history_tokens=history,
        context_tokens=context,
        user_tokens=user,
        prompt_cost_nusd=prompt * in_nusd,
        completion_cost_nusd=out * out_nusd,
    )


def embed(
    request_id: str, at_s: float, tokens: int, *, stage: str | None = None, nusd: int = 10
) -> TraceCall:
    """An embeddings call: its whole input counts as user text, no prompt parts."""
    start_us = EPOCH_US + int(at_s * 1_000_000)
    return TraceCall(
        request_id=request_id,
        started_at_us=start_us,
        ended_at_us=start_us + 50_000,
        endpoint="embeddings",
        stage=stage,
        status_code=200,
        prompt_tokens=tokens,
        completion_tokens=0,
        cost_nusd=tokens * nusd,
        prompt_cost_nusd=tokens * nusd,
        completion_cost_nusd=0,
    )
