"""Finance exports streamed as CSV: FOCUS 1.2 charges or the raw ledger (finops.exports.service, the
same bytes as `finops export`). The request is checked before the first byte, so a bad one is a JSON
error, never half a file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from finops.api.auth import Reader, RoleRoute
from finops.api.context import ApiContext, get_context
from finops.api.errors import ERROR_RESPONSES, invalid
from finops.api.params import TagQuery
from finops.api.period import PeriodQuery
from finops.db import make_sessionmaker
from finops.exports.service import (
    ExportError,
    ExportRequest,
    check_request,
    filename,
    iter_export,
    snapshot_engine,
)

# One request, one file of at most a year: a finance system asks month by month, and a runaway range
# would hold a database session and a worker thread for as long as it takes.
MAX_EXPORT_PERIOD = timedelta(days=366)
router = APIRouter(route_class=RoleRoute, tags=["exports"], responses=ERROR_RESPONSES)
CSV: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the CSV file, header first",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/exports/{format}",
    summary="a FOCUS or ledger CSV for a period, streamed",
    response_class=StreamingResponse,
    responses=CSV,
)
def get_export(
    _principal: Reader,
    context: Annotated[ApiContext, Depends(get_context)],
    format: Literal["focus", "ledger"],
    period: PeriodQuery,
    basis: Literal["tokens", "gpu"] = "tokens",
    team: TagQuery = None,
    feature: TagQuery = None,
) -> StreamingResponse:
    if period.end - period.start > MAX_EXPORT_PERIOD:
        raise invalid(
            f"an export covers at most {MAX_EXPORT_PERIOD.days} days; ask for a year at a time", "start"
        )
    request = ExportRequest(format, period.start, period.end, team, feature, basis)
    # The stream outlives this function, so its session is closed by the stream, not by a with-block.
    # One REPEATABLE READ snapshot on Postgres, as the CLI reads: the file adds up as of one moment.
    session = make_sessionmaker(snapshot_engine(context.engine))()
    try:
        check_request(session, request)
        chunks = iter_export(session, context.config, request)
    except ExportError as exc:
        session.close()
        raise invalid(str(exc), exc.field) from exc
    except BaseException:
        session.close()
        raise

    def stream() -> Iterator[bytes]:
        try:
            yield from chunks
        finally:
            session.close()

    return StreamingResponse(
        stream(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename(request)}"'},
    )
