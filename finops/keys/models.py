"""API keys (stored only as keyed hashes) and the installation's own settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from finops.db import Base, UTCDateTime


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    # Public id, shown in listings and written to the ledger; the key itself is never stored.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the key, so an operator can tell keys apart.
    key_prefix: Mapped[str] = mapped_column(String(16))
    team: Mapped[str] = mapped_column(String(128))
    default_feature: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SettingRow(Base):
    __tablename__ = "finops_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
