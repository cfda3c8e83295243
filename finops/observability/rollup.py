"""The latency rollup job: hourly latency sketches and call-event counts, merged in as calls arrive.

Each run reads the ledger rows it has not seen (the same id watermark as the other ledger jobs), sketches
their latencies per hour, tag set and metric, and merges them into the stored sketches; event counts
are added likewise. Sketches merge exactly (finops.observability.sketch), so an hour is never re-read
and a day is the merge of its hours; the daily sketches (per tag set without backend) are merged in the
same transaction, for reads over many days. ``recompute_range`` rebuilds whole hours from the ledger (after
a restore, or a change of ``context_limit_tokens``).

Latency counts only calls that were answered (status below 400, client still there): a refused or
abandoned call's duration says nothing about how fast the model is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from finops.config import FinopsConfig
from finops.jobs import state as job_state
from finops.ledger.models import TokenLedgerRow
from finops.observability.events import call_events, limit_for
from finops.observability.models import NO_BACKEND, CallEventRow, LatencyDailySketchRow, LatencySketchRow
from finops.observability.sketch import Sketch

JOB = "latency_rollups"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
METRICS = ("ttft", "itl", "total")
MAX_NEW_ROWS_PER_RUN = 200_000

# (hour, team, feature, model, backend)
TagKey = tuple[datetime, str, str, str, str]
# (day, team, feature, model)
DayKey = tuple[datetime, str, str, str]
HOUR_KEY = ("hour", "team", "feature", "model", "backend")
DAY_KEY = ("day", "team", "feature", "model")


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Accumulated:
    sketches: dict[tuple[TagKey, str], Sketch]
    events: dict[tuple[TagKey, str], int]


_LEDGER_COLUMNS = (
    TokenLedgerRow.started_at,
    TokenLedgerRow.team,
    TokenLedgerRow.feature,
    TokenLedgerRow.model,
    TokenLedgerRow.backend,
    TokenLedgerRow.status_code,
    TokenLedgerRow.error_type,
    TokenLedgerRow.finish_reason,
    TokenLedgerRow.client_disconnected,
    TokenLedgerRow.prompt_tokens,
    TokenLedgerRow.ttft_ms,
    TokenLedgerRow.itl_ms,
    TokenLedgerRow.latency_ms,
)


def accumulate(rows: Iterable[Any], context_limits: Mapping[str, int]) -> Accumulated:
    """Sketches and event counts of ledger rows (objects with the columns of ``_LEDGER_COLUMNS``)."""
    # Keyed by the hour's index while counting (an int hashes far faster than an aware datetime), and
    # one lookup per row for its three sketches; the job reads up to MAX_NEW_ROWS_PER_RUN rows a run.
    per_key: dict[tuple[int, str, str, str, str], tuple[Sketch, Sketch, Sketch]] = {}
    event_counts: dict[tuple[tuple[int, str, str, str, str], str], int] = {}
    for row in rows:
        key = (
            int(row.started_at.timestamp()) // 3600,
            row.team,
            row.feature,
            row.model,
            row.backend or NO_BACKEND,
        )
        limit = limit_for(context_limits, row.model) if context_limits else None
        for event in call_events(
            row.status_code,
            row.error_type,
            row.finish_reason,
            row.client_disconnected,
            row.prompt_tokens,
            limit,
        ):
            event_counts[(key, event)] = event_counts.get((key, event), 0) + 1
        if row.status_code >= 400 or row.client_disconnected:
            continue
        found = per_key.get(key)
        if found is None:
            found = per_key[key] = (Sketch(), Sketch(), Sketch())
        total, ttft, itl = found
        total.add(max(row.latency_ms, 0.0))
        if row.ttft_ms is not None:
            ttft.add(max(row.ttft_ms, 0.0))
        if row.itl_ms is not None:
            itl.add(max(row.itl_ms, 0.0))

    hours: dict[int, datetime] = {}

    def tag_key(key: tuple[int, str, str, str, str]) -> TagKey:
        hour = hours.get(key[0])
        if hour is None:
            hour = hours[key[0]] = datetime.fromtimestamp(key[0] * 3600, UTC)
        return (hour, key[1], key[2], key[3], key[4])

    sketches: dict[tuple[TagKey, str], Sketch] = {}
    for key, found in per_key.items():
        tags = tag_key(key)
        for metric, sketch in zip(("total", "ttft", "itl"), found, strict=True):
            if sketch.count:
                sketches[(tags, metric)] = sketch
    events = {(tag_key(key), event): calls for (key, event), calls in event_counts.items()}
    return Accumulated(sketches, events)


def _merge_sketches(
    session: Session,
    table: type[LatencySketchRow] | type[LatencyDailySketchRow],
    key_columns: tuple[str, ...],
    sketches: Mapping[tuple[tuple[Any, ...], str], Sketch],
) -> None:
    """Merge ``sketches`` (keyed by the values of ``key_columns``, then metric) into ``table``'s rows."""
    if not sketches:
        return
    time_column = key_columns[0]
    times = sorted({key[0] for key, _ in sketches})
    rows: Iterable[LatencySketchRow | LatencyDailySketchRow] = session.scalars(
        select(table).where(getattr(table, time_column).in_(times))
    )
    stored = {(tuple(getattr(r, name) for name in key_columns), r.metric): r for r in rows}
    inserts: list[dict[str, Any]] = []
    for (key, metric), sketch in sketches.items():
        row = stored.get((key, metric))
        if row is None:
            values = dict(zip(key_columns, key, strict=True))
            inserts.append({**values, "metric": metric, "calls": sketch.count, "sketch": sketch.to_json()})
        else:
            total = Sketch.from_json(row.sketch)
            total.merge(sketch)
            session.execute(
                update(table).where(table.id == row.id).values(calls=total.count, sketch=total.to_json())
            )
    if inserts:
        session.execute(insert(table), inserts)


