"""What happened to a call beyond its status: context overflow, truncation, disconnects, upstream errors.

Pure classification, shared by the proxy's ``/metrics`` counter (on the ledger writer's thread) and the
hourly ``call_events`` rollup, so that both count the same thing. Everything is read from columns the
ledger already has, so no new ledger column was needed:

- ``context_overflow``: the backend refused the prompt as longer than the model's context (vLLM's 400);
  the proxy records it with ``error_type = "context_overflow"``.
- ``context_over_limit``: the prompt's token count (the backend's, else the tokenizer's) is above
  ``observability.context_limit_tokens`` for the model; the call itself was served.
- ``truncated``: the output stopped at max_tokens or the context's end (``finish_reason = "length"``).
- ``client_disconnected``: the client left before the answer ended.
- upstream errors by kind: ``upstream_rate_limited`` (429), ``upstream_client_error`` (other 4xx),
  ``upstream_server_error`` (5xx), and the proxy's own kinds as recorded (``upstream_timeout``,
  ``upstream_unreachable``, ``upstream_disconnected``, ``upstream_stream_error``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping

CONTEXT_OVERFLOW = "context_overflow"
CONTEXT_OVER_LIMIT = "context_over_limit"
TRUNCATED = "truncated"
CLIENT_DISCONNECTED = "client_disconnected"
UPSTREAM_ERROR = "upstream_error"

# vLLM's wordings for a prompt that does not fit: the OpenAI server's "This model's maximum context
# length is N tokens. However, ..." and the engine's "The decoder prompt (length N) is longer than the
# maximum model length of M."
_CONTEXT_MARKERS = (b"maximum context length", b"maximum model length")
_NO_EVENTS: tuple[str, ...] = ()


def classify_upstream_error(status: int, body: bytes) -> str:
    """The ledger's error_type for a backend's error answer (read only for 400s: cheap)."""
    if status == 400 and any(marker in body for marker in _CONTEXT_MARKERS):
        return CONTEXT_OVERFLOW
    return UPSTREAM_ERROR


def _upstream_kind(status_code: int) -> str:
    if status_code == 429:
        return "upstream_rate_limited"
    if 400 <= status_code < 500:
        return "upstream_client_error"
    return "upstream_server_error"


def call_events(
    status_code: int,
    error_type: str | None,
    finish_reason: str | None,
    client_disconnected: bool,
    prompt_tokens: int,
    context_limit_tokens: int | None,
) -> tuple[str, ...]:
    """The events of one call (most calls have none; a call may have several)."""
    over_limit = context_limit_tokens is not None and prompt_tokens > context_limit_tokens
    if error_type is None and finish_reason != "length" and not client_disconnected and not over_limit:
        return _NO_EVENTS
    events: list[str] = []
    if error_type is not None and error_type != CLIENT_DISCONNECTED:
        events.append(_upstream_kind(status_code) if error_type == UPSTREAM_ERROR else error_type)
    if client_disconnected or error_type == CLIENT_DISCONNECTED:
        events.append(CLIENT_DISCONNECTED)
    if finish_reason == "length":
        events.append(TRUNCATED)
    if over_limit:
        events.append(CONTEXT_OVER_LIMIT)
    return tuple(events)


def limit_for(limits: Mapping[str, int], model: str) -> int | None:
    """The configured prompt limit of a model ("*" applies to models not named)."""
    limit = limits.get(model)
    return limit if limit is not None else limits.get("*")
