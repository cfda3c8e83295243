"""Backend rates with effective dates: each window is attributed at the rate in force for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from finops.attribution import BackendRate
from finops.attribution.models import GpuLedgerRow
from finops.attribution.service import RateSchedule
from finops.config import AttributionConfig, BackendConfig, BackendRateConfig, FinopsConfig
from finops.db import make_engine, unit_of_work
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from tests.support.records import make_record

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


def test_spans_cut_where_the_rate_changes_from_the_next_whole_window():
    old, new = BackendRate("a", 1, 1), BackendRate("a", 2, 1)
    schedule = RateSchedule("a", ((-(2**62), old), (2_500_000, new)))
    assert schedule.spans(0, 6_000_000, 1_000_000) == [(0, 3_000_000, old), (3_000_000, 6_000_000, new)]
    assert schedule.spans(4_000_000, 6_000_000, 1_000_000) == [(4_000_000, 6_000_000, new)]


def test_windows_after_a_rate_change_use_the_new_rate(db_url):
    config = FinopsConfig(
        database_url=db_url,
        attribution=AttributionConfig(window_s=1, close_delay_s=0),
        backends=[
            BackendConfig(
                name="gpu-a",
                url="http://127.0.0.1:9",
                models=["m"],
                gpus=1,
                usd_per_gpu_hour="3.6",
                rates=[
                    BackendRateConfig(
                        effective_from=T0 + timedelta(seconds=2.5), gpus=2, usd_per_gpu_hour="7.2"
                    )
                ],
            )
        ],
    )
    engine = make_engine(db_url)
    insert_records(engine, [make_record(started_at=T0, ended_at=T0 + timedelta(seconds=5), backend="gpu-a")])
    run_job(engine, config, "attribution", now=T0 + timedelta(seconds=6))
    with unit_of_work(engine) as session:
        windows = session.execute(
            select(
                GpuLedgerRow.window_start,
                func.sum(GpuLedgerRow.gpu_seconds),
                func.sum(GpuLedgerRow.cost_nusd),
            )
            .group_by(GpuLedgerRow.window_start)
            .order_by(GpuLedgerRow.window_start)
        ).all()
    engine.dispose()
    # 3.6 USD/h on 1 GPU is 1,000,000 nano-USD a second; 2 GPUs at 7.2 USD/h is four times that.
    assert [(w - T0).total_seconds() for w, _, _ in windows] == [0, 1, 2, 3, 4, 5]
    assert [Decimal(s) for _, s, _ in windows] == [Decimal(1)] * 3 + [Decimal(2)] * 3
    assert [int(c) for _, _, c in windows] == [1_000_000] * 3 + [4_000_000] * 3


def test_a_backlog_is_worked_off_a_slice_per_run(db_url):
    from finops.attribution.service import MAX_WINDOWS_PER_RUN

    config = FinopsConfig(
        database_url=db_url,
        attribution=AttributionConfig(window_s=1, close_delay_s=0),
        backends=[
            BackendConfig(name="gpu-a", url="http://127.0.0.1:9", models=["m"], usd_per_gpu_hour="3.6")
        ],
    )
    engine = make_engine(db_url)
    insert_records(engine, [make_record(started_at=T0, ended_at=T0 + timedelta(seconds=10), backend="gpu-a")])
    backlog_s = MAX_WINDOWS_PER_RUN + 500
    first = run_job(engine, config, "attribution", now=T0 + timedelta(seconds=backlog_s))
    second = run_job(engine, config, "attribution", now=T0 + timedelta(seconds=backlog_s))
    third = run_job(engine, config, "attribution", now=T0 + timedelta(seconds=backlog_s))
    assert (first.windows, second.windows, third.windows) == (MAX_WINDOWS_PER_RUN, 500, 0)
    with unit_of_work(engine) as session:
        total = session.scalar(select(func.sum(GpuLedgerRow.gpu_seconds)))
    engine.dispose()
    assert Decimal(total) == backlog_s
