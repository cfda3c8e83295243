"""Trace amplification (pure, no I/O): the definitions and rules are in ``amplification``."""

from finops.traces.aggregate import FactorStats, GroupStats, factor_stats, group_stats, nearest_rank
from finops.traces.amplification import (
    BaselineSource,
    CallMark,
    TraceCost,
    compute,
    compute_all,
    group_by_trace,
    share_nusd,
    trace_order,
)
from finops.traces.breakdown import PARTS, Breakdown, Part
from finops.traces.calls import Category, TraceCall, call_category, normalize_stage
from finops.traces.retries import RetryReason, retry_reasons

__all__ = [
    "PARTS",
    "BaselineSource",
    "Breakdown",
    "CallMark",
    "Category",
    "FactorStats",
    "GroupStats",
    "Part",
    "RetryReason",
    "TraceCall",
    "TraceCost",
    "call_category",
    "compute",
    "compute_all",
    "factor_stats",
    "group_by_trace",
    "group_stats",
    "nearest_rank",
    "normalize_stage",
    "retry_reasons",
    "share_nusd",
    "trace_order",
]
