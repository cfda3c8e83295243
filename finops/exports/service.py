"""Finance exports as a stream of CSV bytes: FOCUS 1.2 charges, or the raw ledger.

``iter_export`` yields the header first, then rows in batches read from the database (constant memory
whatever the period). The CLI writes the stream to a temporary file and renames it when complete; the
management API streams it as the response body. Both give the same bytes for the same request.

Freshness: the FOCUS rows come from ``usage_rollups``, except for hours the rollup job has not caught
up with (ledger rows it has not seen yet, or hours attribution rewrote since): those are aggregated from
the ledgers on the spot, the same way the rollup job would. So BilledCost always sums exactly to the
ledgers as they are when the export reads them, whether or not the jobs have run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import psycopg
from sqlalchemy import Engine, func, select, tuple_
from sqlalchemy.orm import Session

from finops.attribution.models import GpuLedgerRow
from finops.config import FinopsConfig
from finops.exports import focus, ledger
from finops.exports.cells import encode_rows
from finops.jobs import state as job_state
from finops.jobs.models import JobStateRow
from finops.keys.models import ApiKeyRow
from finops.ledger.models import TokenLedgerRow
from finops.rollups.models import RollupDirtyHourRow, UsageRollupRow
from finops.rollups.service import JOB as ROLLUPS_JOB
from finops.rollups.service import aggregate_hour, hour_of

Format = Literal["focus", "ledger"]
Basis = Literal["tokens", "gpu"]
FORMATS: tuple[str, ...] = ("focus", "ledger")
BASES: tuple[str, ...] = ("tokens", "gpu")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
LEDGER_BATCH_ROWS = 5000
# Postgres COPY sends a message per row; they are joined into chunks of about this size.
CHUNK_BYTES = 256 * 1024


class ExportError(ValueError):
    """A request that cannot be exported, with a message for the person who made it and the input it is
    about (``field``: format, basis, start, end, team, feature; None when no one input is)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ExportRequest:
    format: Format
    start: datetime
    end: datetime
    team: str | None = None
    feature: str | None = None
    basis: Basis = "tokens"


def check_request(session: Session, req: ExportRequest) -> None:
    """Raise ExportError for a request that cannot give a meaningful file; otherwise return."""
    if req.format not in FORMATS:
        raise ExportError(f"unknown export format {req.format!r}; known: {', '.join(FORMATS)}", "format")
    if req.basis not in BASES:
        raise ExportError(f"unknown basis {req.basis!r}; known: {', '.join(BASES)}", "basis")
    if req.start is None or req.end is None:
        raise ExportError(
            "give both the start and the end of the period (an open-ended range is not exported)",
            "start" if req.start is None else "end",
        )
    if req.start.tzinfo is None or req.end.tzinfo is None:
        raise ExportError(
            "start and end must carry a time zone (UTC)", "start" if req.start.tzinfo is None else "end"
        )
    if req.end <= req.start:
        raise ExportError(
            f"the period is empty or inverted: end {req.end.isoformat()} "
            f"is not after start {req.start.isoformat()}",
            "end",
        )
    if req.format == "focus" and (hour_of(req.start) != req.start or hour_of(req.end) != req.end):
        raise ExportError(
            "FOCUS charges are hourly: start and end must be whole hours (UTC), e.g. a date",
            "start" if hour_of(req.start) != req.start else "end",
        )
    if req.team is not None and not _team_known(session, req.team):
        raise ExportError(f"unknown team {req.team!r}: no call in the ledger and no API key has it", "team")
    if req.feature is not None and not _feature_known(session, req.feature):
        raise ExportError(f"unknown feature {req.feature!r}: no call in the ledger has it", "feature")


def _team_known(session: Session, team: str) -> bool:
    in_ledger = session.scalar(select(TokenLedgerRow.id).where(TokenLedgerRow.team == team).limit(1))
    return in_ledger is not None or (
        session.scalar(select(ApiKeyRow.id).where(ApiKeyRow.team == team).limit(1)) is not None
    )


def _feature_known(session: Session, feature: str) -> bool:
    return (
        session.scalar(select(TokenLedgerRow.id).where(TokenLedgerRow.feature == feature).limit(1))
        is not None
    )


def iter_export(session: Session, config: FinopsConfig, req: ExportRequest) -> Iterator[bytes]:
    """The export as CSV bytes, header first. Raises ExportError (before any byte) for a bad request."""
    check_request(session, req)
    if req.format == "focus":
        return _iter_focus(session, config, req)
    return _iter_ledger(session, config, req)


