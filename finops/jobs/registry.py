"""Every scheduled job in one place: its name, what it does, how often, and how to run it once.

Celery beat, the worker's task, ``finops jobs run`` and the tests all go through ``run_job``, so a
job behaves the same whoever starts it: one transaction, committed when it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from finops.config import FinopsConfig
from finops.db import unit_of_work

Runner = Callable[[Session, FinopsConfig, datetime | None, datetime | None, datetime | None], Any]


def _attribution(
    session: Session, config: FinopsConfig, now: datetime | None, start: datetime | None, end: datetime | None
) -> Any:
    from finops.attribution.service import reattribute, run_attribution

    if start is not None and end is not None:
        return reattribute(session, config, start, end)
    return run_attribution(session, config, now)


def _rollups(
    session: Session, config: FinopsConfig, now: datetime | None, start: datetime | None, end: datetime | None
) -> Any:
    from finops.rollups.service import recompute_range, run_rollups

    if start is not None and end is not None:
        return recompute_range(session, start, end)
    return run_rollups(session, now)


def _traces(
    session: Session, config: FinopsConfig, now: datetime | None, start: datetime | None, end: datetime | None
) -> Any:
    from finops.traces.service import recompute_traces, run_traces

    if start is not None and end is not None:
        return recompute_traces(session, start, end)
    return run_traces(session, config, now)


def _budgets(
    session: Session, config: FinopsConfig, now: datetime | None, start: datetime | None, end: datetime | None
) -> Any:
    from finops.budgets.job import run_budgets

    # Budgets are evaluated for the period holding ``now``; a range has nothing to recompute.
    return run_budgets(session, config, now)


def _latency_rollups(
    session: Session, config: FinopsConfig, now: datetime | None, start: datetime | None, end: datetime | None
) -> Any:
    from finops.observability.rollup import recompute_latency_range, run_latency_rollups

    if start is not None and end is not None:
        return recompute_latency_range(session, config, start, end)
    return run_latency_rollups(session, config, now)


def _latency_alerts(
    session: Session, config: FinopsConfig, now: datetime | None, start: datetime | None, end: datetime | None
) -> Any:
    from finops.observability.alerts import run_latency_alerts

    return run_latency_alerts(session, config, now)


def _backend_scrape(
    session: Session, config: FinopsConfig, now: datetime | None, start: datetime | None, end: datetime | None
) -> Any:
    from finops.observability.scrape import scrape_backends

    return scrape_backends(session, config, now)


def _limits(
    session: Session, config: FinopsConfig, now: datetime | None, start: datetime | None, end: datetime | None
) -> Any:
    from finops.limits.job import run_limits

    # Counters hold the period holding ``now``; a range has nothing to recompute.
    return run_limits(session, config, now)


def _exports(
    session: Session, config: FinopsConfig, now: datetime | None, start: datetime | None, end: datetime | None
) -> Any:
    from finops.exports.monthly import run_monthly

    return run_monthly(session, config, now, start, end)


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    runner: Runner
    every_s: Callable[[FinopsConfig], float]


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job(
            "attribution",
            "split each closed window's GPU time among the calls in flight, idle apart",
            _attribution,
            lambda c: c.jobs.attribution_every_s,
        ),
        Job(
            "rollups",
            "hourly totals by team, feature, model and backend for the hours that changed",
            _rollups,
            lambda c: c.jobs.rollups_every_s,
        ),
        Job(
            "traces",
            "close traces quiet for traces.quiet_s and compute their amplification and breakdown",
            _traces,
            lambda c: c.jobs.traces_every_s,
        ),
        Job(
            "budgets",
            "each budget's spend this month against its thresholds and forecast; alerts exactly once",
            _budgets,
            lambda c: c.jobs.budgets_every_s,
        ),
        Job(
            "latency_rollups",
            "hourly latency sketches (ttft, itl, total) and call-event counts, merged in as calls arrive",
            _latency_rollups,
            lambda c: c.observability.latency_rollups_every_s,
        ),
        Job(
            "latency_alerts",
            "each latency_alerts rule's percentile against factor x its baseline; alerts once per incident",
            _latency_alerts,
            lambda c: c.observability.latency_alerts_every_s,
        ),
        Job(
            "backend_scrape",
            "each backend's vLLM /metrics (queue, KV cache, token and prefix-cache counters)",
            _backend_scrape,
            lambda c: c.observability.scrape_every_s,
        ),
        Job(
            "limits",
            "set the hard-limit counters in Redis to each budget's ledger spend this period",
            _limits,
            lambda c: c.jobs.limits_every_s,
        ),
        Job(
            "exports",
            "write last month's FOCUS and ledger CSV files to exports.folder, once each",
            _exports,
            lambda c: c.exports.monthly_every_s,
        ),
    )
}


class UnknownJob(KeyError):
    pass


class JobBusy(RuntimeError):
    """Another run held the job's lock for longer than ``jobs.lock_timeout_s``: this run did nothing."""


def run_job(
    engine: Engine,
    config: FinopsConfig,
    name: str,
    *,
    now: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    lock_timeout_s: float | None = None,
) -> Any:
    """Run job ``name`` once in one transaction. A wait for another run's lock longer than
    ``lock_timeout_s`` (default ``jobs.lock_timeout_s``) raises JobBusy, having done nothing."""
    job = JOBS.get(name)
    if job is None:
        raise UnknownJob(f"no job named {name!r}; known: {', '.join(sorted(JOBS))}")
    timeout_s = config.jobs.lock_timeout_s if lock_timeout_s is None else lock_timeout_s
    try:
        with unit_of_work(engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                # For this transaction only; every lock wait in it (the job rows first of all) is bounded.
                timeout_ms = max(1, round(timeout_s * 1000))
                session.execute(text(f"SET LOCAL lock_timeout = {timeout_ms}"))
            return job.runner(session, config, now, start, end)
    except OperationalError as exc:
        if _is_lock_timeout(exc):
            raise JobBusy(
                f"job {name!r}: another run held its lock for over {timeout_s:g} s; skipped"
            ) from exc
        raise


def _is_lock_timeout(exc: OperationalError) -> bool:
    # psycopg's LockNotAvailable (SQLSTATE 55P03), without importing psycopg where it is not installed.
    return getattr(exc.orig, "sqlstate", None) == "55P03"
