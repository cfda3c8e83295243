"""One run of a job at a time, and its watermarks, kept in ``job_state``.

``claim`` updates the job's row first thing in the transaction: on Postgres that row lock makes a
second run (another worker, a retry) wait until the first commits, then read the watermarks it left;
on SQLite the update takes the database's write lock, with the same effect. So two runs at once do
the work once and the second finds nothing left to do.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from finops.jobs.models import JobStateRow


def claim(session: Session, name: str, now: datetime) -> dict[str, Any]:
    """Lock the job's row for this transaction and return its state."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(JobStateRow).values(name=name, state="{}", runs=0, last_run_at=None).on_conflict_do_nothing()
    )
    session.execute(
        update(JobStateRow).where(JobStateRow.name == name).values(runs=JobStateRow.runs + 1, last_run_at=now)
    )
    row = session.scalars(select(JobStateRow).where(JobStateRow.name == name)).one()
    session.refresh(row)
    state: dict[str, Any] = json.loads(row.state)
    return state


# Jobs that read and write the same ledgers take this lock too, so that they never interleave (the
# rollup job must not roll up an hour while attribution is rewriting its GPU rows).
LEDGER_LOCK = "ledger-jobs"


def claim_ledger_job(session: Session, name: str, now: datetime) -> dict[str, Any]:
    claim(session, LEDGER_LOCK, now)
    return claim(session, name, now)


def save(session: Session, name: str, state: dict[str, Any]) -> None:
    session.execute(update(JobStateRow).where(JobStateRow.name == name).values(state=json.dumps(state)))
