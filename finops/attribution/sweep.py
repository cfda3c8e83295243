"""The sweep: one pass over a backend's start/end events, window by window.

Between two consecutive events the set of running calls, and so their total weight ``load``, is
constant; call ``i`` then holds ``weight_i / load`` of the GPUs. Rather than touch every
running call at every event (n x concurrency steps), the sweep advances one shared clock by
``segment_us / load`` per segment; a call's work value for a window is then ``weight_i x`` (clock when
it stopped counting - clock when it started), one subtraction per call and window.

The clock is fixed-point: each segment adds ``floor(segment_us x 2**CLOCK_BITS / load)``. Each floor
loses less than one unit while a segment adds at least ``2**CLOCK_BITS / max_load - 1``, so a value is
low by a relative error below ``max_load / (2**CLOCK_BITS - max_load)``. ``window.py`` turns that
bound into a proof that the rounding came out as the exact values would have made it, or recomputes
the window exactly. Because floors are taken segment by segment, and window boundaries always cut
segments, a window's values depend only on the calls overlapping it, not on the run that computed it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

# 2**128 against loads near 2**60 (hundreds of calls of default weight) leaves a relative error near
# 2**-68: far below anything a micro-GPU-second could show, so the exact fallback almost never runs.
CLOCK_BITS = 128

# (request_id, call index, work value): request_id first so a plain sort orders a window's rows.
WorkEntry = tuple[str, int, int]


class WindowWork(NamedTuple):
    """What ran in one window: the sweep's raw material for its rows."""

    number: int  # windows are numbered from 0 at the range start
    busy_us: int  # time in the window when at least one call ran
    # The sum of the weights of the calls in ``entries``: no instant of the window had a larger load.
    load_bound: int
    # One work value per call that ran in the window for a positive time. The values of a window
    # share one unknown positive scale: only their ratios matter.
    entries: list[WorkEntry]


def sweep_windows(
    request_ids: Sequence[str],
    starts_us: Sequence[int],
    ends_us: Sequence[int],
    weights: Sequence[int],
    range_us: int,
    window_us: int,
) -> Iterator[WindowWork]:
    """The work of each window of ``[0, range_us)``, in order, empty windows included.

    Times are relative to the range start; every call lies in ``[0, range_us]`` with a positive
    duration, and ``range_us`` is a multiple of ``window_us``.
    """
    count = len(starts_us)
    index_bits = max(count.bit_length(), 1)
    index_mask = (1 << index_bits) - 1
    start_flag = 1 << index_bits
    time_shift = index_bits + 1
    # One int per event (time, then end-before-start, then index): sorting plain ints is the
    # cheapest sort CPython has, far cheaper than sorting tuples or with a key function.
    events = [(start << time_shift) | start_flag | i for i, start in enumerate(starts_us)]
    events += [(end << time_shift) | i for i, end in enumerate(ends_us)]
    # A sentinel past the range end closes every remaining window, empty ones included.
    events.append((range_us + 1) << time_shift)
    events.sort()

    clock = 0
    load = 0
    now_us = 0
    idle_us = 0  # counted instead of busy time: idle stretches are fewer than busy segments
    window_load = 0
    window_index = 0
    window_end_us = window_us
    clock_at_open: dict[int, int] = {}
    entries: list[WorkEntry] = []
    # Bound methods held in locals: this loop runs twice per call, so attribute lookups show.
    close = clock_at_open.pop
    emit = entries.append
    for event in events:
        event_us = event >> time_shift
        if event_us != now_us:
            if event_us > window_end_us:
                while event_us > window_end_us:
                    if load:
                        clock += ((window_end_us - now_us) << CLOCK_BITS) // load
                    else:
                        idle_us += window_end_us - now_us
                    for i, opened in clock_at_open.items():
                        # A call that starts exactly on the boundary has no time in the closing window.
                        if starts_us[i] < window_end_us:
                            weight = weights[i]
                            emit((request_ids[i], i, weight * (clock - opened)))
                            window_load += weight
                            clock_at_open[i] = clock
                    yield WindowWork(window_index, window_us - idle_us, window_load, entries)
                    entries = []
                    emit = entries.append
                    idle_us = 0
                    window_load = 0
                    now_us = window_end_us
                    window_end_us += window_us
                    window_index += 1
                if event_us > range_us:
                    break
            if load:
                clock += ((event_us - now_us) << CLOCK_BITS) // load
            else:
                idle_us += event_us - now_us
            now_us = event_us
        i = event & index_mask
        weight = weights[i]
        if event & start_flag:
            load += weight
            clock_at_open[i] = clock
        else:
            load -= weight
            emit((request_ids[i], i, weight * (clock - close(i))))
            window_load += weight
