"""Observability tables: latency sketches (hourly, daily), hourly call-event counts, scrapes, incidents."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Float, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from finops.db import Base, BigIntPK, UTCDateTime

# A call that reached no backend has none; an empty string keeps it in the unique key (NULLs never collide).
NO_BACKEND = ""


class LatencySketchRow(Base):
    """One mergeable sketch (finops.observability.sketch) per hour, tag set and metric (ttft, itl, total)."""

    __tablename__ = "latency_sketches"
    __table_args__ = (
        UniqueConstraint("hour", "team", "feature", "model", "backend", "metric"),
        Index("ix_latency_sketches_model_hour", "model", "hour"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime())
    team: Mapped[str] = mapped_column(String(128))
    feature: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(256))
    backend: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(8))
    calls: Mapped[int] = mapped_column(Integer)
    # Sketch.to_json(): zero count, bucket keys and counts.
    sketch: Mapped[str] = mapped_column(Text)


class LatencyDailySketchRow(Base):
    """The merge of a UTC day's hourly sketches per team, feature, model and metric (backend merged away).

    Kept by the same job in the same transaction as the hourly rows, so a day here is always the merge of
    its hours there. It exists for reads over many days (the dashboards' day buckets): a 30-day period
    reads one sketch per day and tag set instead of one per hour, backend and tag set.
    """

    __tablename__ = "latency_daily_sketches"
    __table_args__ = (UniqueConstraint("day", "team", "feature", "model", "metric"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # Midnight UTC.
    day: Mapped[datetime] = mapped_column(UTCDateTime())
    team: Mapped[str] = mapped_column(String(128))
    feature: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(8))
    calls: Mapped[int] = mapped_column(Integer)
    sketch: Mapped[str] = mapped_column(Text)


class CallEventRow(Base):
    """Calls per hour, tag set and event (finops.observability.events)."""

    __tablename__ = "call_events"
    __table_args__ = (UniqueConstraint("hour", "team", "feature", "model", "backend", "event"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime())
    team: Mapped[str] = mapped_column(String(128))
    feature: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(256))
    backend: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(64))
    calls: Mapped[int] = mapped_column(Integer)


class BackendMetricsRow(Base):
    """One scrape of a backend's vLLM /metrics, summed over its models and engines.

    Counters are stored as scraped (cumulative since the backend started); rates come from consecutive
    rows. A failed scrape is a row too, with ``up`` false and the reason in ``error``.
    """

    __tablename__ = "backend_metrics"
    __table_args__ = (
        Index("ix_backend_metrics_backend_at", "backend", "at"),
        Index("ix_backend_metrics_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    backend: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    up: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(String(512))
    # The backend's GPUs when scraped (config), for tokens per GPU-second.
    gpus: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    running: Mapped[float | None] = mapped_column(Float(53))
    waiting: Mapped[float | None] = mapped_column(Float(53))
    # 0..1, the fullest engine's.
    kv_cache_usage: Mapped[float | None] = mapped_column(Float(53))
    prompt_tokens_total: Mapped[float | None] = mapped_column(Float(53))
    generation_tokens_total: Mapped[float | None] = mapped_column(Float(53))
    prefix_cache_queries_total: Mapped[float | None] = mapped_column(Float(53))
    prefix_cache_hits_total: Mapped[float | None] = mapped_column(Float(53))
    # Only old vLLM (v0) serves a hit-rate gauge instead of the two counters.
    prefix_cache_hit_rate: Mapped[float | None] = mapped_column(Float(53))


class LatencyIncidentRow(Base):
    """One latency incident of one rule and group: open from ``started_at`` until ``resolved_at``."""

    __tablename__ = "latency_incidents"
    __table_args__ = (Index("ix_latency_incidents_rule_group", "rule", "group_value", "resolved_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    # What the rule groups by (model, feature, backend, all) and this incident's value of it.
    group_by: Mapped[str] = mapped_column(String(16))
    group_value: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(8))
    percentile: Mapped[float] = mapped_column(Float(53))
    factor: Mapped[float] = mapped_column(Float(53))
    # "hour_of_week" or "trailing_day": which baseline the threshold came from.
    baseline_kind: Mapped[str] = mapped_column(String(16))
    baseline_ms: Mapped[float] = mapped_column(Float(53))
    threshold_ms: Mapped[float] = mapped_column(Float(53))
    observed_ms: Mapped[float] = mapped_column(Float(53))
    peak_ms: Mapped[float] = mapped_column(Float(53))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_observed_ms: Mapped[float | None] = mapped_column(Float(53))
