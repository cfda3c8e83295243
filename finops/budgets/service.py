"""Budgets as a service: list, create, change, delete (CLI, management API, dashboards), and the sync
of the budgets written in finops.yaml.

Config budgets are synced into the ``budgets`` table (source "config") at the start of every run of
the budgets job and of every ``finops budgets`` command: config wins, so a config budget changed or
removed in the file is changed or removed in the table, and one made by the CLI or API under the same
name is taken over by the file. Budgets from config cannot be changed or deleted through the service
(the error says to edit finops.yaml). Alerts keep the budget's name and scope, so deleting a budget
keeps its history.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from finops.budgets.models import BudgetRow
from finops.budgets.sql import insert_ignore
from finops.config import BudgetConfig, BudgetScopeConfig, FinopsConfig

NUSD_PER_USD = 10**9
CONFIG = "config"
API = "api"


class BudgetError(ValueError):
    """A budget that cannot be stored, with a message that names the field."""


def usd_to_nusd(usd: Decimal, *, strict: bool = True) -> int:
    """Whole nano-USD. The CLI and API refuse finer amounts; finops.yaml's are rounded (half up, as
    the hard limits read them), since a config the job cannot load would stop every budget."""
    nusd = usd * NUSD_PER_USD
    if nusd != nusd.to_integral_value():
        if strict:
            raise BudgetError(f"monthly_usd: at most 9 decimal places, got {usd}")
        return int(nusd.to_integral_value(ROUND_HALF_UP))
    return int(nusd)


def nusd_to_usd(nusd: int) -> Decimal:
    value = (Decimal(nusd) / NUSD_PER_USD).normalize()
    # normalize() writes round amounts with an exponent (1E+3); JSON and the CLI want 1000.
    exponent = value.as_tuple().exponent
    return value.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else value


def thresholds_of(row: BudgetRow) -> list[Decimal]:
    return [Decimal(part) for part in row.thresholds.split(",") if part]


def channels_of(row: BudgetRow) -> list[str]:
    return [part for part in row.channels.split(",") if part]


def scope_of(row: BudgetRow) -> dict[str, str]:
    return {k: v for k, v in (("team", row.team), ("feature", row.feature), ("model", row.model)) if v}


def spec_of(row: BudgetRow) -> BudgetConfig:
    """A stored budget in the config's shape (for the CLI's and API's output, and for updates)."""
    return BudgetConfig(
        name=row.name,
        scope=BudgetScopeConfig(team=row.team, feature=row.feature, model=row.model),
        monthly_usd=nusd_to_usd(row.monthly_nusd),
        basis=row.basis,  # type: ignore[arg-type]
        thresholds=thresholds_of(row),
        forecast=row.forecast,
        channels=channels_of(row),
        hard_limit=row.hard_limit,
    )


def _validate(config: FinopsConfig, spec: BudgetConfig | Mapping[str, Any]) -> BudgetConfig:
    if isinstance(spec, BudgetConfig):
        # Re-validated: a model built with model_construct() skips the field checks.
        spec = spec.model_dump()
    try:
        budget = BudgetConfig.model_validate(dict(spec))
    except ValidationError as exc:
        problems = []
        for problem in exc.errors():
            where = ".".join(str(p) for p in problem["loc"]) or "budget"
            given = problem.get("input")
            shown = f" (got {given})" if isinstance(given, str | int | float | Decimal) else ""
            problems.append(f"{where}: {problem['msg'].removeprefix('Value error, ')}{shown}")
        raise BudgetError("; ".join(problems)) from None
    unknown = [c for c in budget.channels if c not in config.channels]
    if unknown:
        known = ", ".join(sorted(config.channels)) or "none configured"
        raise BudgetError(f"channels: unknown channel {', '.join(unknown)} (known: {known})")
    if budget.name != budget.name.strip() or "," in budget.name:
        raise BudgetError(f"name: no surrounding spaces or commas, got {budget.name!r}")
    return budget


