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

from sqlalchemy import ColumnElement, and_, or_, select, update
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


# Ids below the watermark that were missing when it moved: a row whose id was taken before a higher id
# committed (two proxy replicas writing at once) shows up later. Gaps are re-read until they fill or
# expire (sequence values also vanish for good: rolled-back inserts, rows skipped as duplicates).
GAP_EXPIRY_S = 600.0
MAX_GAP_RANGES = 10_000


def new_rows_condition(id_column: Any, state: dict[str, Any]) -> ColumnElement[bool]:
    """Rows above the watermark, or in one of its open gaps."""
    clauses: list[ColumnElement[bool]] = [id_column > int(state.get("last_ledger_id", 0))]
    clauses += [
        and_(id_column >= int(first), id_column <= int(last)) for first, last, _ in state.get("gaps", [])
    ]
    return or_(*clauses)


def read_new_ids(state: dict[str, Any], seen_ids: list[int], now_s: float) -> dict[str, Any]:
    """The watermark state after reading ``seen_ids`` (the rows above the watermark and in its gaps).

    State: ``last_ledger_id`` and ``gaps``, a list of ``[first_id, last_id, noticed_at_s]`` ranges.
    """
    last_id = int(state.get("last_ledger_id", 0))
    seen = set(seen_ids)
    gaps: list[list[float]] = []
    for first, last, noticed in state.get("gaps", []):
        if now_s - noticed > GAP_EXPIRY_S:
            continue
        gaps.extend(_missing_ranges(int(first), int(last), seen, noticed))
    above = sorted(i for i in seen if i > last_id)
    if above:
        gaps.extend(_missing_ranges(last_id + 1, above[-1], seen, now_s))
        last_id = above[-1]
    return {"last_ledger_id": last_id, "gaps": gaps[-MAX_GAP_RANGES:]}


def _missing_ranges(first: int, last: int, seen: set[int], noticed: float) -> list[list[float]]:
    """The runs of ids in [first, last] not in ``seen`` (walks the seen ids, not the whole range)."""
    ranges: list[list[float]] = []
    expected = first
    for ledger_id in sorted(i for i in seen if first <= i <= last):
        if ledger_id > expected:
            ranges.append([expected, ledger_id - 1, noticed])
        expected = ledger_id + 1
    if expected <= last:
        ranges.append([expected, last, noticed])
    return ranges
