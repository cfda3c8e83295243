"""Budgets through finops.budgets.service (the rules of `finops budgets`: one place), and their standing
through finops.budgets.queries. Like the CLI, every call first syncs the budgets of finops.yaml, which
win over the API's and cannot be changed or deleted here."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from finops.api.auth import Admin, AnyRole, Reader, RoleRoute
from finops.api.context import ApiContext, get_context
from finops.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse, invalid, not_found
from finops.api.pagination import Page, Paging
from finops.api.params import PRINTABLE
from finops.budgets.models import BudgetRow
from finops.budgets.queries import BudgetStatus, budget_statuses
from finops.budgets.service import (
    BudgetError,
    create_budget,
    delete_budget,
    list_budgets,
    nusd_to_usd,
    scope_of,
    spec_of,
    sync_config_budgets,
    update_budget,
)
from finops.config import BudgetConfig, BudgetScopeConfig

CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "a budget of that name exists already"}
}
router = APIRouter(route_class=RoleRoute, tags=["budgets"], responses=ERROR_RESPONSES)
Context = Annotated[ApiContext, Depends(get_context)]
BudgetName = Annotated[str, Path(min_length=1, max_length=128, pattern=PRINTABLE)]
# The largest amount whose nano-USD fit the database's 64-bit integers.
MAX_MONTHLY_USD = Decimal(2**63 - 1) / 10**9


class BudgetView(BaseModel):
    name: str
    scope: dict[str, str]
    monthly_usd: Decimal
    monthly_nusd: int
    basis: str
    thresholds: list[Decimal]
    forecast: bool
    # Channel names only; where they point (webhook URLs, SMTP) stays in finops.yaml.
    channels: list[str]
    hard_limit: bool
    # "config" (finops.yaml; change it there) or "api" (made by the CLI or the API).
    source: str
    created_at: datetime
    updated_at: datetime


class BudgetStatusView(BaseModel):
    name: str
    scope: dict[str, str]
    basis: str
    amount_nusd: int
    spend_nusd: int
    percent: Decimal
    forecast_nusd: int
    period_start: datetime
    period_end: datetime
    thresholds: list[Decimal]
    crossed: list[Decimal]
    hard_limit: bool


Text128 = Annotated[str, Field(min_length=1, max_length=128, pattern=PRINTABLE)]
# Thresholds are stored joined in one column; ten is more than any budget needs.
MAX_THRESHOLDS = 10


class ScopeIn(BudgetScopeConfig):
    team: Text128 | None = None
    feature: Text128 | None = None
    model: Annotated[str, Field(min_length=1, max_length=256, pattern=PRINTABLE)] | None = None


class BudgetCreate(BudgetConfig):
    """A budget as in finops.yaml's ``budgets:`` list; the service checks it as it does for the CLI.
    The fields are narrowed here only to what the database can store (no control characters, amounts
    that fit a 64-bit integer of nano-USD)."""

    name: Text128
    scope: ScopeIn = ScopeIn()
    monthly_usd: Decimal = Field(gt=0, le=MAX_MONTHLY_USD)
    thresholds: list[Decimal] = Field(
        default=[Decimal("0.5"), Decimal("0.8"), Decimal("1.0")], min_length=1, max_length=MAX_THRESHOLDS
    )
    channels: list[Text128] = Field(default_factory=list)


class BudgetChanges(BaseModel):
    """Fields to change (absent ones are kept); ``scope`` replaces the whole scope."""

    model_config = ConfigDict(extra="forbid")

    name: Text128 | None = None
    scope: ScopeIn | None = None
    monthly_usd: Decimal | None = Field(default=None, gt=0, le=MAX_MONTHLY_USD)
    basis: Literal["tokens", "gpu"] | None = None
    thresholds: list[Decimal] | None = Field(default=None, min_length=1, max_length=MAX_THRESHOLDS)
    forecast: bool | None = None
    channels: list[Text128] | None = None
    hard_limit: bool | None = None


def _view(row: BudgetRow) -> BudgetView:
    spec = spec_of(row)
    return BudgetView(
        name=row.name,
        scope=scope_of(row),
        monthly_usd=nusd_to_usd(row.monthly_nusd),
        monthly_nusd=row.monthly_nusd,
        basis=row.basis,
        thresholds=spec.thresholds,
        forecast=row.forecast,
        channels=spec.channels,
        hard_limit=row.hard_limit,
        source=row.source,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _status_view(status: BudgetStatus) -> BudgetStatusView:
    return BudgetStatusView(**{name: getattr(status, name) for name in BudgetStatusView.model_fields})


def _budget_error(exc: BudgetError) -> ApiError:
    """The service's messages start with the field they are about ("monthly_usd: ...")."""
    message = str(exc)
    head = message.split(":", 1)[0]
    field = head if head.replace("_", "").replace(".", "").isalnum() else None
    if field == "name" and "exists already" in message:
        return ApiError(409, "conflict", message, field)
    return invalid(message, field)


