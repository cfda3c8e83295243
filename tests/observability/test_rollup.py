"""The latency rollup job and its reads: sketches per hour merge into days, within the stated error."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from finops.config import FinopsConfig
from finops.db import make_engine, unit_of_work
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from finops.observability.models import LatencySketchRow
from finops.observability.queries import event_counts, latency_percentiles, rolling_percentiles
from finops.observability.sketch import RELATIVE_ACCURACY
from tests.support.records import make_record

T0 = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def calls(
    seed: int, n: int, start: datetime = T0, span: timedelta = timedelta(hours=3), streamed_share: float = 0.7
) -> list:
    """``n`` answered calls in [start, start + span) over two models, features, teams and backends."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        model = rng.choice(["llama-8b", "qwen-1b"])
        streamed = rng.random() < streamed_share
        ttft = rng.lognormvariate(4, 1) if streamed else None
        records.append(
            make_record(
                started_at=start + timedelta(seconds=rng.uniform(0, span.total_seconds())),
                model=model,
                feature=rng.choice(["chat", "search"]),
                team=rng.choice(["a", "b"]),
                backend=rng.choice(["gpu-a", "gpu-b"]),
                streamed=streamed,
                ttft_ms=ttft,
                itl_ms=rng.uniform(5, 60) if streamed else None,
                latency_ms=(ttft or 0) + rng.expovariate(1 / 500),
            )
        )
    return records


def close(estimate: float, value: float) -> bool:
    return abs(estimate - value) <= RELATIVE_ACCURACY * value * (1 + 1e-9)


def test_percentiles_by_hour_and_day_match_exact_within_the_error(db_url):
    engine = make_engine(db_url)
    config = FinopsConfig(database_url=db_url)
    first, second = calls(1, 700), calls(2, 500)
    try:
        # Two runs, the second merging into hours the first wrote.
        insert_records(engine, first)
        assert run_job(engine, config, "latency_rollups", now=T0 + timedelta(hours=3)).calls == 700
        insert_records(engine, second)
        assert run_job(engine, config, "latency_rollups", now=T0 + timedelta(hours=3)).calls == 500
        assert run_job(engine, config, "latency_rollups", now=T0 + timedelta(hours=3)).calls == 0
        records = first + second
        with unit_of_work(engine) as session:
            by_day = latency_percentiles(
                session, T0 - timedelta(days=1), T0 + timedelta(days=1), by="model", bucket="day"
            )
            by_hour = latency_percentiles(
                session, T0, T0 + timedelta(hours=3), by="feature", bucket="hour", team="a"
            )
            stored = {
                (r.hour, r.team, r.feature, r.model, r.backend, r.metric): r.sketch
                for r in session.scalars(select(LatencySketchRow))
            }
        # T0 is 22:00: the three hours span two UTC days.
        days = sorted({p.bucket_start for p in by_day})
        assert days == [datetime(2026, 11, 29, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)]
        for point in by_day:
            metric_of = {"ttft": "ttft_ms", "itl": "itl_ms", "total": "latency_ms"}[point.metric]
            values = [
                getattr(r, metric_of)
                for r in records
                if r.model == point.group
                and r.started_at.date() == point.bucket_start.date()
                and getattr(r, metric_of) is not None
            ]
            assert point.count == len(values) > 0
            for q, estimate in ((0.5, point.p50_ms), (0.9, point.p90_ms), (0.99, point.p99_ms)):
                assert close(estimate, exact(values, q)), (point, q)
        assert {p.metric for p in by_day} == {"ttft", "itl", "total"}
        for point in by_hour:
            values = [
                r.latency_ms
                for r in records
                if r.team == "a"
                and r.feature == point.group
                and r.started_at.replace(minute=0, second=0, microsecond=0) == point.bucket_start
            ]
            if point.metric == "total":
                assert point.count == len(values)
                assert close(point.p90_ms, exact(values, 0.9))

        # Rebuilding the hours from the ledger gives the same sketches as merging run by run.
        run_job(engine, config, "latency_rollups", start=T0, end=T0 + timedelta(hours=3))
        with unit_of_work(engine) as session:
            rebuilt = {
                (r.hour, r.team, r.feature, r.model, r.backend, r.metric): r.sketch
                for r in session.scalars(select(LatencySketchRow))
            }
        assert rebuilt == stored
    finally:
        engine.dispose()


