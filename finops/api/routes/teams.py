"""Teams. finops has no teams table: a team is a tag value, so the teams are those known from API keys
and from the ledger (as rolled up hourly into usage_rollups), each with its count of active keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from finops.api.auth import AnyRole, RoleRoute
from finops.api.context import ApiContext, get_context
from finops.api.errors import ERROR_RESPONSES
from finops.api.pagination import Page, Paging
from finops.keys.models import ApiKeyRow
from finops.rollups.models import IDLE, UsageRollupRow

router = APIRouter(route_class=RoleRoute, tags=["teams"], responses=ERROR_RESPONSES)


class TeamView(BaseModel):
    name: str
    active_keys: int
    has_usage: bool


def known_teams(session: Session) -> list[TeamView]:
    active = select(ApiKeyRow.team, func.count()).where(ApiKeyRow.revoked_at.is_(None))
    keys = {str(team): int(count) for team, count in session.execute(active.group_by(ApiKeyRow.team))}
    keyed = set(session.scalars(select(ApiKeyRow.team).distinct()))
    used = set(session.scalars(select(UsageRollupRow.team).where(UsageRollupRow.team != IDLE).distinct()))
    return [
        TeamView(name=name, active_keys=keys.get(name, 0), has_usage=name in used)
        for name in sorted(keyed | used)
    ]


@router.get("/teams", summary="teams known from keys and usage (a team token sees its own)")
def get_teams(
    principal: AnyRole, context: Annotated[ApiContext, Depends(get_context)], page: Paging
) -> Page[TeamView]:
    with context.unit_of_work() as session:
        teams = known_teams(session)
    scope = principal.team_scope(None)
    if scope is not None:
        teams = [t for t in teams if t.name == scope]
    items, next_offset = page.slice(teams)
    return Page[TeamView](items=items, limit=page.limit, offset=page.offset, next_offset=next_offset)
