"""Latency alert rules on synthetic ledgers: which baseline, when an incident opens and closes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from finops.config import FinopsConfig
from finops.db import make_engine, unit_of_work
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from finops.observability.alerts import baseline_hours, decide
from finops.observability.models import LatencyIncidentRow
from tests.support.records import make_record

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)


def rule(**extra: object) -> dict[str, object]:
    return {
        "name": "total-p50",
        "metric": "total",
        "percentile": 50,
        "by": "feature",
        "window_s": 600,
        "min_calls": 3,
        "min_baseline_calls": 10,
        **extra,
    }


def calls(at: datetime, n: int, latency_ms: float, feature: str = "chat", **extra: object) -> list:
    return [
        make_record(started_at=at + timedelta(seconds=i), feature=feature, latency_ms=latency_ms, **extra)
        for i in range(n)
    ]


def test_baseline_hours_prefer_the_same_hours_of_the_week():
    config = FinopsConfig(latency_alerts=[rule(baseline_weeks=2)])
    kinds = baseline_hours(config.latency_alerts[0], NOW - timedelta(minutes=40), NOW)
    week = [h for h, k in kinds.items() if k == "hour_of_week"]
    day = [h for h, k in kinds.items() if k == "trailing_day"]
    assert sorted(week) == [
        datetime(2026, 11, 16, 11, tzinfo=UTC),
        datetime(2026, 11, 16, 12, tzinfo=UTC),
        datetime(2026, 11, 23, 11, tzinfo=UTC),
        datetime(2026, 11, 23, 12, tzinfo=UTC),
    ]
    assert len(day) == 24 and min(day) == datetime(2026, 11, 29, 11, tzinfo=UTC)
    assert max(day) == datetime(2026, 11, 30, 10, tzinfo=UTC)


def test_hour_of_week_baseline_when_enough_history_else_trailing_day(db_url):
    engine = make_engine(db_url)
    config = FinopsConfig(database_url=db_url, latency_alerts=[rule()])
    try:
        insert_records(
            engine,
            # chat: a week ago at this hour, 12 calls at 100 ms (enough); yesterday 500 ms.
            calls(NOW - timedelta(days=7, minutes=5), 12, 100.0)
            + calls(NOW - timedelta(hours=5), 5, 500.0)
            # search: only 4 calls a week ago (too few): yesterday's 50 ms rules.
            + calls(NOW - timedelta(days=7, minutes=5), 4, 1000.0, feature="search")
            + calls(NOW - timedelta(hours=5), 5, 50.0, feature="search")
            # rag: no history at all: never judged, however slow.
            + calls(NOW - timedelta(minutes=5), 5, 99_000.0, feature="rag")
            # The window: chat at 250 ms (2.5x its week-old 100, under 2x yesterday's 500), search at 90.
            + calls(NOW - timedelta(minutes=5), 5, 250.0)
            + calls(NOW - timedelta(minutes=5), 5, 90.0, feature="search"),
        )
        run_job(engine, config, "latency_rollups", now=NOW)
        result = run_job(engine, config, "latency_alerts", now=NOW)
        assert (result.fired, result.resolved, result.judged) == (1, 0, 2)
        with unit_of_work(engine) as session:
            incident = session.scalars(select(LatencyIncidentRow)).one()
        assert (incident.group_value, incident.baseline_kind) == ("chat", "hour_of_week")
        assert abs(incident.baseline_ms - 100.0) <= 1.0 and abs(incident.observed_ms - 250.0) <= 2.5
        # No channels configured: the incident is recorded, nothing is enqueued, and a rerun adds nothing.
        assert run_job(engine, config, "latency_alerts", now=NOW).fired == 0
    finally:
        engine.dispose()


def test_too_few_calls_in_the_window_keeps_the_state(db_url):
    engine = make_engine(db_url)
    config = FinopsConfig(database_url=db_url, latency_alerts=[rule()])
    try:
        insert_records(
            engine, calls(NOW - timedelta(hours=2), 20, 100.0) + calls(NOW - timedelta(minutes=5), 5, 900.0)
        )
        run_job(engine, config, "latency_rollups", now=NOW)
        assert run_job(engine, config, "latency_alerts", now=NOW).fired == 1
        # Ten minutes on, the window holds 2 fast calls: too few to call it resolved.
        later = NOW + timedelta(minutes=10)
        insert_records(engine, calls(later - timedelta(minutes=1), 2, 90.0))
        assert run_job(engine, config, "latency_alerts", now=later).resolved == 0
        insert_records(engine, calls(later - timedelta(seconds=30), 3, 95.0))
        assert run_job(engine, config, "latency_alerts", now=later).resolved == 1
    finally:
        engine.dispose()


@given(st.lists(st.floats(0, 1000), max_size=60), st.floats(1, 500))
def test_an_incident_alerts_once_when_it_starts_and_once_when_it_ends(observations, threshold):
    open_, fires, resolves = False, 0, 0
    for observed in observations:
        action = decide(open_, observed, threshold)
        if action == "fire":
            assert not open_
            open_, fires = True, fires + 1
        elif action == "resolve":
            assert open_
            open_, resolves = False, resolves + 1
        assert open_ == (observed > threshold)  # after each run, the state says what was measured
    assert fires - resolves == (1 if open_ else 0)