def test_failed_and_abandoned_calls_are_not_latency_but_are_events(db_url):
    engine = make_engine(db_url)
    config = FinopsConfig(database_url=db_url, observability={"context_limit_tokens": {"llama-8b": 1000}})
    at = T0 + timedelta(minutes=5)
    try:
        insert_records(
            engine,
            [
                make_record(started_at=at, feature="chat", latency_ms=100.0),
                make_record(started_at=at, feature="chat", latency_ms=120.0, finish_reason="length"),
                make_record(started_at=at, feature="chat", prompt_tokens=5000, latency_ms=900.0),
                make_record(started_at=at, feature="chat", status_code=400, error_type="context_overflow",
                            prompt_tokens=0, finish_reason=None, latency_ms=3.0),
                make_record(started_at=at, feature="rag", status_code=499, error_type="client_disconnected",
                            client_disconnected=True, finish_reason=None, latency_ms=50_000.0),
                make_record(started_at=at, feature="rag", team="other", status_code=503,
                            error_type="upstream_error", finish_reason=None, latency_ms=2.0),
            ],
        )  # fmt: skip
        run_job(engine, config, "latency_rollups", now=at)
        with unit_of_work(engine) as session:
            points = latency_percentiles(session, T0, T0 + timedelta(hours=1), by="feature", bucket="hour")
            events = event_counts(session, T0, T0 + timedelta(hours=1), by="feature", team="search")
            everyone = event_counts(session, T0, T0 + timedelta(hours=1), by="model")
        totals = {p.group: p.count for p in points if p.metric == "total"}
        assert totals == {"chat": 3}
        assert [(e.group, e.event, e.calls) for e in events] == [
            ("chat", "context_over_limit", 1),
            ("chat", "context_overflow", 1),
            ("chat", "truncated", 1),
            ("rag", "client_disconnected", 1),
        ]
        assert ("llama-8b", "upstream_server_error", 1) in [(e.group, e.event, e.calls) for e in everyone]
    finally:
        engine.dispose()


def test_bad_arguments_are_clear(db_url):
    engine = make_engine(db_url)
    try:
        with unit_of_work(engine) as session, pytest.raises(ValueError, match="by must be"):
            latency_percentiles(session, T0, T0, by="team", bucket="hour")  # type: ignore[arg-type]
        with unit_of_work(engine) as session, pytest.raises(ValueError, match="bucket must be"):
            latency_percentiles(session, T0, T0, by="model", bucket="week")  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_rolling_window_reads_the_newest_calls(db_url):
    engine = make_engine(db_url)
    end = T0 + timedelta(minutes=30)
    try:
        insert_records(
            engine,
            [
                make_record(started_at=end - timedelta(minutes=5, seconds=i), latency_ms=float(100 + i))
                for i in range(20)
            ]
            + [make_record(started_at=end - timedelta(minutes=20), latency_ms=5000.0)]  # before the window
            + [make_record(started_at=end - timedelta(minutes=1), status_code=500, latency_ms=1.0)],  # failed
        )
        with unit_of_work(engine) as session:
            points = rolling_percentiles(session, end, timedelta(minutes=10), by="model")
        assert [(p.group, p.metric, p.count) for p in points] == [("llama-8b", "total", 20)]
        assert close(points[0].p50_ms, exact([float(100 + i) for i in range(20)], 0.5))
        assert points[0].bucket_start == end - timedelta(minutes=10)
    finally:
        engine.dispose()
