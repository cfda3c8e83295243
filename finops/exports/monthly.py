"""The monthly job: last month's finance files written once to ``exports.folder``.

It runs often (``exports.monthly_every_s``) and does something only when a finished month lacks a file,
so a missed run, a restart or two workers at once still give each file exactly once (the job's row in
``job_state`` serialises runs; a file is renamed into place only when complete). ``finops jobs run
exports --from A --to B`` rewrites the files of every month that starts in [A, B).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from finops.config import FinopsConfig
from finops.exports.files import atomic_file
from finops.exports.focus import billing_period
from finops.exports.service import ExportRequest, iter_export, snapshot_engine
from finops.jobs import state as job_state

JOB = "exports"


@dataclass
class MonthlyResult:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        written = ", ".join(self.written) or "none"
        return f"written: {written}; already there: {', '.join(self.skipped) or 'none'}"


def month_file_name(kind: str, month_start: datetime) -> str:
    return f"finops-{kind}-{month_start:%Y-%m}.csv"


def request_for(kind: str, month_start: datetime) -> ExportRequest:
    _, month_end = billing_period(month_start)
    if kind == "ledger":
        return ExportRequest("ledger", month_start, month_end)
    return ExportRequest("focus", month_start, month_end, basis="gpu" if kind == "focus-gpu" else "tokens")


def months_due(config: FinopsConfig, now: datetime) -> list[datetime]:
    """Last month, once ``monthly_after_s`` has passed since it ended; otherwise nothing yet."""
    this_month, _ = billing_period(now)
    if now < this_month + timedelta(seconds=config.exports.monthly_after_s):
        return []
    previous, _ = billing_period(this_month - timedelta(microseconds=1))
    return [previous]


def months_in(start: datetime, end: datetime) -> list[datetime]:
    month, _ = billing_period(start)
    if month < start:
        month = billing_period(month + timedelta(days=32))[0]
    months = []
    while month < end:
        months.append(month)
        month = billing_period(month + timedelta(days=32))[0]
    return months


def run_monthly(
    session: Session,
    config: FinopsConfig,
    now: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> MonthlyResult:
    now = now or datetime.now(UTC)
    job_state.claim(session, JOB, now)
    rewrite = start is not None and end is not None
    months = months_in(start, end) if start is not None and end is not None else months_due(config, now)
    folder = Path(config.exports.folder)
    result = MonthlyResult()
    if not months:
        return result
    folder.mkdir(parents=True, exist_ok=True)
    for month in months:
        for kind in config.exports.monthly:
            path = folder / month_file_name(kind, month)
            if path.exists() and not rewrite:
                result.skipped.append(path.name)
                continue
            # Each file from one snapshot (Postgres: REPEATABLE READ), as the CLI reads: the jobs may
            # be writing rollups for the month just closed while the file is written.
            with atomic_file(path) as out, Session(snapshot_engine(session.get_bind().engine)) as snapshot:
                for chunk in iter_export(snapshot, config, request_for(kind, month)):
                    out.write(chunk)
            result.written.append(path.name)
    return result
