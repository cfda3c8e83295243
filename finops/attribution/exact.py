"""Exact per-call work integrals of one window, over a common denominator.

The slow, always-exact path: a window falls back to it only when the fast sweep's fixed-point values
cannot be proven to round the same way as the exact ones (typically exact ties between calls).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate


def exact_work_values(spans: Sequence[tuple[int, int, int]]) -> list[int]:
    """For ``(start_us, end_us, weight)`` spans, ``weight x integral of dt / load(t)`` over each span.

    ``load(t)`` is the sum of the weights of the spans covering ``t``. Every value is scaled by the
    same positive integer (the lcm of the loads), so the results are exact integers whose ratios are
    the exact ratios of the shares; the caller normalizes.
    """
    times = sorted({t for start_us, end_us, _ in spans for t in (start_us, end_us)})
    position = {t: k for k, t in enumerate(times)}
    load_change = [0] * len(times)
    for start_us, end_us, weight in spans:
        load_change[position[start_us]] += weight
        load_change[position[end_us]] -= weight
    # loads[k] holds on [times[k], times[k + 1]); the last entry (after every end) is always 0.
    loads = list(accumulate(load_change))
    common = math.lcm(*(load for load in loads if load))
    prefix = [0]
    for k in range(len(times) - 1):
        load = loads[k]
        step = (times[k + 1] - times[k]) * (common // load) if load else 0
        prefix.append(prefix[-1] + step)
    return [
        weight * (prefix[position[end_us]] - prefix[position[start_us]]) for start_us, end_us, weight in spans
    ]
