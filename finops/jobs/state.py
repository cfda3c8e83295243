"""One run of a job at a time, and its watermarks, kept in ``job_state``.

``claim`` updates the job's row first thing in the transaction: on Postgres that row lock makes a
second run (another worker, a retry) wait until the first commits, then read the watermarks it left;
on SQLite the update takes the database's write lock, with the same effect. So two runs at once do
the work once and the second finds nothing left to do.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
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
    """A range that holds every row not seen yet: from the lowest open gap, else above the watermark.

    One bound, not an OR of ranges (which SQLite refuses past ~1,000 terms and Postgres plans badly);
    rows in it that were seen already are dropped with ``unseen``.
    """
    condition: ColumnElement[bool] = id_column >= _lowest_unseen(state)
    return condition


def _lowest_unseen(state: dict[str, Any]) -> int:
    last_id = int(state.get("last_ledger_id", 0))
    return min([last_id + 1, *(int(first) for first, _, _ in state.get("gaps", []))])


def read_unseen(
    session: Session, state: dict[str, Any], id_column: Any, *columns: Any, limit: int
) -> list[Any]:
    """The ledger rows a job has not seen yet (above its watermark or in an open gap), oldest id first."""
    is_unseen = unseen(state)
    query = select(id_column, *columns).where(new_rows_condition(id_column, state)).order_by(id_column)
    return [row for row in session.execute(query.limit(limit)) if is_unseen(row[0])]


def unseen(state: dict[str, Any]) -> Callable[[int], bool]:
    """A test for ids read with ``new_rows_condition``: above the watermark, or in an open gap."""
    last_id = int(state.get("last_ledger_id", 0))
    gaps = sorted((int(first), int(last)) for first, last, _ in state.get("gaps", []))
    starts = [first for first, _ in gaps]

    def test(ledger_id: int) -> bool:
        if ledger_id > last_id:
            return True
        index = bisect.bisect_right(starts, ledger_id) - 1
        return index >= 0 and ledger_id <= gaps[index][1]

    return test


def read_new_ids(state: dict[str, Any], seen_ids: list[int], now_s: float) -> dict[str, Any]:
    """The watermark state after reading ``seen_ids`` (the unseen rows just read).

    State: ``last_ledger_id`` and ``gaps``, a list of ``[first_id, last_id, noticed_at_s]`` ranges.
    """
    last_id = int(state.get("last_ledger_id", 0))
    seen = sorted(set(seen_ids))
    gaps: list[list[float]] = []
    for first, last, noticed in state.get("gaps", []):
        if now_s - noticed > GAP_EXPIRY_S:
            continue
        gaps.extend(_missing_ranges(int(first), int(last), seen, noticed))
    if seen and seen[-1] > last_id:
        gaps.extend(_missing_ranges(last_id + 1, seen[-1], seen, now_s))
        last_id = seen[-1]
    return {"last_ledger_id": last_id, "gaps": gaps[-MAX_GAP_RANGES:]}


def _missing_ranges(first: int, last: int, seen: list[int], noticed: float) -> list[list[float]]:
    """The runs of ids in [first, last] not in ``seen`` (sorted): bisect to the range, walk only it."""
    ranges: list[list[float]] = []
    expected = first
    for ledger_id in seen[bisect.bisect_left(seen, first) : bisect.bisect_right(seen, last)]:
        if ledger_id > expected:
            ranges.append([expected, ledger_id - 1, noticed])
        expected = ledger_id + 1
    if expected <= last:
        ranges.append([expected, last, noticed])
    return ranges
