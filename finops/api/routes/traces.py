"""Traces: the costliest closed traces of a period (finops.traces.queries.top_traces), and one trace's
waterfall computed from its token-ledger calls (finops.traces.queries.trace_detail).

A team token sees only traces whose first call is its team's, and in their waterfall only its own calls.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from finops.api.auth import AnyRole, RoleRoute
from finops.api.context import ApiContext, get_context
from finops.api.errors import ERROR_RESPONSES, not_found
from finops.api.pagination import Page, Paging
from finops.api.params import PRINTABLE, TagQuery
from finops.api.period import PeriodQuery
from finops.traces.amplification import CallMark
from finops.traces.models import BREAKDOWN_PARTS, TraceCostRow
from finops.traces.queries import top_traces, trace_detail

router = APIRouter(route_class=RoleRoute, tags=["traces"], responses=ERROR_RESPONSES)
Context = Annotated[ApiContext, Depends(get_context)]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FACTOR_PLACES = Decimal("0.000001")


class TraceView(BaseModel):
    trace_id: str
    team: str
    feature: str
    first_call_at: datetime
    last_call_at: datetime
    calls: int
    retries: int
    total_tokens: int
    total_cost_nusd: int
    # total / baseline; null when the trace has no baseline.
    amplification_tokens: Decimal | None
    amplification_cost: Decimal | None
    baseline_source: str
    # baseline + the other parts = total, exactly (tokens and nano-USD).
    breakdown_tokens: dict[str, int]
    breakdown_cost_nusd: dict[str, int]


class WaterfallCall(BaseModel):
    request_id: str
    started_at: datetime
    ended_at: datetime
    # From the start of the trace's first call.
    offset_us: int
    duration_us: int
    endpoint: str
    stage: str | None
    model: str | None
    team: str | None
    feature: str | None
    status_code: int
    prompt_tokens: int
    completion_tokens: int
    cost_nusd: int
    category: str
    retry_reason: str | None
    # Where this call's tokens went in the trace's breakdown.
    breakdown_tokens: dict[str, int]


class TraceDetail(BaseModel):
    trace: TraceView
    waterfall: Page[WaterfallCall]


def _factor(value: Fraction | Decimal | None) -> Decimal | None:
    if value is None:
        return None
    exact = Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else value
    return exact.quantize(_FACTOR_PLACES)


def _row_view(row: TraceCostRow) -> TraceView:
    return TraceView(
        trace_id=row.trace_id,
        team=row.team,
        feature=row.feature,
        first_call_at=row.first_call_at,
        last_call_at=row.last_call_at,
        calls=row.calls,
        retries=row.retries,
        total_tokens=row.total_tokens,
        total_cost_nusd=row.total_cost_nusd,
        amplification_tokens=_factor(row.amplification_tokens),
        amplification_cost=_factor(row.amplification_cost),
        baseline_source=row.baseline_source,
        breakdown_tokens={p: getattr(row, f"{p}_tokens") for p in BREAKDOWN_PARTS},
        breakdown_cost_nusd={p: getattr(row, f"{p}_cost_nusd") for p in BREAKDOWN_PARTS},
    )


def _at(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _call_view(mark: CallMark, first_us: int) -> WaterfallCall:
    call = mark.call
    return WaterfallCall(
        request_id=call.request_id,
        started_at=_at(call.started_at_us),
        ended_at=_at(call.ended_at_us),
        offset_us=call.started_at_us - first_us,
        duration_us=call.ended_at_us - call.started_at_us,
        endpoint=call.endpoint,
        stage=call.stage,
        model=call.model,
        team=call.team,
        feature=call.feature,
        status_code=call.status_code,
        prompt_tokens=call.prompt_tokens,
        completion_tokens=call.completion_tokens,
        cost_nusd=call.cost_nusd,
        category=mark.category,
        retry_reason=mark.retry_reason,
        breakdown_tokens=mark.tokens.as_dict(),
    )


@router.get("/traces/top", summary="the costliest closed traces whose first call lies in the period")
def get_top_traces(
    principal: AnyRole,
    context: Context,
    period: PeriodQuery,
    page: Paging,
    team: TagQuery = None,
    feature: TagQuery = None,
) -> Page[TraceView]:
    team = principal.team_scope(team)
    with context.unit_of_work() as session:
        rows = top_traces(session, period.start, period.end, feature=feature, team=team, limit=page.fetch)
        views = [_row_view(r) for r in rows]
    items, next_offset = page.slice(views)
    return Page[TraceView](items=items, limit=page.limit, offset=page.offset, next_offset=next_offset)


@router.get("/traces/{trace_id:path}", summary="one trace, closed or open, with its calls as a waterfall")
def get_trace(
    principal: AnyRole,
    context: Context,
    trace_id: Annotated[str, Path(min_length=1, max_length=128, pattern=PRINTABLE)],
    page: Paging,
) -> TraceDetail:
    team = principal.team_scope(None)
    with context.unit_of_work() as session:
        found = trace_detail(session, trace_id, team=team)
    if found is None:
        raise not_found(f"no trace {trace_id!r}", "trace_id")
    cost, _calls = found
    first = cost.first_call_at_us
    marks = [m for m in cost.marks if team is None or m.call.team == team]
    items, next_offset = page.slice(marks)
    head = cost.marks[0].call
    trace = TraceView(
        trace_id=cost.trace_id,
        team=head.team or "",
        feature=head.feature or "",
        first_call_at=_at(cost.first_call_at_us),
        last_call_at=_at(cost.last_call_at_us),
        calls=cost.calls,
        retries=cost.retries,
        total_tokens=cost.total_tokens,
        total_cost_nusd=cost.total_cost_nusd,
        amplification_tokens=_factor(cost.amplification_tokens),
        amplification_cost=_factor(cost.amplification_cost),
        baseline_source=cost.baseline_source,
        breakdown_tokens=cost.tokens.as_dict(),
        breakdown_cost_nusd=cost.cost_nusd.as_dict(),
    )
    waterfall = Page[WaterfallCall](
        items=[_call_view(m, first) for m in items],
        limit=page.limit,
        offset=page.offset,
        next_offset=next_offset,
    )
    return TraceDetail(trace=trace, waterfall=waterfall)
