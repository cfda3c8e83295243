"""Alerts as people see them (CLI, API, dashboards): budget alerts, and every other source's events
from the outbox (latency incidents...), newest first, each with its deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from finops.alerts.models import AlertDeliveryRow, BudgetAlertRow

BUDGET_SOURCE = "budget"


@dataclass(frozen=True)
class DeliveryView:
    channel: str
    status: str
    attempts: int
    last_error: str | None
    delivered_at: datetime | None
    # The outbox row's id (``finops alerts redeliver ID``).
    id: int = 0


@dataclass(frozen=True)
class AlertView:
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
    deliveries: list[DeliveryView]


def _deliveries(session: Session, source: str, source_ids: list[str]) -> dict[str, list[DeliveryView]]:
    found: dict[str, list[DeliveryView]] = {}
    if not source_ids:
        return found
    d = AlertDeliveryRow
    rows = session.scalars(
        select(d).where(d.source == source, d.source_id.in_(source_ids)).order_by(d.channel)
    )
    for row in rows:
        found.setdefault(row.source_id, []).append(
            DeliveryView(row.channel, row.status, row.attempts, row.last_error, row.delivered_at, row.id)
        )
    return found


def list_alerts(
    session: Session, *, team: str | None = None, limit: int = 100, offset: int = 0
) -> list[AlertView]:
    """Newest first. ``team`` keeps the budget alerts whose scope names that team (other sources'
    events carry no scope in the outbox, so they are left out then)."""
    if limit <= 0 or offset < 0:
        raise ValueError("limit must be positive and offset not negative")
    wanted = limit + offset
    a = BudgetAlertRow
    query = select(a).where(a.notified.is_(True))
    if team is not None:
        query = query.where(a.team == team)
    budget_rows = list(session.scalars(query.order_by(a.created_at.desc(), a.id.desc()).limit(wanted)))
    budget_deliveries = _deliveries(session, BUDGET_SOURCE, [str(r.id) for r in budget_rows])
    views = [
        AlertView(
            id=r.id,
            source=BUDGET_SOURCE,
            kind=r.kind,
            budget=r.budget_name,
            scope={k: v for k, v in (("team", r.team), ("feature", r.feature), ("model", r.model)) if v},
            period_start=r.period_start,
            threshold=Decimal(r.threshold).normalize(),
            spend_nusd=r.spend_nusd,
            amount_nusd=r.amount_nusd,
            created_at=r.created_at,
            subject=r.subject,
            deliveries=budget_deliveries.get(str(r.id), []),
        )
        for r in budget_rows
    ]
    if team is None:
        views += _other_sources(session, wanted)
    views.sort(key=lambda v: (v.created_at, v.id), reverse=True)
    return views[offset : offset + limit]


def _other_sources(session: Session, wanted: int) -> list[AlertView]:
    d = AlertDeliveryRow
    events = session.execute(
        select(d.source, d.source_id, func.min(d.id), func.min(d.created_at), func.min(d.subject))
        .where(d.source != BUDGET_SOURCE)
        .group_by(d.source, d.source_id)
        .order_by(func.min(d.created_at).desc())
        .limit(wanted)
    ).all()
    # One read of the deliveries per source, not one per event.
    ids_of: dict[str, list[str]] = {}
    for source, source_id, *_ in events:
        ids_of.setdefault(source, []).append(source_id)
    found = {source: _deliveries(session, source, ids) for source, ids in ids_of.items()}
    views = []
    for source, source_id, first_id, created_at, subject in events:
        deliveries = found[source].get(source_id, [])
        views.append(
            AlertView(
                id=int(first_id),
                source=source,
                kind=source,
                budget=None,
                scope={},
                period_start=None,
                threshold=None,
                spend_nusd=None,
                amount_nusd=None,
                created_at=created_at,
                subject=subject,
                deliveries=deliveries,
            )
        )
    return views
