"""Budgets' standing for the dashboards, the API and the CLI: spend, percent, forecast, crossed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from finops.budgets import evaluate
from finops.budgets.models import BudgetRow
from finops.budgets.periods import month_bounds
from finops.budgets.service import BudgetError, get_budget, list_budgets, scope_of, thresholds_of
from finops.budgets.spend import (
    Scope,
    hourly_rollup_spend,
    ledger_spend_nusd,
    newest_spend_at,
    rollup_cut,
    spend_of_scopes,
    split_by_source,
)
from finops.config import FinopsConfig


@dataclass(frozen=True)
class BudgetStatus:
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


def scope_key(row: BudgetRow) -> Scope:
    return Scope(row.team, row.feature, row.model)


def status_of(session: Session, config: FinopsConfig, row: BudgetRow, now: datetime) -> BudgetStatus:
    return statuses_of(session, config, [row], now)[0]


def statuses_of(
    session: Session, config: FinopsConfig, rows: Sequence[BudgetRow], now: datetime
) -> list[BudgetStatus]:
    """The standing of each budget in ``rows``; the spend of all budgets of one basis is read at once."""
    start, end = month_bounds(now, config.timezone)
    spend = spend_of_budgets(session, rows, start, end)
    return [_status(row, total, start, end, now) for row, total in zip(rows, spend, strict=True)]


def spend_of_budgets(
    session: Session, rows: Sequence[BudgetRow], start: datetime, end: datetime
) -> list[int]:
    """Each budget's spend in [start, end), in the order of ``rows``: one grouped read per basis."""
    spend: dict[int, int] = {}
    for basis in sorted({row.basis for row in rows}):
        mine = [row for row in rows if row.basis == basis]
        totals = spend_of_scopes(session, [scope_key(row) for row in mine], basis, start, end)
        spend.update({id(row): total for row, total in zip(mine, totals, strict=True)})
    return [spend[id(row)] for row in rows]


def _status(row: BudgetRow, spend: int, start: datetime, end: datetime, now: datetime) -> BudgetStatus:
    thresholds = thresholds_of(row)
    return BudgetStatus(
        name=row.name,
        scope=scope_of(row),
        basis=row.basis,
        amount_nusd=row.monthly_nusd,
        spend_nusd=spend,
        percent=evaluate.percent(spend, row.monthly_nusd),
        forecast_nusd=evaluate.forecast_nusd(spend, start, end, now),
        period_start=start,
        period_end=end,
        thresholds=thresholds,
        crossed=evaluate.crossed(spend, row.monthly_nusd, thresholds),
        hard_limit=row.hard_limit,
    )


def budget_statuses(
    session: Session, config: FinopsConfig, now: datetime, *, team: str | None = None
) -> list[BudgetStatus]:
    """Every budget's standing in the period holding ``now``; ``team`` keeps the budgets scoped to it."""
    rows = [row for row in list_budgets(session) if team is None or row.team == team]
    return statuses_of(session, config, rows, now)


def daily_spend(
    session: Session, config: FinopsConfig, budget_name: str, period_start: datetime, period_end: datetime
) -> list[tuple[date, int]]:
    """Spend per calendar day (in the configured time zone) of [period_start, period_end), for the
    burn-down chart. Days are whole local days, clipped to the range.

    Each day is split between the sources as ``spend_nusd`` splits a range, but the rollups' hours of
    the whole period come from one query, and the ledger is read only for the parts of days the rollups
    do not hold (normally today's hours since the last rollup run) and not past the newest call.
    """
    if period_end <= period_start:
        raise BudgetError("period_end: must be after period_start")
    row = get_budget(session, budget_name)
    zone = ZoneInfo(config.timezone)
    scope = scope_key(row)
    cut = rollup_cut(session, row.basis)
    rolled_all, _ = split_by_source(period_start, period_end, cut)
    hourly = hourly_rollup_spend(session, scope, row.basis, *rolled_all) if rolled_all is not None else {}
    newest = newest_spend_at(session, row.basis)
    days: list[tuple[date, int]] = []
    day = period_start.astimezone(zone).date()
    while True:
        local_start = datetime(day.year, day.month, day.day, tzinfo=zone)
        next_day = day + timedelta(days=1)
        local_end = datetime(next_day.year, next_day.month, next_day.day, tzinfo=zone)
        start, end = max(local_start, period_start), min(local_end, period_end)
        if start >= period_end:
            break
        rolled, ledger_ranges = split_by_source(start, end, cut)
        total = 0
        if rolled is not None:
            total += sum(nusd for hour, nusd in hourly.items() if rolled[0] <= hour < rolled[1])
        for low, high in ledger_ranges:
            if newest is not None and low <= newest:
                total += ledger_spend_nusd(session, scope, row.basis, low, high)
        days.append((day, total))
        day = next_day
    return days
