"""Shared by the budget tests: a config with budgets and channels, and calls with chosen costs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from finops.alerts.models import AlertDeliveryRow, BudgetAlertRow
from finops.config import FinopsConfig
from finops.db import unit_of_work
from finops.ledger.store import insert_records
from tests.support.records import make_record

USD = 10**9


def spend(engine: Engine, at: datetime, cost_nusd: int, **tags: Any) -> None:
    """One call that started at ``at`` and cost ``cost_nusd``."""
    insert_records(
        engine,
        [
            make_record(
                started_at=at, cost_nusd=cost_nusd, prompt_cost_nusd=cost_nusd, completion_cost_nusd=0, **tags
            )
        ],
    )


def config_with(db_url: str, budgets: list[dict[str, Any]], **extra: Any) -> FinopsConfig:
    data: dict[str, Any] = {
        "database_url": db_url,
        "channels": {"ops": {"type": "console"}},
        "budgets": budgets,
        **extra,
    }
    return FinopsConfig.model_validate(data)


def alerts(engine: Engine) -> list[BudgetAlertRow]:
    with unit_of_work(engine) as session:
        rows = list(session.scalars(select(BudgetAlertRow).order_by(BudgetAlertRow.id)))
        session.expunge_all()
        return rows


def deliveries(engine: Engine) -> list[AlertDeliveryRow]:
    with unit_of_work(engine) as session:
        rows = list(session.scalars(select(AlertDeliveryRow).order_by(AlertDeliveryRow.id)))
        session.expunge_all()
        return rows
