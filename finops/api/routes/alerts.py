"""Alerts (finops.alerts.queries.list_alerts) with their deliveries, and re-delivery of a failed one
(finops.alerts.outbox.redeliver). A team token sees the alerts of budgets scoped to its team.

A re-delivery is put back to pending here; a running worker sends it (its sweep picks up pending rows
that no task holds), so the API process needs no broker."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from finops.alerts.models import AlertDeliveryRow
from finops.alerts.outbox import redeliver
from finops.alerts.queries import AlertView, DeliveryView, list_alerts
from finops.api.auth import Admin, AnyRole, Reader, RoleRoute
from finops.api.context import ApiContext, get_context
from finops.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse, not_found
from finops.api.pagination import Page, Paging
from finops.config import FinopsConfig

router = APIRouter(route_class=RoleRoute, tags=["alerts"], responses=ERROR_RESPONSES)
Context = Annotated[ApiContext, Depends(get_context)]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "delivered already, or being sent right now"}
}
# Postgres' BIGINT; a larger id is no delivery at all.
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class DeliveryStatus(BaseModel):
    id: int
    channel: str
    # pending | sending | delivered | failed
    status: str
    attempts: int
    last_error: str | None
    delivered_at: datetime | None


class AlertItem(BaseModel):
    id: int
    source: str
    kind: str
    budget: str | None
    scope: dict[str, str]
    period_start: datetime | None
    threshold: Decimal | None
    spend_nusd: int | None
    amount_nusd: int | None
    created_at: datetime
    subject: str
    deliveries: list[DeliveryStatus]


def config_secrets(config: FinopsConfig) -> list[str]:
    found = [c.webhook_url for c in config.channels.values() if c.webhook_url]
    if config.smtp.password:
        found.append(config.smtp.password)
    return found


def scrub(text: str | None, secrets: list[str]) -> str | None:
    """The outbox keeps errors free of secrets; this is the boundary's second lock on that door."""
    if text is None:
        return None
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def _delivery(view: DeliveryView, secrets: list[str]) -> DeliveryStatus:
    return DeliveryStatus(
        id=view.id,
        channel=view.channel,
        status=view.status,
        attempts=view.attempts,
        last_error=scrub(view.last_error, secrets),
        delivered_at=view.delivered_at,
    )


def _alert(view: AlertView, secrets: list[str]) -> AlertItem:
    return AlertItem(
        id=view.id,
        source=view.source,
        kind=view.kind,
        budget=view.budget,
        scope=view.scope,
        period_start=view.period_start,
        threshold=view.threshold,
        spend_nusd=view.spend_nusd,
        amount_nusd=view.amount_nusd,
        created_at=view.created_at,
        subject=view.subject,
        deliveries=[_delivery(d, secrets) for d in view.deliveries],
    )


def _row_status(row: AlertDeliveryRow, secrets: list[str]) -> DeliveryStatus:
    view = DeliveryView(row.channel, row.status, row.attempts, row.last_error, row.delivered_at, row.id)
    return _delivery(view, secrets)


@router.get("/alerts", summary="alerts, newest first, each with its deliveries' status")
def get_alerts(principal: AnyRole, context: Context, page: Paging) -> Page[AlertItem]:
    team = principal.team_scope(None)
    secrets = config_secrets(context.config)
    with context.unit_of_work() as session:
        views = list_alerts(session, team=team, limit=page.limit + 1, offset=page.offset)
        alerts = [_alert(v, secrets) for v in views]
    items, next_offset = page.after_offset(alerts)
    return Page[AlertItem](items=items, limit=page.limit, offset=page.offset, next_offset=next_offset)


@router.get("/alerts/deliveries/{delivery_id}", summary="one delivery's status")
def get_delivery(_principal: Reader, context: Context, delivery_id: DeliveryId) -> DeliveryStatus:
    with context.unit_of_work() as session:
        row = session.get(AlertDeliveryRow, delivery_id)
        if row is None:
            raise not_found(f"no alert delivery with id {delivery_id}", "delivery_id")
        return _row_status(row, config_secrets(context.config))


@router.post(
    "/alerts/deliveries/{delivery_id}/redeliver",
    summary="send a failed delivery again (a running worker sends it)",
    responses=CONFLICT,
)
def post_redeliver(_principal: Admin, context: Context, delivery_id: DeliveryId) -> DeliveryStatus:
    with context.unit_of_work() as session:
        try:
            row = redeliver(session, delivery_id)
        except LookupError as exc:
            raise not_found(str(exc), "delivery_id") from exc
        except ValueError as exc:
            raise ApiError(409, "conflict", str(exc), "delivery_id") from exc
        return _row_status(row, config_secrets(context.config))
