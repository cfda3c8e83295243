"""The budgets job: sync config budgets, compute each budget's spend, record the alerts it calls for
(exactly once, by the unique key), and put their messages in the outbox.

Runs are not serialised: four workers running it at the same moment compute the same figures and try
the same inserts; ``INSERT ... ON CONFLICT DO NOTHING`` on (budget, period, kind, threshold) lets one
through, and only the run whose insert returned a row enqueues the deliveries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from finops.alerts import outbox
from finops.alerts.models import BudgetAlertRow
from finops.budgets import evaluate
from finops.budgets.message import AlertFacts, Amplification, Driver, dashboard_link, headline, render
from finops.budgets.models import BudgetRow
from finops.budgets.periods import month_bounds
from finops.budgets.queries import scope_key, spend_of_budgets
from finops.budgets.service import channels_of, list_budgets, scope_of, sync_config_budgets, thresholds_of
from finops.budgets.spend import IDLE_GROUP, spend_by
from finops.budgets.sql import insert_ignore
from finops.config import FinopsConfig

log = logging.getLogger("finops.budgets")
SOURCE = "budget"
DEFAULT_DASHBOARD_URL = "http://127.0.0.1:8050"
TOP = 3


@dataclass(frozen=True)
class BudgetsResult:
    budgets: int
    alerts: int
    deliveries: int
    swept: int
    alert_ids: list[int] = field(default_factory=list)


def dashboard_base(config: FinopsConfig) -> str:
    section = getattr(config, "dashboard", None)
    base_url = getattr(section, "base_url", None)
    return str(base_url()) if callable(base_url) else DEFAULT_DASHBOARD_URL


def run_budgets(session: Session, config: FinopsConfig, now: datetime | None = None) -> BudgetsResult:
    now = now or datetime.now(UTC)
    sync_config_budgets(session, config, now)
    alerts = deliveries = 0
    alert_ids: list[int] = []
    budgets = list_budgets(session)
    start, end = month_bounds(now, config.timezone)
    # Most runs record nothing: the spend of every budget (one grouped read per basis) and the alerts
    # already recorded this period (one read) settle that without a query per budget.
    spend = spend_of_budgets(session, budgets, start, end)
    recorded = _recorded_alerts(session, start)
    for row, spend_nusd in zip(budgets, spend, strict=True):
        new_ids, sent = evaluate_budget(
            session, config, row, now, spend_nusd=spend_nusd, recorded=recorded.get(row.id, [])
        )
        alert_ids += new_ids
        alerts += len(new_ids)
        deliveries += sent
    swept = outbox.sweep(session, now)
    return BudgetsResult(len(budgets), alerts, deliveries, len(swept), alert_ids)


Recorded = list[tuple[str, Decimal]]


def _recorded_alerts(session: Session, period_start: datetime) -> dict[int, Recorded]:
    """(kind, threshold) of the alerts recorded for the period, per budget id."""
    a = BudgetAlertRow
    recorded: dict[int, Recorded] = {}
    rows = session.execute(select(a.budget_id, a.kind, a.threshold).where(a.period_start == period_start))
    for budget_id, kind, threshold in rows:
        recorded.setdefault(budget_id, []).append((kind, Decimal(threshold)))
    return recorded


def evaluate_budget(
    session: Session,
    config: FinopsConfig,
    row: BudgetRow,
    now: datetime,
    *,
    spend_nusd: int | None = None,
    recorded: Recorded | None = None,
) -> tuple[list[int], int]:
    """Record the alerts ``row`` calls for now; returns the ids of alerts this run created and the
    number of deliveries it enqueued. ``spend_nusd`` and ``recorded``, when given, are this period's
    figures read for many budgets at once; they only decide whether there is anything to do."""
    start, end = month_bounds(now, config.timezone)
    scope = scope_key(row)
    if recorded is None:
        recorded = _recorded_alerts(session, start).get(row.id, [])

    def decide(spend: int) -> list[evaluate.Decision]:
        return evaluate.decide(
            spend,
            row.monthly_nusd,
            thresholds_of(row),
            recorded,
            forecast=row.forecast,
            projected_nusd=evaluate.forecast_nusd(spend, start, end, now),
            elapsed=now - start,
        )

    if spend_nusd is not None and not decide(spend_nusd):
        return [], 0
    # Something to record: the spend again, per driver, so that the alert's figures add up to its total;
    # the decision is taken again on it (calls may have landed since the first read).
    driver_kind = "feature" if scope.team is not None else "team"
    by_driver = spend_by(session, scope, row.basis, start, end, driver_kind)  # type: ignore[arg-type]
    spend = sum(by_driver.values())
    projected = evaluate.forecast_nusd(spend, start, end, now)
    decisions = decide(spend)
    if not decisions:
        return [], 0
    drivers = sorted(by_driver.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    facts = AlertFacts(
        budget=row.name,
        scope=scope_of(row),
        basis=row.basis,
        kind="threshold",
        threshold=Decimal(0),
        period_start=start,
        period_end=end,
        timezone=config.timezone,
        spend_nusd=spend,
        amount_nusd=row.monthly_nusd,
        forecast_nusd=projected,
        driver_kind=driver_kind,
        drivers=[Driver(name, nusd) for name, nusd in drivers],
        amplification=_amplification(session, start, end, driver_kind, [n for n, _ in drivers]),
        dashboard_url=dashboard_link(dashboard_base(config), scope_of(row)),
    )
    new_ids: list[int] = []
    sent = 0
    for decision in decisions:
        alert_facts = AlertFacts(**{**vars(facts), "kind": decision.kind, "threshold": decision.threshold})
        alert_id = session.execute(
            insert_ignore(session, BudgetAlertRow)
            .values(
                budget_id=row.id,
                budget_name=row.name,
                team=row.team,
                feature=row.feature,
                model=row.model,
                basis=row.basis,
                kind=decision.kind,
                threshold=decision.threshold,
                notified=decision.notify,
                period_start=start,
                period_end=end,
                spend_nusd=spend,
                amount_nusd=row.monthly_nusd,
                forecast_nusd=projected,
                subject=headline(alert_facts)[:512],
                created_at=now,
            )
            .returning(BudgetAlertRow.id)
        ).scalar()
        if alert_id is None:
            continue  # another run recorded it first
        new_ids.append(int(alert_id))
        if not decision.notify:
            continue
        message = render(alert_facts)
        for channel in channels_of(row):
            sent += outbox.enqueue(
                session, source=SOURCE, source_id=str(alert_id), channel=channel, message=message
            )
        log.info("budget %s: %s alert %s recorded", row.name, decision.kind, decision.threshold)
    return new_ids, sent


def _amplification(
    session: Session, start: datetime, end: datetime, by: str, groups: list[str]
) -> list[Amplification]:
    """The drivers' amplification factors, most amplified first (closed traces of the period)."""
    from finops.traces.queries import amplification_by

    wanted = {g for g in groups if g != IDLE_GROUP}
    found = []
    for group, traces, stats, _per_query in amplification_by(session, start, end, by):  # type: ignore[arg-type]
        if group in wanted and stats is not None:
            found.append(Amplification(group, traces, stats.p50, stats.p90))
    return sorted(found, key=lambda a: (-a.p50, a.group))[:TOP]
