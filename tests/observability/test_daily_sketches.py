"""Daily latency sketches: always the merge of their hours, read for whole days, filled by migration 0011."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from finops.config import FinopsConfig
from finops.db import make_engine, unit_of_work
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from finops.migrate import downgrade, upgrade
from finops.observability.models import LatencyDailySketchRow, LatencySketchRow
from finops.observability.queries import latency_percentiles
from finops.observability.rollup import rebuild_daily_sketches
from finops.observability.sketch import RELATIVE_ACCURACY, Sketch
from tests.observability.test_rollup import calls as rollup_calls

# Calls over 50 hours from 22:00: a partial day, a whole day, a partial day.
T0 = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
SPAN = timedelta(hours=50)
COLUMN = {"ttft": "ttft_ms", "itl": "itl_ms", "total": "latency_ms"}


def calls(seed: int, n: int) -> list:
    return rollup_calls(seed, n, start=T0, span=SPAN, streamed_share=0.8)


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def hourly_merged_per_day(session) -> dict[tuple, Sketch]:
    h = LatencySketchRow
    days: dict[tuple, Sketch] = {}
    for row in session.scalars(select(h)):
        key = (row.hour.replace(hour=0), row.team, row.feature, row.model, row.metric)
        days.setdefault(key, Sketch()).merge(Sketch.from_json(row.sketch))
    return days


def daily_rows(session) -> dict[tuple, Sketch]:
    d = LatencyDailySketchRow
    rows = {}
    for row in session.scalars(select(d)):
        sketch = Sketch.from_json(row.sketch)
        assert row.calls == sketch.count
        rows[(row.day, row.team, row.feature, row.model, row.metric)] = sketch
    return rows


def test_daily_sketches_are_the_merge_of_their_hours_run_by_run_and_rebuilt(db_url):
    engine = make_engine(db_url)
    config = FinopsConfig(database_url=db_url)
    now = T0 + SPAN
    try:
        for seed, n in ((1, 400), (2, 300), (3, 200)):
            insert_records(engine, calls(seed, n))
            assert run_job(engine, config, "latency_rollups", now=now).calls == n
        with unit_of_work(engine) as session:
            stored = daily_rows(session)
            assert stored == hourly_merged_per_day(session)
            assert {key[0] for key in stored} == {
                datetime(2026, 11, 27, tzinfo=UTC),
                datetime(2026, 11, 28, tzinfo=UTC),
                datetime(2026, 11, 29, tzinfo=UTC),
            }
        # Rebuilding some hours from the ledger rebuilds their days, without counting anything twice.
        run_job(engine, config, "latency_rollups", start=T0 + timedelta(hours=5), end=T0 + timedelta(hours=7))
        with unit_of_work(engine) as session:
            assert daily_rows(session) == stored
            assert rebuild_daily_sketches(session, T0, T0 + SPAN) == len(stored)
        with unit_of_work(engine) as session:
            assert daily_rows(session) == stored
    finally:
        engine.dispose()


def test_day_buckets_read_whole_days_and_edge_hours_exactly(db_url):
    engine = make_engine(db_url)
    config = FinopsConfig(database_url=db_url)
    records = calls(4, 1500)
    # From 23:00 on the first day to 10:00 on the third: an edge hour, a whole day, ten edge hours.
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=36)
    try:
        insert_records(engine, records)
        run_job(engine, config, "latency_rollups", now=T0 + SPAN)
        with unit_of_work(engine) as session:
            points = latency_percentiles(
                session, start, end, by="feature", bucket="day", team="a", metrics=("ttft", "total")
            )
            by_backend = latency_percentiles(
                session, start, end, by="backend", bucket="day", metrics=("itl",)
            )
        assert {p.metric for p in points} == {"ttft", "total"}
        assert {p.bucket_start for p in points} == {
            datetime(2026, 11, 27, tzinfo=UTC),
            datetime(2026, 11, 28, tzinfo=UTC),
            datetime(2026, 11, 29, tzinfo=UTC),
        }
        checked = [("feature", p) for p in points] + [("backend", p) for p in by_backend]
        for group_of, point in checked:
            values = [
                getattr(r, COLUMN[point.metric])
                for r in records
                if start <= r.started_at < end
                and r.started_at.replace(hour=0, minute=0, second=0, microsecond=0) == point.bucket_start
                and getattr(r, group_of) == point.group
                and (group_of == "backend" or r.team == "a")
                and getattr(r, COLUMN[point.metric]) is not None
            ]
            assert point.count == len(values) > 0, point
            for q, estimate in ((0.5, point.p50_ms), (0.9, point.p90_ms), (0.99, point.p99_ms)):
                exact_value = exact(values, q)
                assert abs(estimate - exact_value) <= RELATIVE_ACCURACY * exact_value * (1 + 1e-9), (point, q)
        assert {p.group for p in by_backend} == {"gpu-a", "gpu-b"}
    finally:
        engine.dispose()


def test_unknown_metric_is_refused(db_url):
    engine = make_engine(db_url)
    try:
        with (
            unit_of_work(engine) as session,
            pytest.raises(ValueError, match="metrics must be among ttft, itl, total, got p99"),
        ):
            latency_percentiles(session, T0, T0 + SPAN, by="model", bucket="day", metrics=("p99",))
    finally:
        engine.dispose()


def test_migration_fills_the_daily_sketches_from_the_hourly_ones(db_url):
    engine = make_engine(db_url)
    config = FinopsConfig(database_url=db_url)
    try:
        insert_records(engine, calls(5, 600))
        run_job(engine, config, "latency_rollups", now=T0 + SPAN)
        with unit_of_work(engine) as session:
            written = daily_rows(session)
        downgrade(db_url, "0010")
        upgrade(db_url)
        with unit_of_work(engine) as session:
            assert daily_rows(session) == written == hourly_merged_per_day(session)
            # The same stored text as the job writes, so later merges read it alike.
            texts = {r.day: r.sketch for r in session.scalars(select(LatencyDailySketchRow))}
            assert all(text.startswith('{"z":') for text in texts.values())
    finally:
        engine.dispose()
