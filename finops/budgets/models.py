"""Budgets as stored: the ones from config (synced at start) and the ones made by the CLI or the API."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from finops.db import Base, BigIntPK, UTCDateTime


class BudgetRow(Base):
    __tablename__ = "budgets"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    # Scope: a null tag matches every value; all three null is a global budget.
    team: Mapped[str | None] = mapped_column(String(128))
    feature: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(256))
    # The amount for one calendar month, in integer nano-USD.
    monthly_nusd: Mapped[int] = mapped_column(BigInteger)
    # "tokens": token cost; "gpu": GPU-second cost (finops.attribution).
    basis: Mapped[str] = mapped_column(String(8))
    # Fractions of the amount, ascending, as decimal strings joined by commas ("0.5,0.8,1.0").
    thresholds: Mapped[str] = mapped_column(String(256))
    forecast: Mapped[bool] = mapped_column(Boolean)
    # Channel names (keys of config ``channels``), joined by commas.
    channels: Mapped[str] = mapped_column(String(1024))
    hard_limit: Mapped[bool] = mapped_column(Boolean)
    # "config" when it came from finops.yaml (config wins on restart), "api" when made by CLI or API.
    source: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
