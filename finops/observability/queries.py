"""Reads for dashboards and the API: latency percentiles, call events, backend capacity and verdicts.

Latency figures are milliseconds as floats: measurements, not money.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from finops.ledger.models import TokenLedgerRow
from finops.observability.capacity import CapacityPoint, Scrape, capacity_points, verdict
from finops.observability.models import (
    NO_BACKEND,
    BackendMetricsRow,
    CallEventRow,
    LatencyDailySketchRow,
    LatencySketchRow,
)
from finops.observability.rollup import METRICS, day_of
from finops.observability.sketch import Sketch

__all__ = [
    "CapacityPoint",
    "EventCount",
    "LatencyPoint",
    "backend_capacity",
    "capacity_verdicts",
    "event_counts",
    "latency_percentiles",
    "rolling_percentiles",
]

LatencyGroup = Literal["model", "feature", "backend"]
Bucket = Literal["hour", "day"]
VERDICT_WINDOW = timedelta(minutes=10)
# Backends scraped within this long before ``now`` get a verdict (possibly "no data" or "unreachable").
KNOWN_BACKENDS_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class LatencyPoint:
    bucket_start: datetime
    group: str
    metric: str  # ttft | itl | total
    p50_ms: float
    p90_ms: float
    p99_ms: float
    count: int


@dataclass(frozen=True)
class EventCount:
    group: str
    event: str
    calls: int


def _bucket_start(hour: datetime, bucket: Bucket) -> datetime:
    return hour if bucket == "hour" else hour.replace(hour=0)


def latency_percentiles(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    by: LatencyGroup,
    bucket: Bucket,
    team: str | None = None,
    feature: str | None = None,
    model: str | None = None,
    metrics: Sequence[str] = METRICS,
) -> list[LatencyPoint]:
    """p50/p90/p99 per bucket (UTC hour or day), group and metric, from the sketches of the hours in
    [start, end).

    Day buckets read whole UTC days from the daily sketches and only the hours at the period's edges
    from the hourly ones (grouping by backend reads hours throughout: the daily sketches have merged the
    backends). Each figure is within the sketch's stated relative error (1%) of the exact percentile of
    those calls.
    """
    if by not in ("model", "feature", "backend"):
        raise ValueError(f"by must be model, feature or backend, got {by!r}")
    if bucket not in ("hour", "day"):
        raise ValueError(f"bucket must be hour or day, got {bucket!r}")
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"metrics must be among {', '.join(METRICS)}, got {', '.join(unknown)}")
    # Whole days inside [start, end) on the hourly grid: the hour rows in range are those starting in it.
    first_day = day_of(start) if start == day_of(start) else day_of(start) + timedelta(days=1)
    last_day = day_of(end)
    hour_ranges = [(start, end)]
    merged: dict[tuple[datetime, str, str], Sketch] = {}
    if bucket == "day" and by != "backend" and first_day < last_day:
        hour_ranges = [(start, first_day), (last_day, end)]
        d = LatencyDailySketchRow
        filters = [
            d.day >= first_day,
            d.day < last_day,
            d.metric.in_(metrics),
            *_tag_filters(d, team, feature, model),
        ]
        _merge_rows(
            merged, session.execute(select(d.day, getattr(d, by), d.metric, d.sketch).where(*filters)), bucket
        )
    h = LatencySketchRow
    for low, high in hour_ranges:
        if low >= high:
            continue
        filters = [
            h.hour >= low,
            h.hour < high,
            h.metric.in_(metrics),
            *_tag_filters(h, team, feature, model),
        ]
        _merge_rows(
            merged,
            session.execute(select(h.hour, getattr(h, by), h.metric, h.sketch).where(*filters)),
            bucket,
        )
    by_bucket: dict[datetime, dict[tuple[str, str], Sketch]] = {}
    for (bucket_start, group, metric), sketch in merged.items():
        by_bucket.setdefault(bucket_start, {})[(group, metric)] = sketch
    points: list[LatencyPoint] = []
    for bucket_start in sorted(by_bucket):
        points += _points(bucket_start, by_bucket[bucket_start])
    return points


def _tag_filters(
    table: type[LatencySketchRow] | type[LatencyDailySketchRow],
    team: str | None,
    feature: str | None,
    model: str | None,
) -> list[Any]:
    pairs = ((table.team, team), (table.feature, feature), (table.model, model))
    return [column == value for column, value in pairs if value is not None]


def _merge_rows(merged: dict[tuple[datetime, str, str], Sketch], rows: Iterable[Any], bucket: Bucket) -> None:
    """Merge stored sketches, each row (time, group, metric, sketch text), into ``merged`` per bucket."""
    for moment, group, metric, text in rows:
        key = (_bucket_start(moment, bucket), group, metric)
        sketch = merged.get(key)
        if sketch is None:
            merged[key] = Sketch.from_json(text)
        else:
            sketch.merge(Sketch.from_json(text))


def rolling_percentiles(
    session: Session,
    end: datetime,
    window: timedelta,
    *,
    by: LatencyGroup,
    team: str | None = None,
    feature: str | None = None,
    model: str | None = None,
) -> list[LatencyPoint]:
    """p50/p90/p99 per group and metric over the rolling window [end - window, end), from the ledger
    itself (the newest calls, not rolled up yet); ``bucket_start`` is the window's start. Meant for
    short windows (minutes): it reads every answered call in the window."""
    if by not in ("model", "feature", "backend"):
        raise ValueError(f"by must be model, feature or backend, got {by!r}")
    ledger = TokenLedgerRow
    filters: list[Any] = [
        ledger.started_at >= end - window,
        ledger.started_at < end,
        ledger.status_code < 400,
        ledger.client_disconnected.is_(False),
    ]
    for column, value in ((ledger.team, team), (ledger.feature, feature), (ledger.model, model)):
        if value is not None:
            filters.append(column == value)
    sketches: dict[tuple[str, str], Sketch] = {}

    def add(group: str, metric: str, value: float | None) -> None:
        if value is None:
            return
        sketch = sketches.get((group, metric))
        if sketch is None:
            sketch = sketches[(group, metric)] = Sketch()
        sketch.add(max(value, 0.0))

    for group, ttft, itl, total in session.execute(
        select(getattr(ledger, by), ledger.ttft_ms, ledger.itl_ms, ledger.latency_ms).where(*filters)
    ):
        name = group or NO_BACKEND
        add(name, "ttft", ttft)
        add(name, "itl", itl)
        add(name, "total", total)
    return _points(end - window, sketches)


def _points(bucket_start: datetime, sketches: dict[tuple[str, str], Sketch]) -> list[LatencyPoint]:
    points = []
    for (group, metric), sketch in sorted(sketches.items()):
        p50, p90, p99 = (sketch.quantile(q) for q in (0.5, 0.9, 0.99))
        if p50 is not None and p90 is not None and p99 is not None:
            points.append(LatencyPoint(bucket_start, group, metric, p50, p90, p99, sketch.count))
    return points


def event_counts(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    by: Literal["feature", "model"],
    team: str | None = None,
) -> list[EventCount]:
    """Calls per group and event over the hours in [start, end) (see finops.observability.events)."""
    if by not in ("feature", "model"):
        raise ValueError(f"by must be feature or model, got {by!r}")
    e = CallEventRow
    group = getattr(e, by)
    filters: list[Any] = [e.hour >= start, e.hour < end]
    if team is not None:
        filters.append(e.team == team)
    rows = session.execute(
        select(group, e.event, func.sum(e.calls))
        .where(*filters)
        .group_by(group, e.event)
        .order_by(group, e.event)
    )
    return [EventCount(str(g), str(event), int(calls or 0)) for g, event, calls in rows]


def _scrapes(session: Session, start: datetime, end: datetime) -> list[Scrape]:
    m = BackendMetricsRow
    rows = session.scalars(select(m).where(m.at >= start, m.at < end).order_by(m.backend, m.at))
    return [
        Scrape(
            r.backend,
            r.at,
            r.up,
            r.error,
            r.gpus,
            r.running,
            r.waiting,
            r.kv_cache_usage,
            r.prompt_tokens_total,
            r.generation_tokens_total,
            r.prefix_cache_queries_total,
            r.prefix_cache_hits_total,
            r.prefix_cache_hit_rate,
        )
        for r in rows
    ]


def backend_capacity(session: Session, start: datetime, end: datetime) -> list[CapacityPoint]:
    """Each backend's scrapes in [start, end) with token rates and prefix-cache hit rate, by backend, time."""
    m = BackendMetricsRow
    # The scrape just before ``start`` gives the first point in range its rates.
    before = session.execute(
        select(m.backend, func.max(m.at))
        .where(m.at < start, m.at >= start - timedelta(hours=1))
        .group_by(m.backend)
    ).all()
    earliest = min((at for _, at in before), default=start)
    points = capacity_points(_scrapes(session, earliest, end))
    return [p for p in points if p.at >= start]


def capacity_verdicts(
    session: Session, now: datetime, *, window: timedelta = VERDICT_WINDOW
) -> dict[str, str]:
    """backend -> a plain verdict (memory-bound, compute-bound, over-provisioned, healthy, ...) from the
    scrapes of the last ``window`` before ``now``."""
    now = now.astimezone(UTC)
    m = BackendMetricsRow
    known = session.scalars(
        select(m.backend).where(m.at >= now - KNOWN_BACKENDS_LOOKBACK, m.at <= now).distinct()
    ).all()
    recent: dict[str, list[Scrape]] = {name: [] for name in known}
    for scrape in _scrapes(session, now - window, now + timedelta(microseconds=1)):
        recent.setdefault(scrape.backend, []).append(scrape)
    return {backend: verdict(scrapes) for backend, scrapes in sorted(recent.items())}