def _values(budget: BudgetConfig, *, strict: bool = True) -> dict[str, Any]:
    return {
        "name": budget.name,
        "team": budget.scope.team,
        "feature": budget.scope.feature,
        "model": budget.scope.model,
        "monthly_nusd": usd_to_nusd(budget.monthly_usd, strict=strict),
        "basis": budget.basis,
        "thresholds": ",".join(str(t) for t in budget.thresholds),
        "forecast": budget.forecast,
        "channels": ",".join(budget.channels),
        "hard_limit": budget.hard_limit,
    }


def list_budgets(session: Session) -> list[BudgetRow]:
    return list(session.scalars(select(BudgetRow).order_by(BudgetRow.name)))


def get_budget(session: Session, name: str) -> BudgetRow:
    row = session.scalars(select(BudgetRow).where(BudgetRow.name == name)).one_or_none()
    if row is None:
        raise BudgetError(f"name: no budget named {name!r}")
    return row


def create_budget(
    session: Session,
    config: FinopsConfig,
    spec: BudgetConfig | Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> BudgetRow:
    budget = _validate(config, spec)
    if session.scalars(select(BudgetRow.id).where(BudgetRow.name == budget.name)).first() is not None:
        raise BudgetError(f"name: a budget named {budget.name!r} exists already")
    now = now or datetime.now(UTC)
    row = BudgetRow(**_values(budget), source=API, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row


def update_budget(
    session: Session,
    config: FinopsConfig,
    name: str,
    changes: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> BudgetRow:
    """Change some fields (the keys of a budget in finops.yaml; ``scope`` replaces the whole scope)."""
    row = get_budget(session, name)
    if row.source == CONFIG:
        raise BudgetError(f"name: budget {name!r} comes from finops.yaml; change it there")
    merged = spec_of(row).model_dump()
    unknown = sorted(set(changes) - set(merged))
    if unknown:
        raise BudgetError(f"{unknown[0]}: not a budget field (fields: {', '.join(sorted(merged))})")
    merged.update(changes)
    budget = _validate(config, merged)
    if (
        budget.name != name
        and session.scalars(select(BudgetRow.id).where(BudgetRow.name == budget.name)).first()
    ):
        raise BudgetError(f"name: a budget named {budget.name!r} exists already")
    for key, value in _values(budget).items():
        setattr(row, key, value)
    row.updated_at = now or datetime.now(UTC)
    session.flush()
    return row


def delete_budget(session: Session, name: str) -> None:
    row = get_budget(session, name)
    if row.source == CONFIG:
        raise BudgetError(f"name: budget {name!r} comes from finops.yaml; remove it there")
    session.delete(row)
    session.flush()


def sync_config_budgets(session: Session, config: FinopsConfig, now: datetime | None = None) -> int:
    """Make the table's config budgets equal to finops.yaml's; returns how many rows changed."""
    now = now or datetime.now(UTC)
    rows = {row.name: row for row in session.scalars(select(BudgetRow))}
    wanted = {b.name: _values(b, strict=False) for b in config.budgets}
    changed = 0
    for name, values in wanted.items():
        row = rows.get(name)
        if row is None:
            # Several job runs at once may all find it missing: the first insert wins, the rest skip.
            session.execute(
                insert_ignore(session, BudgetRow).values(
                    **values, source=CONFIG, created_at=now, updated_at=now
                )
            )
            changed += 1
        elif row.source != CONFIG or any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.source, row.updated_at = CONFIG, now
            changed += 1
    gone = [name for name, row in rows.items() if row.source == CONFIG and name not in wanted]
    if gone:
        session.execute(delete(BudgetRow).where(BudgetRow.name.in_(gone), BudgetRow.source == CONFIG))
        changed += len(gone)
    session.flush()
    return changed


def parse_thresholds(text: str) -> list[Decimal]:
    """``"0.5,0.8,1"`` (the CLI's form); a percentage like ``50%`` is read as 0.5."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            values.append(Decimal(part[:-1]) / 100 if part.endswith("%") else Decimal(part))
        except InvalidOperation:
            raise BudgetError(f"thresholds: not a number: {part!r}") from None
    return values
