"""Spend: stacked cost over time by team, feature, model or backend, calls and tokens beside it, and
cost per 1,000 calls."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, dcc, html

from dashboards import format as fmt
from dashboards.context import FILTER_INPUTS, DashContext
from dashboards.pages.common import buckets, groups_by_total, no_calls
from dashboards.ui import card, figure, graph, kpi, table, time_axis, usd_axis
from finops.rollups.queries import (
    IDLE_LABEL,
    Basis,
    GroupBy,
    basis_cost_nusd,
    lines_of,
    per_unit_nusd,
    spend_series,
)

BASIS_LABEL = {"tokens": "token cost", "gpu": "GPU cost (with idle)"}


def layout(ctx: DashContext, search: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.Span("Group by", className="control-label"),
                    dcc.RadioItems(
                        id="spend-by",
                        options=[
                            {"label": v.capitalize(), "value": v}
                            for v in ("team", "feature", "model", "backend")
                        ],
                        value="team",
                        inline=True,
                        className="segmented",
                    ),
                    html.Span("Basis", className="control-label"),
                    dcc.RadioItems(
                        id="spend-basis",
                        options=[
                            {"label": "Tokens", "value": "tokens"},
                            {"label": "GPU time", "value": "gpu"},
                        ],
                        value="tokens",
                        inline=True,
                        className="segmented",
                    ),
                ],
                className="controls",
            ),
            dcc.Loading(html.Div(id="spend-body"), type="dot", color="#4c6ef5"),
        ]
    )


def body(ctx: DashContext, filters: Any, by: GroupBy, basis: Basis) -> Any:
    start, end = filters.period.start, filters.period.end
    with ctx.session() as session:
        points = spend_series(
            session,
            start,
            end,
            by,
            bucket=filters.period.bucket,
            timezone=ctx.config.timezone,
            **filters.tags,
        )
    lines = lines_of(points)  # the same totals as spend_by, without reading the rows twice
    if not any(line.calls or line.idle_cost_nusd for line in lines):
        return no_calls(ctx, filters, "spend-empty")

    if basis == "tokens":
        lines = [line for line in lines if line.group != IDLE_LABEL]  # idle time has no token cost
    totals = {line.group: basis_cost_nusd(line, basis) for line in lines}
    order = groups_by_total(totals)
    xs = buckets(points)
    by_key = {(p.bucket_start, p.group): p for p in points}

    unit = "hour" if filters.period.bucket == "hour" else "day"
    cost_fig = figure(
        f"Spend per {unit} by {by} · {BASIS_LABEL[basis]}",
        y_title="USD",
        x_title=f"{unit} ({ctx.config.timezone})",
    )
    calls_fig = figure(
        f"Calls per {unit} by {by}", y_title="calls", x_title=f"{unit} ({ctx.config.timezone})", height=300
    )
    tokens_fig = figure(
        f"Tokens per {unit} by {by} (prompt + output)",
        y_title="tokens",
        x_title=f"{unit} ({ctx.config.timezone})",
        height=300,
    )
    for group in order:
        series = [by_key.get((x, group)) for x in xs]
        costs = [basis_cost_nusd(p, basis) if p else 0 for p in series]
        cost_fig.add_bar(
            name=group,
            x=xs,
            y=[fmt.usd_float(c) for c in costs],
            marker={"color": fmt.colour(group, order)},
            customdata=[
                [fmt.usd(c), fmt.count(p.calls if p else 0)] for c, p in zip(costs, series, strict=True)
            ],
            hovertemplate=f"<b>{group}</b><br>%{{x}}<br>"
            "%{customdata[0]} · %{customdata[1]} calls<extra></extra>",
        )
        if group != "(idle)":
            calls_fig.add_scatter(
                name=group,
                x=xs,
                y=[p.calls if p else 0 for p in series],
                mode="lines+markers",
                line={"color": fmt.colour(group, order), "width": 2},
                hovertemplate=f"<b>{group}</b><br>%{{x}}<br>%{{y:,}} calls<extra></extra>",
            )
            tokens_fig.add_scatter(
                name=group,
                x=xs,
                y=[p.prompt_tokens + p.completion_tokens if p else 0 for p in series],
                mode="lines+markers",
                line={"color": fmt.colour(group, order), "width": 2},
                customdata=[
                    [fmt.count(p.prompt_tokens), fmt.count(p.completion_tokens)] if p else ["0", "0"]
                    for p in series
                ],
                hovertemplate=f"<b>{group}</b><br>%{{x}}<br>%{{y:,}} tokens "
                "(%{customdata[0]} prompt, %{customdata[1]} output)<extra></extra>",
            )
    cost_fig.update_layout(barmode="stack")
    tallest = max(
        (sum(basis_cost_nusd(p, basis) for p in points if p.bucket_start == x) for x in xs), default=0
    )
    usd_axis(cost_fig, fmt.usd_float(tallest))
    time_axis(cost_fig, filters.period.bucket)
    for fig in (calls_fig, tokens_fig):
        time_axis(fig, filters.period.bucket)
        fig.update_yaxes(rangemode="tozero", tickformat=",~f")

    total_cost = sum(totals.values())
    calls = sum(line.calls for line in lines)
    tokens = sum(line.prompt_tokens + line.completion_tokens for line in lines)
    rows = []
    for group in order:
        line = next(line for line in lines if line.group == group)
        cost = totals[group]
        rows.append(
            [
                group,
                fmt.count(line.calls),
                fmt.count(line.errors),
                fmt.count(line.prompt_tokens),
                fmt.count(line.completion_tokens),
                fmt.usd(cost),
                fmt.usd(per_unit_nusd(cost, line.calls, 1000)),
                fmt.percent(cost / total_cost if total_cost else None, 1),
            ]
        )
    return html.Div(
        [
            html.Div(
                [
                    kpi(
                        f"Spend · {BASIS_LABEL[basis]}",
                        fmt.usd(total_cost),
                        filters.period.label,
                        kpi_id="spend-total",
                    ),
                    kpi(
                        "Calls",
                        fmt.count(calls),
                        f"{fmt.count(sum(line.errors for line in lines))} failed",
                        kpi_id="spend-calls",
                    ),
                    kpi("Tokens", fmt.compact(tokens), "prompt + output", kpi_id="spend-tokens"),
                    kpi(
                        "Cost per 1,000 calls",
                        fmt.usd(per_unit_nusd(total_cost, calls, 1000)),
                        BASIS_LABEL[basis],
                        kpi_id="spend-per-1k",
                    ),
                ],
                className="kpi-row",
            ),
            card(graph("spend-cost", cost_fig)),
            html.Div(
                [
                    card(graph("spend-calls-chart", calls_fig), class_name="half"),
                    card(graph("spend-tokens-chart", tokens_fig), class_name="half"),
                ],
                className="row",
            ),
            card(
                table(
                    [
                        by.capitalize(),
                        "Calls",
                        "Failed",
                        "Prompt tokens",
                        "Output tokens",
                        "Cost",
                        "Per 1k calls",
                        "Share",
                    ],
                    rows,
                    numeric=(1, 2, 3, 4, 5, 6, 7),
                    table_id="spend-table",
                ),
                title=f"By {by}",
            ),
        ]
    )


def register(app: Dash, ctx: DashContext) -> None:
    @app.callback(
        Output("spend-body", "children"),
        *FILTER_INPUTS,
        Input("spend-by", "value"),
        Input("spend-basis", "value"),
    )
    def _update(period: str, team: str, feature: str, model: str, by: str, basis: str) -> Any:
        filters = ctx.filters(period, team, feature, model)
        group: GroupBy = by if by in ("team", "feature", "model", "backend") else "team"  # type: ignore[assignment]
        chosen: Basis = "gpu" if basis == "gpu" else "tokens"
        return body(ctx, filters, group, chosen)
