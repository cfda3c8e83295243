"""The alerts outbox: one row per (event, channel) to deliver, and the budget alerts themselves."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finops.db import Base, BigIntPK, UTCDateTime

# Delivery states: pending (waiting for its task, or for its next attempt after a failure), sending
# (claimed by one worker; the claim expires after a lease so a crashed worker's row is picked up
# again), delivered, failed (gave up; `finops alerts redeliver` puts it back to pending).
PENDING = "pending"
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"


class AlertDeliveryRow(Base):
    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("source", "source_id", "channel"),
        Index("ix_alert_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # What raised it ("budget", "latency") and which event of that source (the alert id, ...).
    source: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(128))
    # A key of config ``channels``; its secrets (webhook URL, SMTP password) are read at send time only.
    channel: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(512))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    # Slack Block Kit blocks as JSON.
    slack_blocks: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    # Never holds a secret: errors are written by the channel code, with secrets redacted.
    last_error: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the next attempt is due (the sweep re-enqueues rows whose task was lost well past it).
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BudgetAlertRow(Base):
    """One alert per budget, period, kind and threshold: the unique key makes it exactly once."""

    __tablename__ = "budget_alerts"
    __table_args__ = (
        UniqueConstraint("budget_id", "period_start", "kind", "threshold"),
        Index("ix_budget_alerts_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    budget_id: Mapped[int] = mapped_column(BigInteger)
    # The budget's name and scope when the alert fired (the budget may be renamed or deleted later).
    budget_name: Mapped[str] = mapped_column(String(128))
    team: Mapped[str | None] = mapped_column(String(128))
    feature: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(256))
    basis: Mapped[str] = mapped_column(String(8))
    # "threshold" or "forecast" (the forecast alert's threshold is 1: the run rate projects > 100%).
    kind: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[Decimal] = mapped_column(Numeric(8, 4))
    # False for a lower threshold crossed in the same evaluation as a higher one: recorded so that it
    # never fires later in the period, but not sent (one alert for the highest, no flood).
    notified: Mapped[bool] = mapped_column(Boolean)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    spend_nusd: Mapped[int] = mapped_column(BigInteger)
    amount_nusd: Mapped[int] = mapped_column(BigInteger)
    forecast_nusd: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
