"""The GPU-second ledger: every backend's GPU time per window, split among calls, idle on its own row."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from finops.db import Base, BigIntPK, UTCDateTime

# Micro-GPU-second precision, exact: the engine's integer gpu_us with the point moved six places.
GPU_SECONDS = Numeric(20, 6)


class GpuLedgerRow(Base):
    __tablename__ = "gpu_ledger"
    __table_args__ = (
        Index("ix_gpu_ledger_backend_window_start", "backend", "window_start"),
        Index("ix_gpu_ledger_window_start", "window_start"),
        Index("ix_gpu_ledger_request_id", "request_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    backend: Mapped[str] = mapped_column(String(128))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    # Null on the window's idle row.
    request_id: Mapped[str | None] = mapped_column(String(64))
    team: Mapped[str | None] = mapped_column(String(128))
    feature: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(256))
    gpu_seconds: Mapped[Decimal] = mapped_column(GPU_SECONDS)
    cost_nusd: Mapped[int] = mapped_column(BigInteger)
