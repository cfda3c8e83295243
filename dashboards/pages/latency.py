"""Latency: time to first token and inter-token latency, p50 / p90 / p99, by model or feature over time.

The percentiles come from ``finops.observability.queries.latency_percentiles``; until that module is
installed the page says so.
"""

from __future__ import annotations

import importlib
from typing import Any

from dash import Dash, Input, Output, dcc, html

from dashboards import format as fmt
from dashboards.context import FILTER_INPUTS, DashContext, Filters
from dashboards.ui import card, empty_state, figure, graph, time_axis

METRICS = {"ttft": "Time to first token", "itl": "Inter-token latency"}
DASH = {"p50": "solid", "p90": "dash", "p99": "dot"}


def layout(ctx: DashContext, search: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.Span("By", className="control-label"),
                    dcc.RadioItems(
                        id="lat-by",
                        options=[
                            {"label": "Model", "value": "model"},
                            {"label": "Feature", "value": "feature"},
                        ],
                        value="model",
                        inline=True,
                        className="segmented",
                    ),
                ],
                className="controls",
            ),
            dcc.Loading(html.Div(id="lat-body"), type="dot", color="#4c6ef5"),
        ]
    )


def body(ctx: DashContext, filters: Filters, by: str) -> Any:
    try:
        queries = importlib.import_module("finops.observability.queries")
    except ImportError:
        return empty_state(
            "Latency percentiles are not available yet",
            "They need the observability module (finops.observability), which records time to first token "
            "and inter-token latency per call into hourly percentiles. "
            "Upgrade finops and run `finops migrate`.",
            state_id="lat-empty",
        )
    with ctx.session() as session:
        points = queries.latency_percentiles(
            session,
            filters.period.start,
            filters.period.end,
            by=by,
            bucket=filters.period.bucket,
            team=filters.team,
            feature=filters.feature,
            model=filters.model,
            metrics=tuple(METRICS),
        )
    if not points:
        return empty_state(
            f"No latency measurements in {filters.period.label.lower()}",
            "Streamed calls through the proxy record time to first token and inter-token latency; send some "
            "with stream=True and they appear after the next rollup.",
            state_id="lat-empty",
        )
    cards = []
    unit = "hour" if filters.period.bucket == "hour" else "day"
    for metric, title in METRICS.items():
        mine = [p for p in points if p.metric == metric]
        fig = figure(f"{title} · p50 / p90 / p99 by {by}", y_title="ms", x_title=f"{unit} (UTC)")
        groups = sorted({p.group for p in mine})
        for group in groups:
            series = sorted((p for p in mine if p.group == group), key=lambda p: p.bucket_start)
            for pct in ("p50", "p90", "p99"):
                fig.add_scatter(
                    x=[p.bucket_start for p in series],
                    y=[getattr(p, f"{pct}_ms") for p in series],
                    name=f"{group} {pct}",
                    legendgroup=group,
                    mode="lines+markers",
                    line={"color": fmt.colour(group, groups), "dash": DASH[pct], "width": 2},
                    customdata=[fmt.count(p.count) for p in series],
                    hovertemplate=f"<b>{group}</b> {pct}<br>%{{x}}<br>"
                    "%{y:,.0f} ms over %{customdata} calls<extra></extra>",
                )
        time_axis(fig, filters.period.bucket)
        fig.update_yaxes(rangemode="tozero")
        cards.append(card(graph(f"lat-{metric}", fig), class_name="half"))
    return html.Div(cards, className="row")


def register(app: Dash, ctx: DashContext) -> None:
    @app.callback(Output("lat-body", "children"), *FILTER_INPUTS, Input("lat-by", "value"))
    def _update(period: str, team: str, feature: str, model: str, by: str) -> Any:
        return body(
            ctx, ctx.filters(period, team, feature, model), by if by in ("model", "feature") else "model"
        )
