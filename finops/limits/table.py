"""Which budgets are hard limits, and the name of each one's counter (pure, but for the loader)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from finops.budgets.models import BudgetRow
from finops.budgets.scope import describe, matches
from finops.config import BudgetConfig, FinopsConfig

NUSD_PER_USD = 10**9
KEY_PREFIX = "finops:limit:"


@dataclass(frozen=True, slots=True)
class LimitBudget:
    """A budget with ``hard_limit``: calls in its scope are refused once its period's spend reaches it."""

    name: str
    team: str | None
    feature: str | None
    model: str | None
    amount_nusd: int
    basis: str  # "tokens" | "gpu"

    @property
    def scope_text(self) -> str:
        return describe(self)


def usd_to_nusd(usd: Decimal) -> int:
    return int((usd * NUSD_PER_USD).to_integral_value(ROUND_HALF_UP))


def from_config(budget: BudgetConfig) -> LimitBudget:
    scope = budget.scope
    return LimitBudget(
        budget.name, scope.team, scope.feature, scope.model, usd_to_nusd(budget.monthly_usd), budget.basis
    )


def from_row(row: BudgetRow) -> LimitBudget:
    return LimitBudget(row.name, row.team, row.feature, row.model, row.monthly_nusd, row.basis)


def merge_limits(config_budgets: Iterable[BudgetConfig], rows: Iterable[BudgetRow]) -> list[LimitBudget]:
    """The hard-limit budgets: the table's, with config's laid over them by name.

    Config wins because the budgets service syncs config into the table on start anyway ("config wins
    on restart"); laying it over here also covers a table that is missing, empty, or not synced yet.
    """
    by_name: dict[str, LimitBudget | None] = {}
    for row in rows:
        by_name[row.name] = from_row(row) if row.hard_limit else None
    for budget in config_budgets:
        by_name[budget.name] = from_config(budget) if budget.hard_limit else None
    return sorted((b for b in by_name.values() if b is not None), key=lambda b: b.name)


def budget_rows(session: Session) -> list[BudgetRow]:
    """Every stored budget; none while the budgets table does not exist yet (an older schema)."""
    if not inspect(session.connection()).has_table(BudgetRow.__tablename__):
        return []
    return list(session.scalars(select(BudgetRow)))


def load_limits(session: Session, config: FinopsConfig) -> list[LimitBudget]:
    return merge_limits(config.budgets, budget_rows(session))


def counter_key(budget_name: str, period_start: datetime) -> str:
    """One counter per budget and period; the period in the key makes rollover a fresh counter."""
    return f"{KEY_PREFIX}{budget_name}:{period_start.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def matching(limits: Sequence[LimitBudget], team: str, feature: str, model: str) -> tuple[LimitBudget, ...]:
    return tuple(b for b in limits if matches(b, team, feature, model))
