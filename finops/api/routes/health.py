"""``GET /health``: the API answers and reaches its database (a token is needed, like everywhere)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import text

from finops.api.auth import AnyRole, RoleRoute
from finops.api.context import ApiContext, get_context
from finops.api.errors import ERROR_RESPONSES


def _version() -> str:
    try:
        return version("finops")
    except PackageNotFoundError:
        return "unknown"


router = APIRouter(route_class=RoleRoute, tags=["health"], responses=ERROR_RESPONSES)


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["ok"]
    version: str
    role: str
    team: str | None


@router.get("/health", summary="the API is up and reaches its database")
def health(principal: AnyRole, context: Annotated[ApiContext, Depends(get_context)]) -> Health:
    with context.unit_of_work() as session:
        session.execute(text("SELECT 1"))
    return Health(status="ok", database="ok", version=_version(), role=principal.role, team=principal.team)
