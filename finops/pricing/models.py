"""The price book table: USD per million tokens per model, with effective dates."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finops.db import Base, BigIntPK, UTCDateTime

# Prices are exact decimals: 12 digits before the point and 12 after cover any real price.
PRICE = Numeric(24, 12)


class PriceBookRow(Base):
    __tablename__ = "price_book"
    __table_args__ = (UniqueConstraint("model", "effective_from"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(256))
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    input_usd_per_mtok: Mapped[Decimal] = mapped_column(PRICE)
    cached_input_usd_per_mtok: Mapped[Decimal] = mapped_column(PRICE)
    output_usd_per_mtok: Mapped[Decimal] = mapped_column(PRICE)