def snapshot_engine(engine: Engine) -> Engine:
    """The engine to export with: on Postgres one REPEATABLE READ snapshot for the whole export, so
    rollups, dirty hours and ledgers are read as of one moment (SQLite reads are consistent anyway)."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ")
    return engine


def filename(req: ExportRequest) -> str:
    """A default file name that says what is in the file."""
    span = f"{req.start:%Y%m%dT%H%M}-{req.end:%Y%m%dT%H%M}"
    kind = f"focus-{req.basis}" if req.format == "focus" else "ledger"
    scope = "".join(f"-{part}" for part in (req.team, req.feature) if part)
    safe_scope = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in scope)
    return f"finops-{kind}-{span}{safe_scope}.csv"


def estimate_rows(session: Session, req: ExportRequest) -> int | None:
    """How many data rows a ledger export will have (for a progress bar); None for FOCUS (unknown)."""
    if req.format != "ledger":
        return None
    t = TokenLedgerRow
    return int(session.scalar(select(func.count()).select_from(t).where(*_ledger_filters(req))) or 0)


# --- FOCUS ---


def _names(config: FinopsConfig) -> focus.Names:
    e = config.exports
    return focus.Names(
        billing_account_id=e.billing_account_id,
        billing_account_name=e.billing_account_name,
        provider_name=e.provider_name,
        publisher_name=e.publisher_name,
        invoice_issuer_name=e.invoice_issuer_name,
        service_name=e.service_name,
    )


def _iter_focus(session: Session, config: FinopsConfig, req: ExportRequest) -> Iterator[bytes]:
    yield encode_rows([focus.COLUMNS])
    names = _names(config)
    stale = stale_hours(session, req.start, req.end)
    day = req.start
    while day < req.end:
        chunk_end = min(day + DAY, req.end)
        by_hour = _rolled_up_lines(session, day, chunk_end, req)
        for hour in sorted(set(by_hour) | {h for h in stale if day <= h < chunk_end}):
            lines = _ledger_lines(session, hour, req) if hour in stale else by_hour[hour]
            rows = [focus.row_cells(c, hour, req.basis, names) for c in focus.charges(lines)]
            if rows:
                yield encode_rows(rows)
        day = chunk_end


def stale_hours(session: Session, start: datetime, end: datetime) -> set[datetime]:
    """Hours in [start, end) whose rollup rows may not match the ledgers now: hours attribution rewrote
    since their rollup, and hours of ledger rows the rollup job has not read yet (conservatively: every
    row from its lowest unread id on)."""
    dirty = RollupDirtyHourRow
    hours = {
        hour_of(h) for h in session.scalars(select(dirty.hour).where(dirty.hour >= start, dirty.hour < end))
    }
    raw_state = session.scalar(select(JobStateRow.state).where(JobStateRow.name == ROLLUPS_JOB))
    state: dict[str, Any] = json.loads(raw_state) if raw_state else {}
    t = TokenLedgerRow
    hour = _hour_expression(session)
    unseen = session.scalars(
        select(hour)
        .where(job_state.new_rows_condition(t.id, state), t.started_at >= start, t.started_at < end)
        .group_by(hour)
    )
    hours |= {_parse_hour(value) for value in unseen}
    return hours


def _hour_expression(session: Session) -> Any:
    t = TokenLedgerRow
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", t.started_at), "YYYY-MM-DD HH24:00:00")
    return func.strftime("%Y-%m-%d %H:00:00", t.started_at)


def _parse_hour(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _rolled_up_lines(
    session: Session, start: datetime, end: datetime, req: ExportRequest
) -> dict[datetime, list[focus.UsageLine]]:
    r = UsageRollupRow
    filters: list[Any] = [r.hour >= start, r.hour < end]
    if req.team is not None:
        filters.append(r.team == req.team)
    if req.feature is not None:
        filters.append(r.feature == req.feature)
    query = (
        select(
            r.hour,
            r.team,
            r.feature,
            r.model,
            r.backend,
            r.prompt_tokens,
            r.completion_tokens,
            r.prompt_cost_nusd,
            r.completion_cost_nusd,
            r.gpu_seconds,
            r.gpu_cost_nusd,
            r.idle_gpu_seconds,
            r.idle_cost_nusd,
        )
        .where(*filters)
        .order_by(r.hour, r.team, r.feature, r.model, r.backend)
    )
    by_hour: dict[datetime, list[focus.UsageLine]] = {}
    for row in session.execute(query):
        hour, team, feature, model, backend, prompt, completion, prompt_cost, completion_cost = row[:9]
        gpu_s, gpu_cost, idle_s, idle_cost = row[9:]
        by_hour.setdefault(hour, []).append(
            focus.UsageLine(
                team,
                feature,
                model,
                backend,
                int(prompt),
                int(completion),
                int(prompt_cost),
                int(completion_cost),
                Decimal(gpu_s),
                int(gpu_cost),
                Decimal(idle_s),
                int(idle_cost),
            )
        )
    return by_hour


def _ledger_lines(session: Session, hour: datetime, req: ExportRequest) -> list[focus.UsageLine]:
    """One hour aggregated from the ledgers, as the rollup job would store it."""
    lines = []
    for (team, feature, model, backend), t in aggregate_hour(session, hour).items():
        if req.team is not None and team != req.team:
            continue
        if req.feature is not None and feature != req.feature:
            continue
        lines.append(
            focus.UsageLine(
                team,
                feature,
                model,
                backend,
                t.prompt_tokens,
                t.completion_tokens,
                t.prompt_cost_nusd,
                t.completion_cost_nusd,
                t.gpu_seconds,
                t.gpu_cost_nusd,
                t.idle_gpu_seconds,
                t.idle_cost_nusd,
            )
        )
    return lines


# --- Ledger ---


def _ledger_filters(req: ExportRequest) -> list[Any]:
    t = TokenLedgerRow
    filters: list[Any] = [t.started_at >= req.start, t.started_at < req.end]
    if req.team is not None:
        filters.append(t.team == req.team)
    if req.feature is not None:
        filters.append(t.feature == req.feature)
    return filters


def _iter_ledger(session: Session, config: FinopsConfig, req: ExportRequest) -> Iterator[bytes]:
    yield encode_rows([ledger.COLUMNS])
    if session.get_bind().dialect.name == "postgresql":
        yield from _ledger_rows_postgres(session, req)
    else:
        yield from ledger_rows_batched(session, req)


def ledger_rows_batched(
    session: Session, req: ExportRequest, batch_rows: int = LEDGER_BATCH_ROWS
) -> Iterator[bytes]:
    """The ledger export's data rows on any database: keyset pages of calls, each with its GPU sums."""
    t = TokenLedgerRow
    g = GpuLedgerRow
    columns = [getattr(t, name) for name in ledger.LEDGER_COLUMNS]
    after: tuple[datetime, int] | None = None
    while True:
        query = select(t.started_at, t.id, *columns).where(*_ledger_filters(req))
        if after is not None:
            query = query.where(tuple_(t.started_at, t.id) > tuple_(*after))
        page = session.execute(query.order_by(t.started_at, t.id).limit(batch_rows)).all()
        if not page:
            return
        ids = [row[2 + _REQUEST_ID] for row in page]
        gpu = {
            request_id: (Decimal(seconds), int(cost))
            for request_id, seconds, cost in session.execute(
                select(g.request_id, func.sum(g.gpu_seconds), func.sum(g.cost_nusd))
                .where(g.request_id.in_(ids))
                .group_by(g.request_id)
            )
        }
        yield encode_rows(ledger.row_cells(row[2:], gpu.get(row[2 + _REQUEST_ID])) for row in page)
        after = (page[-1][0], page[-1][1])


_REQUEST_ID = ledger.LEDGER_COLUMNS.index("request_id")


def _ledger_rows_postgres(session: Session, req: ExportRequest) -> Iterator[bytes]:
    params = {"start": req.start, "end": req.end, "team": req.team, "feature": req.feature}
    sql = ledger.postgres_copy_sql(team=req.team is not None, feature=req.feature is not None)
    raw = session.connection().connection.dbapi_connection
    if not isinstance(raw, psycopg.Connection):
        raise ExportError("the Postgres ledger export needs the psycopg driver (postgresql+psycopg://)")
    with raw.cursor() as cursor:
        # Times are spelt from their text form, which must be ISO whatever the server's default.
        cursor.execute("SET LOCAL DateStyle = 'ISO, MDY'")
        yield from _copy_chunks(cursor, sql, params)


def _copy_chunks(cursor: psycopg.Cursor[Any], sql: str, params: dict[str, Any]) -> Iterator[bytes]:
    with cursor.copy(sql, params) as copy:
        pending: list[bytes] = []
        size = 0
        for data in copy:
            pending.append(bytes(data))
            size += len(data)
            if size >= CHUNK_BYTES:
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)
