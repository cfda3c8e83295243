"""Management API tokens, stored only as keyed hashes (like proxy keys, in a table of their own)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from finops.db import Base, UTCDateTime


class ManagementTokenRow(Base):
    __tablename__ = "management_tokens"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'finance', 'team')", name="role"),
        # A team token reads one team; admin and finance tokens read all, so they name none.
        CheckConstraint(
            "(role = 'team' AND team IS NOT NULL) OR (role <> 'team' AND team IS NULL)", name="team"
        ),
    )

    # Public id, shown in listings; the token itself is never stored.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, so an operator can tell tokens apart.
    token_prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
