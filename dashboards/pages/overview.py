"""Overview: this period's spend on both bases, every budget with its burn-down and forecast, recent
alerts, and what changed most since the previous period.

Budgets and alerts are read through ``finops.budgets.queries`` and ``finops.alerts.queries``; where
those modules are not installed the cards say so instead of showing nothing.
"""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from dash import Dash, Input, Output, dcc, html

from dashboards import format as fmt
from dashboards.context import FILTER_INPUTS, DashContext, Filters
from dashboards.pages.common import groups_by_total, no_calls
from dashboards.ui import card, empty_state, figure, graph, kpi, progress, table, time_axis, usd_axis
from finops.rollups.queries import (
    IDLE_LABEL,
    changes_between,
    per_unit_nusd,
    spend_by,
    spend_series,
    totals_of,
)


def optional(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def layout(ctx: DashContext, search: str) -> html.Div:
    return html.Div(
        [
            dcc.Loading(html.Div(id="ov-body"), type="dot", color="#4c6ef5"),
            html.Div(
                [
                    card(
                        html.Div(
                            [
                                html.Span("Budget", className="control-label"),
                                dcc.Dropdown(id="ov-budget", clearable=False, className="filter wide"),
                            ],
                            className="controls inline",
                        ),
                        dcc.Loading(html.Div(id="ov-burndown"), type="dot", color="#4c6ef5"),
                        title="Burn-down",
                        class_name="half",
                    ),
                    card(html.Div(id="ov-alerts"), title="Recent alerts", class_name="half"),
                ],
                className="row",
            ),
        ]
    )


def _tone(previous: int, current: int) -> str:
    return "up" if current > previous else "down" if current < previous else ""


def headline(ctx: DashContext, filters: Filters) -> Any:
    p = filters.period
    with ctx.session() as session:
        current = spend_by(session, p.start, p.end, "feature", **filters.tags)
        previous = spend_by(session, p.previous_start, p.previous_end, "feature", **filters.tags)
        series = spend_series(
            session, p.start, p.end, "team", bucket=p.bucket, timezone=ctx.config.timezone, **filters.tags
        )
        budgets = _budgets(ctx, session, filters)
    now, before = totals_of(current), totals_of(previous)
    changes = [c for c in changes_between(previous, current) if c.group != IDLE_LABEL]
    if not now.calls and not before.calls and not now.idle_cost_nusd:
        return html.Div([no_calls(ctx, filters, "ov-empty"), budgets])
    gpu_now = now.gpu_cost_nusd + now.idle_cost_nusd
    gpu_before = before.gpu_cost_nusd + before.idle_cost_nusd
    vs = "vs previous period"
    kpis = html.Div(
        [
            kpi(
                "Spend · tokens",
                fmt.usd(now.token_cost_nusd),
                f"{fmt.change(before.token_cost_nusd, now.token_cost_nusd)} {vs}",
                kpi_id="ov-token-spend",
                tone=_tone(before.token_cost_nusd, now.token_cost_nusd),
            ),
            kpi(
                "Spend · GPU time",
                fmt.usd(gpu_now),
                f"{fmt.change(gpu_before, gpu_now)} {vs}"
                + ("" if any(filters.tags.values()) else " · idle included"),
                kpi_id="ov-gpu-spend",
                tone=_tone(gpu_before, gpu_now),
            ),
            kpi(
                "Calls",
                fmt.count(now.calls),
                f"{fmt.change(before.calls, now.calls)} {vs}",
                kpi_id="ov-calls",
            ),
            kpi(
                "Cost per 1,000 calls",
                fmt.usd(per_unit_nusd(now.token_cost_nusd, now.calls, 1000)),
                "token basis",
                kpi_id="ov-per-1k",
            ),
        ],
        className="kpi-row",
    )

    totals: dict[str, int] = {}
    for point in series:
        totals[point.group] = totals.get(point.group, 0) + point.token_cost_nusd
    order = [g for g in groups_by_total(totals) if g != "(idle)"]
    unit = "hour" if p.bucket == "hour" else "day"
    trend = figure(
        f"Token spend per {unit} by team · {p.label.lower()}",
        y_title="USD",
        x_title=f"{unit} ({ctx.config.timezone})",
        height=320,
    )
    xs = sorted({pt.bucket_start for pt in series})
    by_key = {(pt.bucket_start, pt.group): pt for pt in series}
    for group in order:
        values = [by_key[(x, group)].token_cost_nusd if (x, group) in by_key else 0 for x in xs]
        trend.add_bar(
            name=group,
            x=xs,
            y=[fmt.usd_float(v) for v in values],
            marker={"color": fmt.colour(group, order)},
            customdata=[fmt.usd(v) for v in values],
            hovertemplate=f"<b>{group}</b><br>%{{x}}<br>%{{customdata}}<extra></extra>",
        )
    trend.update_layout(barmode="stack")
    tallest = max((sum(pt.token_cost_nusd for pt in series if pt.bucket_start == x) for x in xs), default=0)
    usd_axis(trend, fmt.usd_float(tallest))
    time_axis(trend, p.bucket)

    top = [c for c in changes if c.change_nusd][:6]
    change_rows = [
        [
            c.group,
            fmt.usd(c.previous_nusd),
            fmt.usd(c.current_nusd),
            html.Span(
                ("+" if c.change_nusd > 0 else "") + fmt.usd(c.change_nusd),
                className="up" if c.change_nusd > 0 else "down",
                title=fmt.change(c.previous_nusd, c.current_nusd),
            ),
        ]
        for c in top
    ]
    changed = (
        table(
            ["Feature", "Previous", "This period", "Change"],
            change_rows,
            numeric=(1, 2, 3),
            table_id="ov-changes",
        )
        if change_rows
        else html.P("Nothing changed since the previous period.", className="note")
    )
    return html.Div(
        [
            kpis,
            html.Div(
                [
                    card(graph("ov-trend", trend), class_name="wide"),
                    card(changed, title="What changed most (token spend by feature)", class_name="narrow"),
                ],
                className="row",
            ),
            budgets,
        ]
    )


def _budgets(ctx: DashContext, session: Any, filters: Filters) -> Any:
    queries = optional("finops.budgets.queries")
    if queries is None:
        return card(
            empty_state(
                "Budgets are not available yet",
                "Budget tracking (finops.budgets) is not installed in this deployment. "
                "Once it is, every budget "
                "from finops.yaml `budgets:` shows here with its thresholds and forecast.",
                state_id="ov-budgets-empty",
            ),
            title="Budgets",
        )
    statuses = queries.budget_statuses(session, ctx.config, ctx.clock(), team=filters.team)
    if not statuses:
        return card(
            empty_state(
                "No budgets yet",
                "Add one under `budgets:` in finops.yaml (name, scope, monthly_usd, thresholds) and restart, "
                "or create one with `finops budgets create`.",
                code="budgets:\n  - name: search-monthly\n    scope: {team: search}\n    monthly_usd: 500",
                state_id="ov-budgets-empty",
            ),
            title="Budgets",
        )
    rows = []
    for s in statuses:
        share = float(s.spend_nusd / s.amount_nusd) if s.amount_nusd else 0.0
        forecast_share = float(s.forecast_nusd / s.amount_nusd) if s.amount_nusd else 0.0
        tone = "bad" if share >= 1 else "warn" if s.crossed else ""
        scope = ", ".join(f"{k}={v}" for k, v in sorted(s.scope.items()) if v) or "everything"
        rows.append(
            [
                html.B(s.name),
                scope,
                s.basis,
                html.Div(
                    [
                        progress(share, [float(t) for t in s.thresholds], tone),
                        html.Span(fmt.percent(share), className="progress-label"),
                    ],
                    className="progress-cell",
                ),
                fmt.usd(s.spend_nusd),
                fmt.usd(s.amount_nusd),
                html.Span(fmt.usd(s.forecast_nusd), className="up" if forecast_share > 1 else ""),
                ", ".join(fmt.percent(t) for t in s.crossed) or "–",
            ]
        )
    return card(
        table(
            ["Budget", "Scope", "Basis", "Used", "Spent", "Budget", "Forecast", "Crossed"],
            rows,
            numeric=(4, 5, 6),
            table_id="ov-budgets",
        ),
        title="Budgets · this period",
    )


def burndown(
    ctx: DashContext, filters: Filters, name: str | None
) -> tuple[Any, list[dict[str, str]], str | None]:
    queries = optional("finops.budgets.queries")
    if queries is None:
        return (
            html.P("The burn-down appears once budgets (finops.budgets) are installed.", className="note"),
            [],
            None,
        )
    with ctx.session() as session:
        statuses = queries.budget_statuses(session, ctx.config, ctx.clock(), team=filters.team)
        options = [{"label": s.name, "value": s.name} for s in statuses]
        # By default the budget closest to (or furthest past) its amount: the one to look at first.
        fullest = max(
            statuses, key=lambda s: s.spend_nusd / s.amount_nusd if s.amount_nusd else 0, default=None
        )
        chosen = next((s for s in statuses if s.name == name), fullest)
        if chosen is None:
            return html.P("No budgets in view.", className="note"), options, None
        daily = queries.daily_spend(session, ctx.config, chosen.name, chosen.period_start, chosen.period_end)
    return (
        graph("ov-burndown-chart", burndown_figure(chosen, daily, ctx.clock(), ctx.config.timezone)),
        options,
        chosen.name,
    )


def burndown_figure(status: Any, daily: list[tuple[Any, int]], now: datetime, timezone: str = "UTC") -> Any:
    """Remaining budget day by day, the forecast to the period's end, and each threshold as a line."""
    amount = status.amount_nusd
    fig = figure(f"{status.name}: budget left", y_title="USD left", x_title="day", height=330)
    days, left, spent = [], [], 0
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    for day, nusd in sorted(daily):
        if day > today:
            break  # the days still to come are the forecast's
        spent += nusd
        days.append(day)
        left.append(amount - spent)
    fig.add_scatter(
        x=days,
        y=[fmt.usd_float(v) for v in left],
        name="left",
        mode="lines+markers",
        line={"color": "#4C6EF5", "width": 3},
        customdata=[fmt.usd(v) for v in left],
        hovertemplate="%{x}<br>%{customdata} left<extra></extra>",
    )
    end_day = (status.period_end - timedelta(seconds=1)).astimezone(zone).date()
    first_day = status.period_start.astimezone(zone).date()
    last_day = days[-1] if days else first_day
    forecast_left = amount - status.forecast_nusd
    fig.add_scatter(
        x=[last_day, end_day],
        y=[fmt.usd_float(left[-1] if left else amount), fmt.usd_float(forecast_left)],
        name="forecast",
        mode="lines",
        line={"color": "#F59F00", "dash": "dash", "width": 2},
        customdata=[fmt.usd(left[-1] if left else amount), fmt.usd(forecast_left)],
        hovertemplate="%{x}<br>forecast %{customdata} left<extra></extra>",
    )
    for threshold in status.thresholds:
        level = fmt.usd_float(amount - int(Decimal(amount) * Decimal(threshold)))
        fig.add_hline(
            level,
            line={"color": "#FA5252" if threshold >= 1 else "#ADB5BD", "dash": "dot", "width": 1},
            label=f"{fmt.percent(threshold)} spent",
        )
    usd_axis(fig, fmt.usd_float(amount))
    fig.update_xaxes(range=[first_day, end_day])
    return fig


def alerts_list(ctx: DashContext, filters: Filters) -> Any:
    queries = optional("finops.alerts.queries")
    if queries is None:
        return html.P(
            "Alerts appear here once budget alerting (finops.alerts) is installed.",
            className="note",
            id="ov-alerts-empty",
        )
    with ctx.session() as session:
        alerts = queries.list_alerts(session, team=filters.team, limit=6)
    if not alerts:
        return html.P(
            "No alerts yet: they fire at each budget threshold (50%, 80%, 100% by default) "
            "and on a forecast over 100%.",
            className="note",
            id="ov-alerts-empty",
        )
    items = [
        html.Li(
            [
                html.Span(f"{a.created_at:%b %d %H:%M}", className="when"),
                html.Span(a.kind, className=f"badge badge-{'bad' if a.kind != 'forecast' else 'warn'}"),
                html.Span(a.subject, className="what"),
            ]
        )
        for a in alerts
    ]
    return html.Div(
        [html.Ul(items, className="alert-list"), dcc.Link("All alerts →", href="/alerts", className="more")]
    )


def register(app: Dash, ctx: DashContext) -> None:
    @app.callback(Output("ov-body", "children"), *FILTER_INPUTS)
    def _update(period: str, team: str, feature: str, model: str) -> Any:
        return headline(ctx, ctx.filters(period, team, feature, model))

    @app.callback(
        Output("ov-burndown", "children"),
        Output("ov-budget", "options"),
        Output("ov-budget", "value"),
        Output("ov-alerts", "children"),
        *FILTER_INPUTS,
        Input("ov-budget", "value"),
    )
    def _side(period: str, team: str, feature: str, model: str, budget: str | None) -> Any:
        filters = ctx.filters(period, team, feature, model)
        chart, options, chosen = burndown(ctx, filters, budget)
        return chart, options, chosen, alerts_list(ctx, filters)
