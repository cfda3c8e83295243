"""The attribution job: turns the token ledger into GPU-ledger rows, window by closed window.

Each run, per backend, attributes every window from where the last run stopped up to the latest closed
window (``window_end <= now - close_delay``), and recomputes earlier windows that a late call overlaps
(a long stream that ended after its windows were attributed). Recomputing deletes the window's rows
and writes them again, so a window's rows are always those of the engine over the calls known now:
running twice gives the same rows, never doubled.

A backend's first window is the window of its first ledger call: finops cannot know when GPUs were
provisioned, so idle time before a backend's first call is not attributed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from finops.attribution import BackendRate, CallSpan, attribute_backend
from finops.attribution.models import GpuLedgerRow
from finops.config import FinopsConfig
from finops.jobs import state as job_state
from finops.ledger.models import TokenLedgerRow
from finops.rollups.models import RollupDirtyHourRow

log = logging.getLogger("finops.attribution")

JOB = "attribution"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Calls that never reached a GPU take no share of it.
NOT_ON_GPU = ("upstream_unreachable",)
# Windows per backend attributed in one run (a day of one-minute windows).
MAX_WINDOWS_PER_RUN = 1440
# New ledger rows read per run; a backlog larger than this is worked off over several runs.
MAX_NEW_ROWS_PER_RUN = 1_000_000


def to_us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class AttributionResult:
    windows: int
    rows: int
    new_ledger_rows: int


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _calls_overlapping(
    session: Session, backend: str, start: datetime, end: datetime, longest_call: timedelta
) -> list[Any]:
    """Calls of ``backend`` in flight during [start, end). The lower bound on started_at lets the
    (backend, started_at) index bound the scan; calls longer than ``longest_call`` are not seen."""
    ledger = TokenLedgerRow
    return list(
        session.execute(
            select(
                ledger.request_id,
                ledger.started_at,
                ledger.ended_at,
                ledger.prompt_tokens,
                ledger.completion_tokens,
                ledger.team,
                ledger.feature,
                ledger.model,
            ).where(
                ledger.backend == backend,
                ledger.started_at >= start - longest_call,
                ledger.started_at < end,
                ledger.ended_at > start,
                (ledger.error_type.is_(None)) | (ledger.error_type.not_in(NOT_ON_GPU)),
            )
        )
    )


def attribute_range(
    session: Session,
    rate: BackendRate,
    start_us: int,
    end_us: int,
    window_us: int,
    longest_call: timedelta = timedelta(hours=1),
) -> int:
    """(Re)write the GPU-ledger rows of one backend's windows in [start_us, end_us); returns rows written."""
    start, end = from_us(start_us), from_us(end_us)
    calls = _calls_overlapping(session, rate.name, start, end, longest_call)
    tags = {c.request_id: (c.team, c.feature, c.model) for c in calls}
    spans = [
        CallSpan(
            c.request_id,
            rate.name,
            to_us(c.started_at),
            to_us(c.ended_at),
            c.prompt_tokens,
            c.completion_tokens,
        )
        for c in calls
    ]
    rows = attribute_backend(rate, spans, start_us, end_us, window_us=window_us)
    session.execute(
        delete(GpuLedgerRow).where(
            GpuLedgerRow.backend == rate.name,
            GpuLedgerRow.window_start >= start,
            GpuLedgerRow.window_start < end,
        )
    )
    values = []
    for row in rows:
        team, feature, model = tags[row.request_id] if row.request_id is not None else (None, None, None)
        values.append(
            {
                "backend": row.backend,
                "window_start": from_us(row.window_start_us),
                "window_end": from_us(row.window_end_us),
                "request_id": row.request_id,
                "team": team,
                "feature": feature,
                "model": model,
                "gpu_seconds": Decimal(row.gpu_us).scaleb(-6),
                "cost_nusd": row.cost_nusd,
            }
        )
    if values:
        session.execute(insert(GpuLedgerRow), values)
    mark_hours_dirty(session, start, end)
    return len(values)


def mark_hours_dirty(session: Session, start: datetime, end: datetime) -> None:
    hour = start.replace(minute=0, second=0, microsecond=0)
    existing = set(
        session.scalars(
            select(RollupDirtyHourRow.hour).where(
                RollupDirtyHourRow.hour >= hour, RollupDirtyHourRow.hour < end
            )
        )
    )
    while hour < end:
        if hour not in existing:
            session.add(RollupDirtyHourRow(hour=hour))
        hour += timedelta(hours=1)
    session.flush()


