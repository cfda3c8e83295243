"""Classifying calls into events, and vLLM's context-length errors."""

from __future__ import annotations

import pytest

from finops.observability.events import call_events, classify_upstream_error, limit_for


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, b'{"error":{"message":"This model\'s maximum context length is 8192 tokens. However, your '
              b'request has 9000 input tokens. Please reduce the length of the input messages."}}',
         "context_overflow"),
        (400, b'{"error":{"message":"The decoder prompt (length 9000) is longer than the maximum model '
              b'length of 8192. Make sure that `max_model_len` is no smaller than the number of text '
              b'tokens."}}', "context_overflow"),
        (400, b'{"error":{"message":"temperature must be non-negative"}}', "upstream_error"),
        (500, b"maximum context length", "upstream_error"),
    ],
)  # fmt: skip
def test_context_overflow_is_told_from_other_errors(status, body, expected):
    assert classify_upstream_error(status, body) == expected


@pytest.mark.parametrize(
    ("args", "events"),
    [
        ((200, None, "stop", False, 100, None), ()),
        ((200, None, "length", False, 100, None), ("truncated",)),
        ((200, None, "stop", False, 5000, 4096), ("context_over_limit",)),
        ((200, None, "stop", False, 4096, 4096), ()),
        ((400, "context_overflow", None, False, 0, 4096), ("context_overflow",)),
        ((499, "client_disconnected", None, True, 10, None), ("client_disconnected",)),
        ((429, "upstream_error", None, False, 0, None), ("upstream_rate_limited",)),
        ((404, "upstream_error", None, False, 0, None), ("upstream_client_error",)),
        ((503, "upstream_error", None, False, 0, None), ("upstream_server_error",)),
        ((504, "upstream_timeout", None, False, 0, None), ("upstream_timeout",)),
        ((502, "upstream_unreachable", None, False, 0, None), ("upstream_unreachable",)),
        ((200, "upstream_stream_error", "length", False, 9000, 8000),
         ("upstream_stream_error", "truncated", "context_over_limit")),
    ],
)  # fmt: skip
def test_call_events(args, events):
    assert call_events(*args) == events


def test_limit_for_falls_back_to_star():
    limits = {"llama-8b": 8000, "*": 4000}
    assert (limit_for(limits, "llama-8b"), limit_for(limits, "other"), limit_for({}, "x")) == (
        8000,
        4000,
        None,
    )