def by_day(sketches: Mapping[tuple[TagKey, str], Sketch]) -> dict[tuple[DayKey, str], Sketch]:
    """Hourly sketches merged per UTC day, team, feature, model and metric (new sketches; inputs kept)."""
    days: dict[tuple[DayKey, str], Sketch] = {}
    for ((hour, team, feature, model, _backend), metric), sketch in sketches.items():
        key = ((day_of(hour), team, feature, model), metric)
        found = days.get(key)
        if found is None:
            found = days[key] = Sketch()
        found.merge(sketch)
    return days


def _merge_into_tables(session: Session, acc: Accumulated, *, daily: bool = True) -> int:
    """Merge sketches (hourly, and daily unless the caller rebuilds the days) and add event counts into
    the stored hours; returns hourly rows written."""
    hours = {key[0] for key, _ in acc.sketches} | {key[0] for key, _ in acc.events}
    if not hours:
        return 0
    _merge_sketches(session, LatencySketchRow, HOUR_KEY, acc.sketches)
    if daily:
        _merge_sketches(session, LatencyDailySketchRow, DAY_KEY, by_day(acc.sketches))
    e = CallEventRow
    counted = {
        ((r.hour, r.team, r.feature, r.model, r.backend), r.event): (r.id, r.calls)
        for r in session.execute(
            select(e.id, e.hour, e.team, e.feature, e.model, e.backend, e.event, e.calls).where(
                e.hour.in_(sorted(hours))
            )
        )
    }
    event_inserts: list[dict[str, Any]] = []
    for (key, event), calls in acc.events.items():
        found = counted.get((key, event))
        if found is None:
            event_inserts.append({**dict(zip(HOUR_KEY, key, strict=True)), "event": event, "calls": calls})
        else:
            session.execute(update(e).where(e.id == found[0]).values(calls=found[1] + calls))
    if event_inserts:
        session.execute(insert(e), event_inserts)
    return len(acc.sketches) + len(acc.events)


def rebuild_daily_sketches(session: Session, start: datetime, end: datetime) -> int:
    """Rebuild the daily sketches of every UTC day overlapping [start, end) from the hourly ones; returns
    the daily rows written. For days whose hours were rebuilt, and for databases filled by other means."""
    first, last = day_of(start), day_of(end - timedelta(microseconds=1)) + DAY
    d, h = LatencyDailySketchRow, LatencySketchRow
    session.execute(delete(d).where(d.day >= first, d.day < last))
    written = 0
    day = first
    # A day at a time: a day's hourly sketches are a few thousand rows at most.
    while day < last:
        hourly: dict[tuple[TagKey, str], Sketch] = {
            ((hour, team, feature, model, backend), metric): Sketch.from_json(text)
            for hour, team, feature, model, backend, metric, text in session.execute(
                select(h.hour, h.team, h.feature, h.model, h.backend, h.metric, h.sketch).where(
                    h.hour >= day, h.hour < day + DAY
                )
            )
        }
        daily = by_day(hourly)
        _merge_sketches(session, d, DAY_KEY, daily)
        written += len(daily)
        day += DAY
    return written


@dataclass(frozen=True)
class LatencyRollupResult:
    calls: int
    rows: int


def run_latency_rollups(
    session: Session, config: FinopsConfig, now: datetime | None = None
) -> LatencyRollupResult:
    now = now or datetime.now(UTC)
    state = job_state.claim(session, JOB, now)
    ledger = TokenLedgerRow
    new = job_state.read_unseen(session, state, ledger.id, *_LEDGER_COLUMNS, limit=MAX_NEW_ROWS_PER_RUN)
    written = _merge_into_tables(session, accumulate(new, config.observability.context_limit_tokens))
    job_state.save(session, JOB, job_state.read_new_ids(state, [r.id for r in new], now.timestamp()))
    return LatencyRollupResult(len(new), written)


def recompute_latency_range(
    session: Session, config: FinopsConfig, start: datetime, end: datetime
) -> LatencyRollupResult:
    """Rebuild every hour that overlaps [start, end) from the ledger, then the days holding them."""
    state = job_state.claim(session, JOB, datetime.now(UTC))
    first, last = hour_of(start), hour_of(end - timedelta(microseconds=1)) + HOUR
    for table in (LatencySketchRow, CallEventRow):
        session.execute(delete(table).where(table.hour >= first, table.hour < last))
    ledger = TokenLedgerRow
    # Only rows the scheduled runs have seen: the unseen ones are merged in by the next run, once.
    is_unseen = job_state.unseen(state)
    rows = [
        row
        for row in session.execute(
            select(ledger.id, *_LEDGER_COLUMNS).where(ledger.started_at >= first, ledger.started_at < last)
        )
        if not is_unseen(row.id)
    ]
    acc = accumulate(rows, config.observability.context_limit_tokens)
    written = _merge_into_tables(session, acc, daily=False)
    rebuild_daily_sketches(session, first, last)
    return LatencyRollupResult(len(rows), written)
