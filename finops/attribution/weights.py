"""Work weights: how strongly a call claims its backend's GPUs while it runs.

A weight function sees a batch of calls (all of positive duration) and returns one integer weight >= 1
per call, in order. Batch rather than per-call so that the default runs as one list comprehension over
a million calls instead of a million Python calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from finops.attribution.records import CallSpan

WeightFn = Callable[[Sequence[CallSpan]], Sequence[int]]

# Default weights are token work rates in units of 1e-12 tokens per second (tokens per microsecond
# times 1e18). The unit is fine enough that flooring moves a weight by less than 1e-8 of itself even
# for one token over an hour: shares move by as little, below what micro-GPU-seconds resolve.
TOKEN_RATE_SCALE = 10**18


def token_rate_weights(calls: Sequence[CallSpan]) -> list[int]:
    """``floor(max(prompt + completion tokens, 1) * 1e18 / duration_us)`` per call.

    A call that reports no tokens (failed early, client gone before the first token) still held a
    slot on the backend, so it counts as one token: it gets a small share while it runs alongside
    busy calls, and all of the busy time when it runs alone.
    """
    return [
        max(c.prompt_tokens + c.completion_tokens, 1) * TOKEN_RATE_SCALE // (c.end_us - c.start_us)
        for c in calls
    ]
