"""Pieces shared by the pages: the no-data empty state and series helpers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from dash import html

from dashboards.context import DashContext, Filters
from dashboards.ui import empty_state


def no_calls(ctx: DashContext, filters: Filters, state_id: str = "empty") -> html.Div:
    scope = ", ".join(f"{k} {v}" for k, v in filters.tags.items() if v) or "any team"
    return empty_state(
        f"No calls yet for {scope} in {filters.period.label.lower()}",
        "Point your OpenAI client at the finops proxy and tag each call with its team and feature. "
        "Rollups appear here within a minute or two of the first calls (the worker must be running: "
        "`finops worker --beat`, or `finops up`).",
        code=(
            f'client = OpenAI(base_url="{ctx.proxy_url}", api_key="...",\n'
            '                default_headers={"X-FinOps-Team": "search", '
            '"X-FinOps-Feature": "autocomplete"})'
        ),
        state_id=state_id,
    )


def buckets(points: Iterable[Any]) -> list[datetime]:
    return sorted({p.bucket_start for p in points})


def groups_by_total(totals: dict[str, int]) -> list[str]:
    """Largest first, so that the biggest stack sits at the bottom and leads the legend."""
    return sorted(totals, key=lambda g: (-totals[g], g))
