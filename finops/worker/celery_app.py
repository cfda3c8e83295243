"""The one Celery app: broker from config, the beat schedule from the job registry, one thin task.

Production: a Redis broker (``broker_url: redis://...``). Embedded default: kombu's filesystem
transport in ``worker.broker_dir``, which needs no server, so ``finops up`` runs a real worker and beat
on one machine without Redis.

The task is thin on purpose: it opens a unit of work and calls the job's service (``run_job``). Jobs
lock their own state row, so two workers running one job at once, or a retry after a crash, do the
work once.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from finops.config import FinopsConfig, load_config
from finops.db import make_engine
from finops.jobs.registry import JOBS, JobBusy, run_job

log = logging.getLogger("finops.worker")
TASK_NAME = "finops.run_job"


def broker_settings(config: FinopsConfig) -> dict[str, Any]:
    if config.broker_url:
        return {"broker_url": config.broker_url}
    folder = Path(config.worker.broker_dir).resolve()
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "broker_url": "filesystem://",
        "broker_transport_options": {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            # Broadcast (pidbox) files: kombu's default is ./control, wherever the worker was started.
            "control_folder": str(folder / "control"),
        },
    }


def beat_schedule(config: FinopsConfig) -> dict[str, Any]:
    return {
        f"finops-{job.name}": {
            "task": TASK_NAME,
            "schedule": job.every_s(config),
            "args": (job.name,),
            # A run that could not start before the next one is due is dropped, not queued.
            "options": {"expires": job.every_s(config)},
        }
        for job in JOBS.values()
    }


@functools.cache
def _engine(database_url: str) -> Engine:
    return make_engine(database_url)


def make_celery(config: FinopsConfig) -> Celery:
    app = Celery("finops")
    app.conf.update(
        **broker_settings(config),
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        beat_schedule=beat_schedule(config),
    )

    @app.task(  # type: ignore[untyped-decorator]
        name=TASK_NAME,
        bind=True,
        autoretry_for=(OperationalError,),
        retry_backoff=True,
        retry_backoff_max=60,
        max_retries=10,
    )
    def run_job_task(self: Any, name: str, start: str | None = None, end: str | None = None) -> str:
        try:
            result = run_job(
                _engine(config.database_url),
                config,
                name,
                start=datetime.fromisoformat(start) if start else None,
                end=datetime.fromisoformat(end) if end else None,
                lock_timeout_s=config.jobs.scheduled_lock_timeout_s,
            )
        except JobBusy as exc:
            # Not retried: the next scheduled run does the work once the stuck one is gone.
            log.warning("%s", exc)
            return "skipped"
        log.info("job %s: %s", name, result)
        return repr(result)

    _register_delivery(app, config)
    return app


DELIVER_TASK_NAME = "finops.deliver_alert"


def _register_delivery(app: Celery, config: FinopsConfig) -> None:
    """One task per alert delivery, retried with exponential backoff while the channel fails (the row
    holds the truth: attempts, status, last error; see finops.alerts.outbox)."""
    from finops.alerts import outbox

    @app.task(  # type: ignore[untyped-decorator]
        name=DELIVER_TASK_NAME,
        autoretry_for=(outbox.DeliveryRetry, OperationalError),
        retry_backoff=True,
        retry_backoff_max=outbox.BACKOFF_MAX_S,
        retry_jitter=False,
        max_retries=outbox.MAX_ATTEMPTS,
    )
    def deliver_alert_task(delivery_id: int) -> str:
        outcome = outbox.deliver(_engine(config.database_url), config, delivery_id)
        if outcome.status == "pending":
            raise outbox.DeliveryRetry(outcome.error)
        return outcome.status

    def dispatch(ids: list[int]) -> None:
        for delivery_id in ids:
            deliver_alert_task.delay(delivery_id)

    # Rows committed by any job in this process (budgets, latency alerts) start their delivery at once.
    outbox.set_dispatcher(dispatch)


def app_from_environment() -> Celery:
    """For ``celery -A finops.worker.celery_app:app_from_environment`` users: config from $FINOPS_CONFIG."""
    return make_celery(load_config())
