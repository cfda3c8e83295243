"""GPU-second attribution: who used a backend's GPUs, minute by minute, and what that cost.

The model
---------
A backend has ``gpus`` (fractional for MIG slices) and a price ``usd_per_gpu_hour``. Time is integer
microseconds since the Unix epoch, and windows are ``[k x window_us, (k + 1) x window_us)``, aligned
to the epoch (one minute by default). A call occupies its backend over ``[start_us, end_us)``.

At every instant, the backend's GPUs are shared among the calls in flight in proportion to their work
weights: a call of weight ``w`` among calls of total weight ``W`` gets ``gpus x w / W`` GPUs at that
instant. Instants with no call in flight go to the backend's idle row. A call's exact share of a
window is its GPUs integrated over the window, a rational number of GPU-microseconds; a call that
spans windows is split at the boundaries, and its parts add up to its whole.

Work weights
------------
By default a call's weight is its token work rate, ``(prompt_tokens + completion_tokens) /
duration``, quantized to an integer in units of 1e-12 tokens per second (see ``weights.py``); all the
exactness below is with respect to these integer weights. A call reporting no tokens weighs as one
token, so it still gets its share while it runs (it did hold a slot). A call of zero duration was
never in flight and gets no row. Another weight rule can be passed as ``weights``.

Rounding (all integers, nothing lost, nothing made up)
------------------------------------------------------
Rows carry ``gpu_us`` (micro-GPU-seconds) and ``cost_nusd`` (nano-USD).

1. A window's totals: ``gpu_us = floor(gpus x end_us) - floor(gpus x start_us)`` and ``cost_nusd =
   floor(r x end_us) - floor(r x start_us)`` with ``r = gpus x usd_per_gpu_hour / 3.6`` nano-USD per
   microsecond. When ``gpus x window_us`` is an integer (any gpus with up to 7 decimals, for one-
   minute windows) the first is exactly that; a cost that is not a whole number of nano-USD per window
   alternates between floor and ceiling, and any run of consecutive windows sums to within 1 nano-USD
   of its exact cost, without drift.
2. Each total is split among the window's rows (its calls and the idle row, always present, possibly
   0) by largest remainder in proportion to their exact shares: every row gets the floor of its exact
   quota, then the units still missing go one each to the rows with the largest fractional parts;
   equal fractional parts are served by ascending ``request_id``, idle last. GPU time and cost are
   rounded separately, each from the exact shares (not cost from rounded GPU time).

So for every backend and window, the rows' ``gpu_us`` sum to the window's GPU total and their
``cost_nusd`` to the window's cost, exactly, and each row is within one unit of its exact share of
those totals. The idle row is exactly ``gpus x`` (microseconds nothing ran) whenever that and ``gpus x
window_us`` are whole numbers: its quota is then an integer, and a zero remainder never gets a unit.

Determinism
-----------
The rows are a function of the set of calls only: input order does not matter, and a window's rows
depend only on the calls that overlap it, so recomputing a window in any run that covers it gives the
same rows. Rows come sorted by backend, window start, request_id, idle last.

How it stays fast
-----------------
One O(n log n) sweep per backend with a fixed-point clock (``sweep.py``), then a per-window check
(``window.py``) that proves the fixed-point values round exactly as the exact rationals would; the
rare window where that proof fails (usually exact ties between calls) is recomputed with exact
integers over a common denominator (``exact.py``). The result is always that of the exact model.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from finops.attribution.exact import exact_work_values
from finops.attribution.records import BackendRate, CallSpan, GpuRow
from finops.attribution.sweep import sweep_windows
from finops.attribution.totals import anchored_units
from finops.attribution.weights import WeightFn, token_rate_weights
from finops.attribution.window import split_window

ONE_MINUTE_US = 60_000_000


def attribute_backend(
    rate: BackendRate,
    calls: Iterable[CallSpan],
    start_us: int,
    end_us: int,
    *,
    window_us: int = ONE_MINUTE_US,
    weights: WeightFn = token_rate_weights,
) -> list[GpuRow]:
    """Rows for one backend over the windows of ``[start_us, end_us)``.

    Both ends must be multiples of ``window_us``. Every call must be on ``rate.name``; calls are
    clipped to the range (those outside it are ignored), and request ids must be unique.
    """
    _check_range(start_us, end_us, window_us)
    call_list = list(calls)
    strangers = {c.backend for c in call_list} - {rate.name}
    if strangers:
        raise ValueError(f"calls of backends {sorted(strangers)} given for backend {rate.name!r}")
    with _collector_paused():
        return _attribute(rate, call_list, start_us, end_us, window_us, weights)


def attribute_backends(
    rates: Iterable[BackendRate],
    calls: Iterable[CallSpan],
    start_us: int,
    end_us: int,
    *,
    window_us: int = ONE_MINUTE_US,
    weights: WeightFn = token_rate_weights,
) -> list[GpuRow]:
    """Rows for every backend in ``rates`` (idle rows too for those without calls), by backend name.

    A call on a backend missing from ``rates`` is an error rather than silently dropped spend.
    """
    _check_range(start_us, end_us, window_us)
    rate_by_name: dict[str, BackendRate] = {}
    for rate in rates:
        if rate.name in rate_by_name:
            raise ValueError(f"backend {rate.name!r} given twice")
        rate_by_name[rate.name] = rate
    calls_by_name: dict[str, list[CallSpan]] = {name: [] for name in rate_by_name}
    unknown: set[str] = set()
    for call in calls:
        bucket = calls_by_name.get(call.backend)
        if bucket is None:
            unknown.add(call.backend)
        else:
            bucket.append(call)
    if unknown:
        raise ValueError(f"calls on backends with no rate: {sorted(unknown)}")
    rows: list[GpuRow] = []
    with _collector_paused():
        for name in sorted(rate_by_name):
            rows += _attribute(rate_by_name[name], calls_by_name[name], start_us, end_us, window_us, weights)
    return rows


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause CPython's cycle collector for a run, restoring its previous state after.

    A run keeps about two new tuples per call; each burst of allocations makes the collector rescan
    the whole growing heap, which cost a quarter of the run time at a million calls. Nothing built here
    can form a reference cycle, so pausing frees no less memory. Reference counting still frees all.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_range(start_us: int, end_us: int, window_us: int) -> None:
    if window_us <= 0:
        raise ValueError("window_us must be positive")
    if start_us % window_us or end_us % window_us:
        raise ValueError("the range must start and end on window boundaries (multiples of window_us)")
    if end_us < start_us:
        raise ValueError("the range ends before it starts")


def _attribute(
    rate: BackendRate,
    calls: Sequence[CallSpan],
    start_us: int,
    end_us: int,
    window_us: int,
    weights: WeightFn,
) -> list[GpuRow]:
    if end_us == start_us:
        return []
    live = [c for c in calls if c.start_us < end_us and c.end_us > start_us and c.end_us > c.start_us]
    request_ids = [c.request_id for c in live]
    if len(set(request_ids)) != len(request_ids):
        raise ValueError(f"backend {rate.name!r}: request ids are not unique")
    # Weights come from whole calls, not from their clipped parts: a call's rate is one property.
    call_weights = list(weights(live))
    if len(call_weights) != len(live) or (call_weights and min(call_weights) < 1):
        raise ValueError("a weight function must give one integer weight >= 1 per call")
    starts_us = [c.start_us - start_us if c.start_us > start_us else 0 for c in live]
    ends_us = [(c.end_us if c.end_us < end_us else end_us) - start_us for c in live]

    gpu_rate = rate.gpu_us_per_us
    cost_rate = rate.nusd_per_us
    rows: list[GpuRow] = []
    for work in sweep_windows(request_ids, starts_us, ends_us, call_weights, end_us - start_us, window_us):
        window_start_rel = work.number * window_us
        window_end_rel = window_start_rel + window_us

        def exact_values(
            indices: list[int], lo: int = window_start_rel, hi: int = window_end_rel
        ) -> list[int]:
            return exact_work_values(
                [(max(starts_us[i], lo), min(ends_us[i], hi), call_weights[i]) for i in indices]
            )

        window_start_us = start_us + window_start_rel
        window_end_us = start_us + window_end_rel
        rows += split_window(
            rate.name,
            window_start_us,
            window_end_us,
            anchored_units(gpu_rate, window_start_us, window_end_us),
            anchored_units(cost_rate, window_start_us, window_end_us),
            work,
            exact_values,
        )
    return rows
