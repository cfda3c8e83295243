"""Reads over the rollups, shared by the report (and later the dashboards, API and exports)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from finops.rollups.models import IDLE, UsageRollupRow

GroupBy = Literal["team", "feature", "model", "backend"]
IDLE_LABEL = "(idle)"


@dataclass(frozen=True)
class SpendLine:
    group: str
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    token_cost_nusd: int
    gpu_seconds: Decimal
    gpu_cost_nusd: int
    idle_gpu_seconds: Decimal
    idle_cost_nusd: int


def _tag_filters(team: str | None, feature: str | None, model: str | None) -> list[Any]:
    r = UsageRollupRow
    pairs = ((r.team, team), (r.feature, feature), (r.model, model))
    return [column == value for column, value in pairs if value is not None]


def spend_by(
    session: Session,
    start: datetime,
    end: datetime,
    by: GroupBy,
    *,
    team: str | None = None,
    feature: str | None = None,
    model: str | None = None,
) -> list[SpendLine]:
    """Totals per group over the hours in [start, end). Idle GPU time is its own line, except by backend,
    where each backend's line carries its idle time beside its busy time.

    ``team``, ``feature`` and ``model`` keep only that tag's rows; idle time belongs to no team, feature or
    model, so any of them leaves it out."""
    r = UsageRollupRow
    column = getattr(r, by)
    group = column if by == "backend" else func.coalesce(func.nullif(column, IDLE), IDLE_LABEL)
    rows = session.execute(
        select(
            group,
            func.sum(r.calls),
            func.sum(r.errors),
            func.sum(r.prompt_tokens),
            func.sum(r.completion_tokens),
            func.sum(r.token_cost_nusd),
            func.sum(r.gpu_seconds),
            func.sum(r.gpu_cost_nusd),
            func.sum(r.idle_gpu_seconds),
            func.sum(r.idle_cost_nusd),
        )
        .where(r.hour >= start, r.hour < end, *_tag_filters(team, feature, model))
        .group_by(group)
        .order_by(group)
    )
    return [
        SpendLine(
            str(g),
            int(c or 0),
            int(e or 0),
            int(p or 0),
            int(o or 0),
            int(tc or 0),
            Decimal(gs or 0),
            int(gc or 0),
            Decimal(igs or 0),
            int(ic or 0),
        )
        for g, c, e, p, o, tc, gs, gc, igs, ic in rows
    ]
