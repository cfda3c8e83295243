"""Hourly rollups: what dashboards, budgets and exports read for anything older than the current hour."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finops.attribution.models import GPU_SECONDS
from finops.db import Base, BigIntPK, UTCDateTime

# Idle rows have no team, feature or model; an empty string keeps them in the unique key
# (NULLs never collide in a unique constraint).
IDLE = ""


class UsageRollupRow(Base):
    __tablename__ = "usage_rollups"
    __table_args__ = (UniqueConstraint("hour", "team", "feature", "model", "backend"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime())
    team: Mapped[str] = mapped_column(String(128))
    feature: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(256))
    backend: Mapped[str] = mapped_column(String(128))
    calls: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger)
    completion_tokens: Mapped[int] = mapped_column(BigInteger)
    # The prompt (input) and completion (output) parts of the token cost; token_cost_nusd is their sum.
    prompt_cost_nusd: Mapped[int] = mapped_column(BigInteger, server_default="0")
    completion_cost_nusd: Mapped[int] = mapped_column(BigInteger, server_default="0")
    token_cost_nusd: Mapped[int] = mapped_column(BigInteger)
    gpu_seconds: Mapped[Decimal] = mapped_column(GPU_SECONDS)
    gpu_cost_nusd: Mapped[int] = mapped_column(BigInteger)
    idle_gpu_seconds: Mapped[Decimal] = mapped_column(GPU_SECONDS)
    idle_cost_nusd: Mapped[int] = mapped_column(BigInteger)


class RollupDirtyHourRow(Base):
    """Hours whose GPU rows changed since they were rolled up (a window recomputed after a late call)."""

    __tablename__ = "rollup_dirty_hours"

    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
