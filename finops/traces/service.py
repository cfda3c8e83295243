"""The traces job: closes traces that went quiet and writes their amplification to ``trace_costs``.

Every ledger call seen since the last run puts its trace in ``trace_pending`` (with the latest end
time of its calls). A pending trace with no call ending in the last ``traces.quiet_s`` is closed: all
its calls are read from the token ledger, the pure engine (``finops.traces.amplification``) computes
the factor and breakdown, and the trace's row in ``trace_costs`` is written anew. A call that arrives
after the trace was closed makes it pending again, and it is recomputed when quiet again. Every hour
whose traces were written or deleted is then rewritten in the hourly rollup (``finops.traces.rollup``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from finops.attribution.service import from_us, to_us
from finops.config import FinopsConfig
from finops.jobs import state as job_state
from finops.ledger.models import TokenLedgerRow
from finops.traces import rollup
from finops.traces.amplification import TraceCost, compute, group_by_trace
from finops.traces.calls import TraceCall
from finops.traces.models import BREAKDOWN_PARTS, TraceCostRow, TracePendingRow

JOB = "traces"
MAX_NEW_ROWS_PER_RUN = 1_000_000
MAX_TRACES_PER_RUN = 200_000
# Traces per IN (...) query: well under every database's parameter limit.
IN_BATCH = 500
FACTOR_PLACES = Decimal("0.000001")

_LEDGER_COLUMNS = (
    TokenLedgerRow.request_id,
    TokenLedgerRow.trace_id,
    TokenLedgerRow.started_at,
    TokenLedgerRow.ended_at,
    TokenLedgerRow.endpoint,
    TokenLedgerRow.stage,
    TokenLedgerRow.status_code,
    TokenLedgerRow.prompt_tokens,
    TokenLedgerRow.completion_tokens,
    TokenLedgerRow.cost_nusd,
    TokenLedgerRow.prompt_cost_nusd,
    TokenLedgerRow.completion_cost_nusd,
    TokenLedgerRow.body_sha256,
    TokenLedgerRow.retry_of,
    TokenLedgerRow.prompt_system_tokens,
    TokenLedgerRow.prompt_history_tokens,
    TokenLedgerRow.prompt_context_tokens,
    TokenLedgerRow.prompt_user_tokens,
    TokenLedgerRow.model,
    TokenLedgerRow.team,
    TokenLedgerRow.feature,
)


def trace_call(row: Any) -> TraceCall:
    parts = (
        row.prompt_system_tokens,
        row.prompt_history_tokens,
        row.prompt_context_tokens,
        row.prompt_user_tokens,
    )
    system, history, context, user = (0, 0, 0, 0) if any(p is None for p in parts) else parts
    return TraceCall(
        request_id=row.request_id,
        started_at_us=to_us(row.started_at),
        ended_at_us=to_us(row.ended_at),
        endpoint=row.endpoint,
        stage=row.stage,
        status_code=row.status_code,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cost_nusd=row.cost_nusd,
        body_sha256=row.body_sha256,
        retry_of=row.retry_of,
        system_tokens=system,
        history_tokens=history,
        context_tokens=context,
        user_tokens=user,
        prompt_cost_nusd=row.prompt_cost_nusd,
        completion_cost_nusd=row.completion_cost_nusd,
        trace_id=row.trace_id,
        model=row.model,
        team=row.team,
        feature=row.feature,
    )


def load_calls(session: Session, trace_ids: Sequence[str]) -> list[TraceCall]:
    calls: list[TraceCall] = []
    for batch in iter_chunks(trace_ids, IN_BATCH):
        rows = session.execute(select(*_LEDGER_COLUMNS).where(TokenLedgerRow.trace_id.in_(batch)))
        calls.extend(trace_call(row) for row in rows)
    return calls


def _factor(value: Fraction | None) -> Decimal | None:
    if value is None:
        return None
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(FACTOR_PLACES, ROUND_HALF_EVEN)


def trace_cost_values(cost: TraceCost, first: TraceCall, closed_at: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        "trace_id": cost.trace_id,
        "team": first.team or "",
        "feature": first.feature or "",
        "first_call_at": from_us(cost.first_call_at_us),
        "last_call_at": from_us(cost.last_call_at_us),
        "calls": cost.calls,
        "retries": cost.retries,
        "total_tokens": cost.total_tokens,
        "total_cost_nusd": cost.total_cost_nusd,
        "amplification_tokens": _factor(cost.amplification_tokens),
        "amplification_cost": _factor(cost.amplification_cost),
        "baseline_source": cost.baseline_source,
        "closed_at": closed_at,
    }
    tokens, nusd = cost.tokens.as_dict(), cost.cost_nusd.as_dict()
    for part in BREAKDOWN_PARTS:
        values[f"{part}_tokens"] = tokens[part]
        values[f"{part}_cost_nusd"] = nusd[part]
    return values


def close_traces(session: Session, trace_ids: Sequence[str], now: datetime) -> int:
    calls = load_calls(session, trace_ids)
    rows = []
    for trace_id, trace_calls in group_by_trace(calls).items():
        first = min(trace_calls, key=lambda c: (c.started_at_us, c.request_id))
        rows.append(trace_cost_values(compute(trace_id, trace_calls), first, now))
    # The rollup hours to rewrite: where the traces were before (a grown trace may start earlier, a
    # trace with no calls left disappears) and where they are now.
    touched = {rollup.hour_of(row["first_call_at"]) for row in rows}
    for batch in iter_chunks(trace_ids, IN_BATCH):
        touched.update(
            rollup.hour_of(at)
            for at in session.scalars(
                select(TraceCostRow.first_call_at).where(TraceCostRow.trace_id.in_(batch))
            )
        )
        session.execute(delete(TraceCostRow).where(TraceCostRow.trace_id.in_(batch)))
        session.execute(delete(TracePendingRow).where(TracePendingRow.trace_id.in_(batch)))
    if rows:
        session.execute(insert(TraceCostRow), rows)
    rollup.recompute_hours(session, touched)
    return len(rows)


def _mark_pending(session: Session, latest_end: dict[str, datetime]) -> None:
    for batch in iter_chunks(list(latest_end), IN_BATCH):
        existing = {
            row.trace_id: row
            for row in session.scalars(select(TracePendingRow).where(TracePendingRow.trace_id.in_(batch)))
        }
        for trace_id in batch:
            row = existing.get(trace_id)
            if row is None:
                session.add(TracePendingRow(trace_id=trace_id, last_call_ended_at=latest_end[trace_id]))
            elif latest_end[trace_id] > row.last_call_ended_at:
                row.last_call_ended_at = latest_end[trace_id]
    session.flush()


@dataclass(frozen=True)
class TracesResult:
    new_calls: int
    closed: int
    pending: int


def run_traces(session: Session, config: FinopsConfig, now: datetime | None = None) -> TracesResult:
    now = now or datetime.now(UTC)
    state = job_state.claim(session, JOB, now)
    ledger = TokenLedgerRow
    new = job_state.read_unseen(
        session, state, ledger.id, ledger.trace_id, ledger.ended_at, limit=MAX_NEW_ROWS_PER_RUN
    )
    latest_end: dict[str, datetime] = {}
    for row in new:
        if row.trace_id not in latest_end or row.ended_at > latest_end[row.trace_id]:
            latest_end[row.trace_id] = row.ended_at
    _mark_pending(session, latest_end)
    quiet_before = now - timedelta(seconds=config.traces.quiet_s)
    due = list(
        session.scalars(
            select(TracePendingRow.trace_id)
            .where(TracePendingRow.last_call_ended_at <= quiet_before)
            .order_by(TracePendingRow.last_call_ended_at)
            .limit(MAX_TRACES_PER_RUN)
        )
    )
    closed = close_traces(session, due, now)
    pending = int(session.scalar(select(func.count()).select_from(TracePendingRow)) or 0)
    job_state.save(session, JOB, job_state.read_new_ids(state, [r.id for r in new], now.timestamp()))
    return TracesResult(len(new), closed, pending)


def recompute_traces(session: Session, start: datetime, end: datetime) -> TracesResult:
    """Recompute every closed trace whose first call falls in [start, end) (an operator's backfill)."""
    job_state.claim(session, JOB, datetime.now(UTC))
    ids = list(
        session.scalars(
            select(TraceCostRow.trace_id).where(
                TraceCostRow.first_call_at >= start, TraceCostRow.first_call_at < end
            )
        )
    )
    return TracesResult(0, close_traces(session, ids, datetime.now(UTC)), 0)


def compute_trace(session: Session, trace_id: str) -> tuple[TraceCost, list[TraceCall]] | None:
    """A trace computed now from the ledger, closed or not (for ``finops traces show``)."""
    calls = load_calls(session, [trace_id])
    if not calls:
        return None
    return compute(trace_id, calls), calls


def iter_chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