@dataclass(frozen=True)
class RateSchedule:
    """A backend's rates over time: each (from_us, rate) holds until the next one."""

    name: str
    changes: tuple[tuple[int, BackendRate], ...]

    def spans(self, start_us: int, end_us: int, window_us: int) -> list[tuple[int, int, BackendRate]]:
        """[start_us, end_us) cut where the rate changes; a change takes effect from the first window
        that starts at or after its effective time (a window has one rate)."""
        spans: list[tuple[int, int, BackendRate]] = []
        for index, (from_us, rate) in enumerate(self.changes):
            begins = -(-from_us // window_us) * window_us
            ends = (
                -(-self.changes[index + 1][0] // window_us) * window_us
                if index + 1 < len(self.changes)
                else end_us
            )
            lo, hi = max(start_us, begins), min(end_us, ends)
            if lo < hi:
                spans.append((lo, hi, rate))
        return spans


def _first_window_us(session: Session, backend: str, window_us: int) -> int | None:
    """The window of the backend's first call: where its attribution starts (None: no call yet)."""
    first = session.scalar(
        select(func.min(TokenLedgerRow.started_at)).where(TokenLedgerRow.backend == backend)
    )
    return None if first is None else to_us(first) // window_us * window_us


def backend_rates(config: FinopsConfig) -> dict[str, RateSchedule]:
    schedules = {}
    for b in config.backends:
        changes = [(-(2**62), BackendRate(b.name, b.gpus, b.usd_per_gpu_hour))]
        changes += sorted(
            (to_us(r.effective_from), BackendRate(b.name, r.gpus, r.usd_per_gpu_hour)) for r in b.rates
        )
        schedules[b.name] = RateSchedule(b.name, tuple(changes))
    return schedules


def attribute_span(
    session: Session,
    schedule: RateSchedule,
    start_us: int,
    end_us: int,
    window_us: int,
    longest_call: timedelta = timedelta(hours=1),
) -> int:
    """attribute_range over [start_us, end_us), each part at the rate in force for it."""
    return sum(
        attribute_range(session, rate, lo, hi, window_us, longest_call)
        for lo, hi, rate in schedule.spans(start_us, end_us, window_us)
    )


def _rates_fingerprint(config: FinopsConfig) -> str:
    return ";".join(
        f"{b.name}:{b.gpus}:{b.usd_per_gpu_hour}:"
        + ",".join(f"{r.effective_from.isoformat()}/{r.gpus}/{r.usd_per_gpu_hour}" for r in b.rates)
        for b in sorted(config.backends, key=lambda b: b.name)
    )


def run_attribution(session: Session, config: FinopsConfig, now: datetime | None = None) -> AttributionResult:
    """One run of the job inside the caller's transaction (the caller commits)."""
    now = now or datetime.now(UTC)
    state = job_state.claim_ledger_job(session, JOB, now)
    window_us = config.attribution.window_s * 1_000_000
    horizon_us = (to_us(now) - config.attribution.close_delay_s * 1_000_000) // window_us * window_us
    done_until: dict[str, int] = {k: int(v) for k, v in state.get("attributed_until_us", {}).items()}

    ledger = TokenLedgerRow
    new_rows = job_state.read_unseen(
        session,
        state,
        ledger.id,
        ledger.backend,
        ledger.started_at,
        ledger.ended_at,
        limit=MAX_NEW_ROWS_PER_RUN,
    )
    # Rows past the limit are read next run; windows attributed without them are recomputed as late.
    watermark = job_state.read_new_ids(state, [r.id for r in new_rows], now.timestamp())

    windows = written = 0
    for name, schedule in backend_rates(config).items():
        ranges: list[tuple[int, int]] = []
        start_us = done_until.get(name)
        if start_us is None:
            start_us = _first_window_us(session, name, window_us)
            if start_us is None:
                continue
        # A backlog (a first run on a big ledger, a long worker outage) is worked off a slice per run,
        # so that one run's memory and transaction stay bounded and every run makes progress.
        until_us = min(horizon_us, start_us + MAX_WINDOWS_PER_RUN * window_us)
        if start_us < until_us:
            ranges.append((start_us, until_us))
        # Late calls: their windows before start_us were attributed without them.
        for r in new_rows:
            if r.backend != name or r.backend is None:
                continue
            late_start = to_us(r.started_at) // window_us * window_us
            late_end = min(-(-to_us(r.ended_at) // window_us) * window_us, start_us)
            if late_start < late_end:
                ranges.append((late_start, late_end))
        for range_start, range_end in _merge(ranges):
            written += attribute_span(
                session,
                schedule,
                range_start,
                range_end,
                window_us,
                timedelta(seconds=config.attribution.longest_call_s),
            )
            windows += (range_end - range_start) // window_us
        done_until[name] = max(start_us, until_us)

    rates = _rates_fingerprint(config)
    if state.get("rates") not in (None, rates):
        log.warning(
            "backend gpus or prices changed in the config: windows attributed before the change "
            "keep the old rates; `finops jobs run attribution --from ... --to ...` recomputes them"
        )
    job_state.save(session, JOB, {**watermark, "attributed_until_us": done_until, "rates": rates})
    if windows:
        log.info("attributed %d backend-windows (%d rows) up to %s", windows, written, from_us(horizon_us))
    return AttributionResult(windows, written, len(new_rows))


def reattribute(session: Session, config: FinopsConfig, start: datetime, end: datetime) -> AttributionResult:
    """Recompute the windows between ``start`` and ``end`` (widened to whole windows) that the scheduled
    job has attributed: per backend, from its first call's window to where the job got to. An operator's
    backfill never invents idle time the schedule would not (a backend with no calls, an open window)."""
    state = job_state.claim_ledger_job(session, JOB, datetime.now(UTC))
    done_until: dict[str, int] = {k: int(v) for k, v in state.get("attributed_until_us", {}).items()}
    window_us = config.attribution.window_s * 1_000_000
    start_us = to_us(start) // window_us * window_us
    end_us = -(-to_us(end) // window_us) * window_us
    windows = written = 0
    for name, schedule in backend_rates(config).items():
        first_us = _first_window_us(session, name, window_us)
        if first_us is None or name not in done_until:
            continue
        range_start = max(start_us, first_us)
        range_end = min(end_us, done_until[name])
        if range_start < range_end:
            written += attribute_span(
                session,
                schedule,
                range_start,
                range_end,
                window_us,
                timedelta(seconds=config.attribution.longest_call_s),
            )
            windows += (range_end - range_start) // window_us
    return AttributionResult(windows, written, 0)
