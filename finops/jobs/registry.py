"""Every scheduled job in one place: its name, what it does, how often, and how to run it once.

Celery beat, the worker's task, ``finops jobs run`` and the tests all go through ``run_job``, so a
job behaves the same whoever starts it: one transaction, committed when it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
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
    )
}


class UnknownJob(KeyError):
    pass


def run_job(
    engine: Engine,
    config: FinopsConfig,
    name: str,
    *,
    now: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Any:
    job = JOBS.get(name)
    if job is None:
        raise UnknownJob(f"no job named {name!r}; known: {', '.join(sorted(JOBS))}")
    with unit_of_work(engine) as session:
        return job.runner(session, config, now, start, end)
