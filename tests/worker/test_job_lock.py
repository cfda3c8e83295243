"""A run that waits on another run of its job gives up after ``jobs.lock_timeout_s`` (Postgres): the
scheduled task is skipped, ``finops jobs run`` says so, and once the other run ends the job runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from finops.cli import main
from finops.config import FinopsConfig, JobsConfig
from finops.db import make_engine, unit_of_work
from finops.jobs import state as job_state
from finops.jobs.models import JobStateRow
from finops.jobs.registry import JobBusy, run_job
from finops.worker.celery_app import TASK_NAME, make_celery
from tests.worker.test_jobs_service import write_config


def test_a_run_behind_a_stuck_run_is_skipped_then_runs(pg_url, tmp_path, capsys):
    config = FinopsConfig(
        database_url=pg_url, jobs=JobsConfig(lock_timeout_s=0.3, scheduled_lock_timeout_s=0.2)
    )
    engine = make_engine(pg_url)
    holder = make_engine(pg_url)
    try:
        run_job(engine, config, "rollups")  # the job's row exists
        with unit_of_work(holder) as stuck:
            # Another run of the rollups job, in the middle of its transaction.
            job_state.claim(stuck, "rollups", datetime.now(UTC))
            with pytest.raises(JobBusy, match=r"another run held its lock for over 0\.3 s; skipped"):
                run_job(engine, config, "rollups")
            # The worker's task waits scheduled_lock_timeout_s, then is skipped (not retried).
            assert make_celery(config).tasks[TASK_NAME].apply(args=("rollups",)).get() == "skipped"
            with pytest.raises(JobBusy, match=r"over 0\.2 s"):
                run_job(engine, config, "rollups", lock_timeout_s=0.2)
            assert main(["jobs", "run", "rollups", "--config", write_config(tmp_path, config)]) == 1
            assert "another run held its lock" in capsys.readouterr().err
            # Jobs with locks of their own are not held up.
            assert run_job(engine, config, "latency_rollups").calls == 0
        # The stuck run ended: the next run goes through.
        run_job(engine, config, "rollups")
        with unit_of_work(engine) as session:
            runs = session.scalar(select(JobStateRow.runs).where(JobStateRow.name == "rollups"))
        # The first run, the stuck one and the last; the skipped ones rolled back.
        assert runs == 3
    finally:
        engine.dispose()
        holder.dispose()


@pytest.mark.parametrize("field", ["lock_timeout_s", "scheduled_lock_timeout_s"])
def test_lock_timeouts_are_bounded_to_what_postgres_takes(field):
    with pytest.raises(ValidationError, match="less than or equal to 2147483"):
        JobsConfig.model_validate({field: 3_000_000})
    with pytest.raises(ValidationError, match="greater than 0"):
        JobsConfig.model_validate({field: 0})
