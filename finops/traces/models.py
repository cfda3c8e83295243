"""Closed traces with their amplification factor and additive breakdown, and traces still open."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Index, Integer, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from finops.db import Base, BigIntPK, UTCDateTime

FACTOR = Numeric(24, 6)
# The breakdown's parts, in tokens and nano-USD; baseline + the rest = total, exactly.
BREAKDOWN_PARTS = ("baseline", "context_expansion", "retries", "tool_steps", "safety", "retrieval", "other")


class BreakdownColumns:
    """The breakdown's parts (BREAKDOWN_PARTS) in tokens and in nano-USD, for one trace or summed over
    traces: baseline + the rest = the total, exactly."""

    baseline_tokens: Mapped[int] = mapped_column(BigInteger)
    context_expansion_tokens: Mapped[int] = mapped_column(BigInteger)
    retries_tokens: Mapped[int] = mapped_column(BigInteger)
    tool_steps_tokens: Mapped[int] = mapped_column(BigInteger)
    safety_tokens: Mapped[int] = mapped_column(BigInteger)
    retrieval_tokens: Mapped[int] = mapped_column(BigInteger)
    other_tokens: Mapped[int] = mapped_column(BigInteger)
    baseline_cost_nusd: Mapped[int] = mapped_column(BigInteger)
    context_expansion_cost_nusd: Mapped[int] = mapped_column(BigInteger)
    retries_cost_nusd: Mapped[int] = mapped_column(BigInteger)
    tool_steps_cost_nusd: Mapped[int] = mapped_column(BigInteger)
    safety_cost_nusd: Mapped[int] = mapped_column(BigInteger)
    retrieval_cost_nusd: Mapped[int] = mapped_column(BigInteger)
    other_cost_nusd: Mapped[int] = mapped_column(BigInteger)


class TraceCostRow(BreakdownColumns, Base):
    __tablename__ = "trace_costs"
    __table_args__ = (
        Index("ix_trace_costs_feature_first_call_at", "feature", "first_call_at"),
        Index("ix_trace_costs_team_first_call_at", "team", "first_call_at"),
        # The dashboards' unfiltered reads of a period (migration 0008).
        Index("ix_trace_costs_first_call_at", "first_call_at"),
        # The costliest traces (ORDER BY total_cost_nusd DESC, trace_id LIMIT n) over a long period read
        # this index in order and stop after n rows, instead of sorting every trace (migration 0010).
        Index("ix_trace_costs_total_cost_nusd", text("total_cost_nusd DESC"), "trace_id"),
    )

    trace_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # The team and feature of the trace's first call.
    team: Mapped[str] = mapped_column(String(128))
    feature: Mapped[str] = mapped_column(String(128))
    first_call_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_call_at: Mapped[datetime] = mapped_column(UTCDateTime())
    calls: Mapped[int] = mapped_column(Integer)
    retries: Mapped[int] = mapped_column(Integer)
    total_tokens: Mapped[int] = mapped_column(BigInteger)
    total_cost_nusd: Mapped[int] = mapped_column(BigInteger)
    # Null when the trace has no baseline (generation tried and never delivered).
    amplification_tokens: Mapped[Decimal | None] = mapped_column(FACTOR)
    amplification_cost: Mapped[Decimal | None] = mapped_column(FACTOR)
    baseline_source: Mapped[str] = mapped_column(String(16))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TracePendingRow(Base):
    """A trace that got calls since it was last closed; closed once quiet for ``traces.quiet_s``."""

    __tablename__ = "trace_pending"

    trace_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_call_ended_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TraceRollupRow(BreakdownColumns, Base):
    """Closed traces per hour of their first call (UTC), team, feature and factor bin: what the
    Amplification page sums, so that its reads grow with hours and features, not with traces.

    ``factor_bin`` indexes ``finops.traces.rollup.FACTOR_BIN_EDGES``' bins; the last index is the traces
    with no factor. Rewritten whole for every hour whose traces the traces job wrote or deleted."""

    __tablename__ = "trace_rollups"
    __table_args__ = (UniqueConstraint("hour", "team", "feature", "factor_bin"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime())
    team: Mapped[str] = mapped_column(String(128))
    feature: Mapped[str] = mapped_column(String(128))
    factor_bin: Mapped[int] = mapped_column(Integer)
    traces: Mapped[int] = mapped_column(BigInteger)
    calls: Mapped[int] = mapped_column(BigInteger)
    retries: Mapped[int] = mapped_column(BigInteger)
    total_tokens: Mapped[int] = mapped_column(BigInteger)
    total_cost_nusd: Mapped[int] = mapped_column(BigInteger)
