"""Job state: each scheduled job's watermarks, and the row its runs lock to run one at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from finops.db import Base, UTCDateTime


class JobStateRow(Base):
    __tablename__ = "job_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # JSON: the job's own watermarks.
    state: Mapped[str] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(Integer)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
