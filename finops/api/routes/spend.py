"""Spend over a period grouped by team, feature, model or backend (finops.rollups.queries.spend_by).

``basis=tokens`` prices calls by their tokens; ``basis=gpu`` by the GPU-seconds they held, idle time
included (its own ``(idle)`` line, or inside each backend's line when grouped by backend). Every line
carries both costs; ``cost_nusd`` is the one of the chosen basis. A team token reads only its own team.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from finops.api.auth import AnyRole, RoleRoute
from finops.api.context import ApiContext, get_context
from finops.api.errors import ERROR_RESPONSES
from finops.api.pagination import Paging
from finops.api.params import TagQuery
from finops.api.period import PeriodQuery
from finops.rollups.queries import Basis, GroupBy, basis_cost_nusd, spend_by

router = APIRouter(route_class=RoleRoute, tags=["spend"], responses=ERROR_RESPONSES)


class SpendLineView(BaseModel):
    group: str
    cost_nusd: int
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    token_cost_nusd: int
    gpu_seconds: Decimal
    gpu_cost_nusd: int
    idle_gpu_seconds: Decimal
    idle_cost_nusd: int


class SpendReport(BaseModel):
    by: GroupBy
    basis: Basis
    start: datetime
    end: datetime
    team: str | None
    # Over every line, not only this page's.
    total_cost_nusd: int
    items: list[SpendLineView]
    limit: int
    offset: int
    next_offset: int | None


@router.get("/spend", summary="spend by team, feature, model or backend over a period")
def get_spend(
    principal: AnyRole,
    context: Annotated[ApiContext, Depends(get_context)],
    period: PeriodQuery,
    page: Paging,
    by: GroupBy = "team",
    basis: Basis = "tokens",
    team: TagQuery = None,
    feature: TagQuery = None,
    model: TagQuery = None,
) -> SpendReport:
    team = principal.team_scope(team)
    with context.unit_of_work() as session:
        lines = spend_by(session, period.start, period.end, by, team=team, feature=feature, model=model)
    views = [SpendLineView(cost_nusd=basis_cost_nusd(line, basis), **asdict(line)) for line in lines]
    items, next_offset = page.slice(views)
    return SpendReport(
        by=by,
        basis=basis,
        start=period.start,
        end=period.end,
        team=team,
        total_cost_nusd=sum(v.cost_nusd for v in views),
        items=items,
        limit=page.limit,
        offset=page.offset,
        next_offset=next_offset,
    )
