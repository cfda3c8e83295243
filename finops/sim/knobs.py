"""Per-request overrides of the stand-in's knobs, read from ``X-Sim-*`` request headers.

A proxy forwards headers it does not know, so a test can inject a fault into exactly one call made
through the proxy, without restarting the stand-in with other settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

HEADER_PREFIX = b"x-sim-"


class KnobError(ValueError):
    """An ``X-Sim-*`` header with a value the stand-in cannot use."""


@dataclass(frozen=True, slots=True)
class Overrides:
    ttft_ms: float | None = None
    itl_ms: float | None = None
    output_tokens: int | None = None
    error_status: int | None = None
    # Streams: close after this many content chunks. Otherwise: 0 closes before any response byte,
    # N > 0 sends the headers and the first N bytes of the body, then closes.
    drop_after: int | None = None
    # Streams: one malformed event after this many content chunks. Otherwise: a body that is not JSON.
    malformed_after: int | None = None
    no_usage: bool = False
    cached_tokens: int = 0
    # A smaller context window for this request: a prompt that does not fit gets vLLM's 400.
    max_model_len: int | None = None


NO_OVERRIDES = Overrides()


def _number(name: str, raw: bytes) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise KnobError(f"header {name} must be a number, got {raw.decode(errors='replace')!r}") from None
    if not value >= 0:  # also rejects NaN
        raise KnobError(f"header {name} must be >= 0, got {raw.decode(errors='replace')!r}")
    return value


def _count(name: str, raw: bytes) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise KnobError(f"header {name} must be an integer, got {raw.decode(errors='replace')!r}") from None
    if value < 0:
        raise KnobError(f"header {name} must be >= 0, got {value}")
    return value


def _flag(name: str, raw: bytes) -> bool:
    value = raw.strip().lower()
    if value in (b"1", b"true", b"yes", b"on"):
        return True
    if value in (b"0", b"false", b"no", b"off", b""):
        return False
    raise KnobError(f"header {name} must be 1 or 0, got {raw.decode(errors='replace')!r}")


def parse_overrides(headers: Iterable[tuple[bytes, bytes]]) -> Overrides:
    """The overrides in a request's (lower-cased, as ASGI gives them) headers."""
    found: dict[bytes, bytes] = {}
    for header, value in headers:
        if header.startswith(HEADER_PREFIX):
            found[header[len(HEADER_PREFIX) :]] = value
    if not found:
        return NO_OVERRIDES

    ttft_ms = itl_ms = None
    output_tokens = error_status = drop_after = malformed_after = None
    no_usage = False
    cached_tokens = 0
    max_model_len = None
    for key, raw in found.items():
        name = "X-Sim-" + key.decode("latin-1")
        if key == b"ttft-ms":
            ttft_ms = _number(name, raw)
        elif key == b"itl-ms":
            itl_ms = _number(name, raw)
        elif key == b"output-tokens":
            output_tokens = _count(name, raw)
            if output_tokens < 1:
                raise KnobError(f"header {name} must be >= 1, got {output_tokens}")
        elif key == b"error-status":
            error_status = _count(name, raw)
            if not 400 <= error_status <= 599:
                raise KnobError(f"header {name} must be a 4xx or 5xx status, got {error_status}")
        elif key == b"drop-after":
            drop_after = _count(name, raw)
        elif key == b"malformed":
            malformed_after = _count(name, raw)
        elif key == b"no-usage":
            no_usage = _flag(name, raw)
        elif key == b"cached-tokens":
            cached_tokens = _count(name, raw)
        elif key == b"max-model-len":
            max_model_len = _count(name, raw)
            if max_model_len < 2:
                raise KnobError(f"header {name} must be >= 2, got {max_model_len}")
        else:
            # A typo would otherwise silently test nothing.
            raise KnobError(f"unknown header {name}")
    return Overrides(
        ttft_ms=ttft_ms,
        itl_ms=itl_ms,
        output_tokens=output_tokens,
        error_status=error_status,
        drop_after=drop_after,
        malformed_after=malformed_after,
        no_usage=no_usage,
        cached_tokens=cached_tokens,
        max_model_len=max_model_len,
    )
