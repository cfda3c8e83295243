"""Watching an SSE stream go by: first token, usage, finish reason, and the usage-only chunk.

The relay must not buffer, so this works on bytes and parses JSON only where it must: events until the
first token (a handful), and the usage chunk. Events are complete ``data: ...`` blocks separated by a
blank line; a chunk from the network may end mid-event, and the tail waits for the rest.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_SEPARATOR = b"\n\n"
_ANY_SEPARATOR = re.compile(rb"(\r\n\r\n|\n\n|\r\r)")
_ERROR_MARKERS = (b'data: {"error"', b'data:{"error"')
_DATA = b"data:"
_DONE = b"[DONE]"
_USAGE_MARKERS = (b'"usage":{', b'"usage": {')
_EMPTY_CHOICES_MARKERS = (b'"choices":[]', b'"choices": []')
_FINISH_MARKERS = (b'"finish_reason":"', b'"finish_reason": "')


def _event_json(event: bytes) -> Any:
    payload = event[len(_DATA) :].strip() if event.startswith(_DATA) else b""
    if not payload or payload == _DONE:
        return None
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def _has_token(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    choices = data.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict) and (
            delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content")
        ):
            return True
        if choice.get("text"):
            return True
    return False


class StreamTracker:
    """Feed it the upstream's chunks in order; it returns the bytes to relay to the client."""

    __slots__ = (
        "_pending",
        "_strip_usage",
        "done",
        "error_event",
        "events",
        "finish_reason",
        "first_token_at",
        "last_token_at",
        "malformed",
        "model",
        "usage",
    )

    def __init__(self, strip_usage: bool) -> None:
        self._strip_usage = strip_usage
        self._pending = b""
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.malformed = 0
        # The backend reported a failure inside the stream (vLLM's way once the headers are sent).
        self.error_event = False
        # Every data event seen, kept (by reference) to count tokens if the stream ends without usage.
        self.events: list[bytes] = []

    def feed(self, chunk: bytes, now: float) -> bytes:
        data = self._pending + chunk if self._pending else chunk
        if b"\r" in data:
            return self._feed_any_separator(data, now)
        cut = data.rfind(_SEPARATOR)
        if cut < 0:
            self._pending = data
            return b""
        complete, self._pending = data[: cut + 2], data[cut + 2 :]
        dropped = False
        kept: list[bytes] = []
        for event in complete.split(_SEPARATOR)[:-1]:
            if self._observe(event.strip(b"\r\n"), now):
                kept.append(event)
            else:
                dropped = True
        if not dropped:
            return complete
        return b"".join(event + _SEPARATOR for event in kept)

    def _feed_any_separator(self, data: bytes, now: float) -> bytes:
        """The SSE spec also allows CRLF and CR line ends (sse-starlette uses CRLF): the slow path."""
        matches = list(_ANY_SEPARATOR.finditer(data))
        if not matches:
            self._pending = data
            return b""
        cut = matches[-1].end()
        complete, self._pending = data[:cut], data[cut:]
        pieces = _ANY_SEPARATOR.split(complete)  # event, separator, event, separator, ..., b""
        kept: list[bytes] = []
        dropped = False
        for event, separator in zip(pieces[0::2], pieces[1::2], strict=False):
            if self._observe(event.strip(b"\r\n"), now):
                kept.append(event + separator)
            else:
                dropped = True
        return b"".join(kept) if dropped else complete

    def flush(self) -> bytes:
        """Whatever trailing bytes never got their blank line (a backend that ends oddly): relay them."""
        tail, self._pending = self._pending, b""
        if tail.strip():
            self._observe(tail.strip(b"\r\n"), None)
        return tail

    def _observe(self, event: bytes, now: float | None) -> bool:
        """Record what the event says; False when it must not reach the client."""
        if not event.startswith(_DATA):
            return True  # comments, keep-alives, other fields: relay untouched
        if event.endswith(_DONE) and event[len(_DATA) :].strip() == _DONE:
            self.done = True
            return True
        self.events.append(event)
        if event.startswith(_ERROR_MARKERS):
            self.error_event = True
        if any(marker in event for marker in _USAGE_MARKERS):
            parsed = _event_json(event)
            if isinstance(parsed, dict) and isinstance(parsed.get("usage"), dict):
                self.usage = parsed["usage"]
                self.model = self.model or parsed.get("model")
                if any(marker in event for marker in _EMPTY_CHOICES_MARKERS):
                    return not self._strip_usage
        if self.first_token_at is None:
            parsed = _event_json(event)
            if parsed is None:
                self.malformed += 1
            elif isinstance(parsed, dict):
                if self.model is None and isinstance(parsed.get("model"), str):
                    self.model = parsed["model"]
                if now is not None and _has_token(parsed):
                    self.first_token_at = now
                    self.last_token_at = now
        elif now is not None:
            self.last_token_at = now
        for marker in _FINISH_MARKERS:
            at = event.find(marker)
            if at >= 0:
                start = at + len(marker)
                end = event.find(b'"', start)
                if end > start:
                    self.finish_reason = event[start:end].decode("utf-8", "replace")[:32]
                break
        return True

    def generated_text(self) -> str:
        """The text of every token relayed so far (for counting when no usage came)."""
        parts: list[str] = []
        for event in self.events:
            parsed = _event_json(event)
            if not isinstance(parsed, dict):
                continue
            for choice in parsed.get("choices") or []:
                if not isinstance(choice, dict):
                    continue
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    for key in ("content", "reasoning_content"):
                        if isinstance(delta.get(key), str):
                            parts.append(delta[key])
                    if delta.get("tool_calls"):
                        parts.append(orjson.dumps(delta["tool_calls"]).decode())
                elif isinstance(choice.get("text"), str):
                    parts.append(choice["text"])
        return "".join(parts)
