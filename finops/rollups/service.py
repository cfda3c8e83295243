"""The rollup job: hourly totals by team, feature, model and backend, recomputed for touched hours.

An hour is touched when a ledger call started in it since the last run, or when the attribution job
rewrote GPU rows in it (``rollup_dirty_hours``). A touched hour is recomputed whole from the ledgers
(delete, aggregate, insert), so a rerun gives the same rows and nothing is counted twice.

Tokens and their cost count in the hour the call started; GPU time counts in the hour of each window,
so a call that spans an hour boundary has its GPU-seconds split across both hours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.orm import Session

from finops.attribution.models import GpuLedgerRow
from finops.jobs import state as job_state
from finops.ledger.models import TokenLedgerRow
from finops.rollups.models import IDLE, RollupDirtyHourRow, UsageRollupRow

JOB = "rollups"
HOUR = timedelta(hours=1)
ZERO = Decimal(0)
MAX_NEW_ROWS_PER_RUN = 1_000_000


@dataclass
class Totals:
    calls: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    token_cost_nusd: int = 0
    gpu_seconds: Decimal = ZERO
    gpu_cost_nusd: int = 0
    idle_gpu_seconds: Decimal = ZERO
    idle_cost_nusd: int = 0
    # The two parts of token_cost_nusd (last, so that positional construction keeps working).
    prompt_cost_nusd: int = 0
    completion_cost_nusd: int = 0


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def aggregate_hour(session: Session, hour: datetime) -> dict[tuple[str, str, str, str], Totals]:
    end = hour + HOUR
    ledger = TokenLedgerRow
    totals: dict[tuple[str, str, str, str], Totals] = {}
    # Each grouped expression is built once and used in SELECT and GROUP BY alike: two coalesce() calls
    # would carry two bind parameters, which Postgres treats as different expressions.
    backend = func.coalesce(ledger.backend, IDLE)
    token_rows = session.execute(
        select(
            ledger.team,
            ledger.feature,
            ledger.model,
            backend,
            func.count(),
            func.sum(case((ledger.status_code >= 400, 1), else_=0)),
            func.sum(ledger.prompt_tokens),
            func.sum(ledger.completion_tokens),
            func.sum(ledger.cost_nusd),
            func.sum(ledger.prompt_cost_nusd),
            func.sum(ledger.completion_cost_nusd),
        )
        .where(ledger.started_at >= hour, ledger.started_at < end)
        .group_by(ledger.team, ledger.feature, ledger.model, backend)
    )
    for row in token_rows:
        team, feature, model, call_backend, calls, errors, prompt, completion, cost = row[:9]
        prompt_cost, completion_cost = row[9:]
        t = totals.setdefault((team, feature, model, call_backend), Totals())
        t.calls, t.errors = int(calls), int(errors or 0)
        t.prompt_tokens, t.completion_tokens, t.token_cost_nusd = (
            int(prompt or 0),
            int(completion or 0),
            int(cost or 0),
        )
        t.prompt_cost_nusd, t.completion_cost_nusd = int(prompt_cost or 0), int(completion_cost or 0)

    gpu = GpuLedgerRow
    grouped = (
        func.coalesce(gpu.team, IDLE),
        func.coalesce(gpu.feature, IDLE),
        func.coalesce(gpu.model, IDLE),
        gpu.backend,
        gpu.request_id.is_(None),
    )
    gpu_rows = session.execute(
        select(*grouped, func.sum(gpu.gpu_seconds), func.sum(gpu.cost_nusd))
        .where(gpu.window_start >= hour, gpu.window_start < end)
        .group_by(*grouped)
    )
    for team, feature, model, gpu_backend, idle, seconds, cost in gpu_rows:
        key = (IDLE, IDLE, IDLE, gpu_backend) if idle else (team, feature, model, gpu_backend)
        t = totals.setdefault(key, Totals())
        if idle:
            t.idle_gpu_seconds += Decimal(seconds or 0)
            t.idle_cost_nusd += int(cost or 0)
        else:
            t.gpu_seconds += Decimal(seconds or 0)
            t.gpu_cost_nusd += int(cost or 0)
    return totals


def recompute_hours(session: Session, hours: Iterable[datetime]) -> int:
    written = 0
    for hour in sorted(set(hours)):
        session.execute(delete(UsageRollupRow).where(UsageRollupRow.hour == hour))
        values: list[dict[str, Any]] = [
            {"hour": hour, "team": team, "feature": feature, "model": model, "backend": backend, **vars(t)}
            for (team, feature, model, backend), t in aggregate_hour(session, hour).items()
        ]
        if values:
            session.execute(insert(UsageRollupRow), values)
        written += len(values)
    return written


@dataclass(frozen=True)
class RollupResult:
    hours: int
    rows: int


def run_rollups(session: Session, now: datetime | None = None) -> RollupResult:
    now = now or datetime.now(UTC)
    state = job_state.claim_ledger_job(session, JOB, now)
    ledger = TokenLedgerRow
    new = job_state.read_unseen(session, state, ledger.id, ledger.started_at, limit=MAX_NEW_ROWS_PER_RUN)
    hours = {hour_of(r.started_at) for r in new}
    dirty = set(session.scalars(select(RollupDirtyHourRow.hour)))
    hours |= {hour_of(h) for h in dirty}
    written = recompute_hours(session, hours)
    if dirty:
        session.execute(delete(RollupDirtyHourRow).where(RollupDirtyHourRow.hour.in_(dirty)))
    job_state.save(session, JOB, job_state.read_new_ids(state, [r.id for r in new], now.timestamp()))
    return RollupResult(len(hours), written)


def recompute_range(session: Session, start: datetime, end: datetime) -> RollupResult:
    """Recompute every hour that overlaps [start, end)."""
    job_state.claim_ledger_job(session, JOB, datetime.now(UTC))
    hours = []
    hour = hour_of(start)
    while hour < end:
        hours.append(hour)
        hour += HOUR
    return RollupResult(len(hours), recompute_hours(session, hours))
