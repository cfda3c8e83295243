"""One window's rows: its integer totals split among its calls and idle by largest remainder.

The exact share of a call is ``(window total) x (busy_us / window_us) x value / sum(values)`` and idle's
is ``(window total) x idle_us / window_us``; both are numerators over the common denominator
``sum(values) x window_us``, so the rounding runs on integers only.

The sweep's values are low by a relative error below ``rho = W / (2**CLOCK_BITS - W)``, where ``W``
bounds the backend's load in the window (the sum of the weights of the calls in it). Then the sweep's
quota of a call, ``q``, and the exact one, ``q*``, obey ``q / (1 + rho) < q* < q x (1 + rho)``, so
``|q* - q| < total x rho``. Idle's quota, and a lone call's, are exact (the values cancel out). When
that margin cannot change any floor nor the choice of rows given an extra unit, the rows equal the
exact ones; otherwise the window is recomputed with exact values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat

from finops.attribution.apportion import largest_remainder
from finops.attribution.records import GpuRow
from finops.attribution.sweep import CLOCK_BITS, WindowWork


def split_window(
    backend: str,
    window_start_us: int,
    window_end_us: int,
    gpu_us_total: int,
    cost_nusd_total: int,
    work: WindowWork,
    exact_values: Callable[[list[int]], list[int]],
) -> list[GpuRow]:
    """Rows of one window: its calls by request_id, then idle (also the order that breaks ties).

    ``exact_values`` maps call indices to exact work values (any common scale); it is only called
    when the sweep's values are not provably good enough.
    """
    busy_us, load_bound, entries = work.busy_us, work.load_bound, work.entries
    if not entries:
        return [GpuRow(backend, window_start_us, window_end_us, None, gpu_us_total, cost_nusd_total)]
    window_us = window_end_us - window_start_us
    entries.sort()
    values = [value for _, _, value in entries]
    # One call alone: its quota is busy/window whatever its value, so the fast value is exact enough.
    relative_error = (load_bound, (1 << CLOCK_BITS) - load_bound) if len(entries) > 1 else None
    split = _split(gpu_us_total, cost_nusd_total, values, busy_us, window_us, relative_error)
    if split is None:
        split = _split(
            gpu_us_total, cost_nusd_total, exact_values([i for _, i, _ in entries]), busy_us, window_us, None
        )
        if split is None:
            raise AssertionError("exact values always round")
    gpu_us, cost_nusd = split
    request_ids: list[str | None] = [request_id for request_id, _, _ in entries]
    request_ids.append(None)
    # tuple.__new__ mapped over zip builds the rows without a Python-level call per row: a third of
    # the cost of calling GpuRow(...), which matters at a million rows per run.
    fields = zip(
        repeat(backend),
        repeat(window_start_us),
        repeat(window_end_us),
        request_ids,
        gpu_us,
        cost_nusd,
        strict=False,  # the repeats are endless; the three lists have one entry per row
    )
    return list(map(tuple.__new__, repeat(GpuRow), fields))


def _split(
    gpu_us_total: int,
    cost_nusd_total: int,
    values: Sequence[int],
    busy_us: int,
    window_us: int,
    relative_error: tuple[int, int] | None,
) -> tuple[list[int], list[int]] | None:
    """GPU and cost shares (calls then idle), or None when ``relative_error`` (num, den) leaves doubt."""
    value_sum = sum(values)
    # A zero sum (or a load bound past the clock's range) only arises from absurd weights: go exact.
    if value_sum == 0 or (relative_error is not None and relative_error[1] <= 0):
        return None
    denominator = value_sum * window_us
    idle_us = window_us - busy_us
    shares: list[list[int]] = []
    for total in (gpu_us_total, cost_nusd_total):
        busy_scale = total * busy_us
        numerators = [busy_scale * value for value in values]
        numerators.append(total * idle_us * value_sum)
        margin = 0
        if relative_error is not None:
            error_num, error_den = relative_error
            margin = -(-total * denominator * error_num // error_den)
        split = largest_remainder(total, numerators, denominator, margin=margin, uncertain_rows=len(values))
        if split is None:
            return None
        shares.append(split)
    return shares[0], shares[1]