def _find(session: Session, name: str) -> BudgetRow:
    for row in list_budgets(session):
        if row.name == name:
            return row
    raise not_found(f"no budget named {name!r}", "name")


@router.get("/budgets", summary="list budgets (from finops.yaml and made by the CLI or API)")
def get_budgets(_principal: Reader, context: Context, page: Paging) -> Page[BudgetView]:
    with context.unit_of_work() as session:
        sync_config_budgets(session, context.config)
        views = [_view(r) for r in list_budgets(session)]
    items, next_offset = page.slice(views)
    return Page[BudgetView](items=items, limit=page.limit, offset=page.offset, next_offset=next_offset)


@router.get("/budgets/status", summary="each budget's spend, forecast and thresholds this period")
def get_budget_statuses(principal: AnyRole, context: Context, page: Paging) -> Page[BudgetStatusView]:
    # A team token sees the budgets scoped to its team (its spend), nobody else's.
    team = principal.team_scope(None)
    with context.unit_of_work() as session:
        sync_config_budgets(session, context.config)
        statuses = budget_statuses(session, context.config, datetime.now(UTC), team=team)
        views = [_status_view(s) for s in statuses]
    items, next_offset = page.slice(views)
    return Page[BudgetStatusView](items=items, limit=page.limit, offset=page.offset, next_offset=next_offset)


@router.get("/budgets/{name}", summary="one budget")
def get_budget(_principal: Reader, context: Context, name: BudgetName) -> BudgetView:
    with context.unit_of_work() as session:
        sync_config_budgets(session, context.config)
        return _view(_find(session, name))


@router.post("/budgets", status_code=201, summary="create a budget", responses=CONFLICT)
def post_budget(_principal: Admin, context: Context, body: BudgetCreate) -> BudgetView:
    with context.unit_of_work() as session:
        sync_config_budgets(session, context.config)
        try:
            row = create_budget(session, context.config, body.model_dump())
        except BudgetError as exc:
            raise _budget_error(exc) from exc
        return _view(row)


@router.patch("/budgets/{name}", summary="change some of a budget's fields", responses=CONFLICT)
def patch_budget(_principal: Admin, context: Context, name: BudgetName, body: BudgetChanges) -> BudgetView:
    changes = body.model_dump(exclude_unset=True)
    if not changes or any(value is None for value in changes.values()):
        raise invalid("give at least one field to change, none of them null", None)
    with context.unit_of_work() as session:
        sync_config_budgets(session, context.config)
        _find(session, name)
        try:
            row = update_budget(session, context.config, name, changes)
        except BudgetError as exc:
            raise _budget_error(exc) from exc
        return _view(row)


@router.delete("/budgets/{name}", status_code=204, summary="delete a budget (its alerts are kept)")
def remove_budget(_principal: Admin, context: Context, name: BudgetName) -> Response:
    with context.unit_of_work() as session:
        sync_config_budgets(session, context.config)
        _find(session, name)
        try:
            delete_budget(session, name)
        except BudgetError as exc:
            raise _budget_error(exc) from exc
    return Response(status_code=204)
