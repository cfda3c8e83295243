"""Amplification: how many times the bare user query each feature's pipelines cost, what the excess is
made of, and the costliest traces (each a link to the trace explorer)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from dash import Dash, Input, Output, dcc, html

from dashboards import format as fmt
from dashboards.context import FILTER_INPUTS, DashContext, Filters
from dashboards.ui import card, empty_state, figure, graph, kpi, table, usd_axis
from finops.traces.models import BREAKDOWN_PARTS
from finops.traces.queries import amplification_overview, factor_bin_labels, top_traces

PART_LABEL = {
    "baseline": "baseline (the bare query)",
    "context_expansion": "context",
    "retries": "retries",
    "tool_steps": "tools / agent steps",
    "safety": "safety",
    "retrieval": "retrieval",
    "other": "other",
}
PART_COLOUR = {
    "baseline": "#4C6EF5",
    "context_expansion": "#F59F00",
    "retries": "#FA5252",
    "tool_steps": "#7950F2",
    "safety": "#12B886",
    "retrieval": "#15AABF",
    "other": "#ADB5BD",
}


def layout(ctx: DashContext, search: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.Span("Breakdown in", className="control-label"),
                    dcc.RadioItems(
                        id="amp-unit",
                        options=[{"label": "USD", "value": "cost"}, {"label": "Tokens", "value": "tokens"}],
                        value="cost",
                        inline=True,
                        className="segmented",
                    ),
                ],
                className="controls",
            ),
            dcc.Loading(html.Div(id="amp-body"), type="dot", color="#4c6ef5"),
        ]
    )


def body(ctx: DashContext, filters: Filters, unit: str) -> Any:
    start, end = filters.period.start, filters.period.end
    scope = {"team": filters.team, "feature": filters.feature}
    with ctx.session() as session:
        overview = amplification_overview(session, start, end, **scope)
        distribution, features = overview.distribution, overview.features
        top = top_traces(session, start, end, limit=15, **scope)
    if not features:
        return empty_state(
            f"No closed traces in {filters.period.label.lower()}",
            "A trace is every call sharing an X-FinOps-Trace-Id header (or a W3C traceparent). It is closed, "
            "and its amplification computed, once no call has arrived for traces.quiet_s "
            "(5 minutes by default).",
            "`finops jobs run traces --config finops.yaml` closes the due ones now.",
            state_id="amp-empty",
        )
    names = [f.feature for f in sorted(features, key=lambda f: -f.total_cost_nusd)]
    labels = factor_bin_labels()

    dist = figure(
        "Amplification factor (tokens) per trace, by feature",
        y_title="traces",
        x_title="amplification factor",
    )
    counts = {(f, b): n for f, b, n in distribution}
    for name in names:
        dist.add_bar(
            name=name,
            x=labels,
            y=[counts.get((name, b), 0) for b in labels],
            marker={"color": fmt.colour(name, names)},
            hovertemplate=f"<b>{name}</b><br>factor %{{x}}<br>%{{y:,}} traces<extra></extra>",
        )
    dist.update_layout(barmode="group")

    in_cost = unit != "tokens"
    stacked = figure(
        "Where each feature's spend goes" if in_cost else "Where each feature's tokens go",
        x_title="USD" if in_cost else "tokens",
        height=max(300, 48 * len(names) + 140),
    )
    for part in BREAKDOWN_PARTS:
        values = [
            (f.cost_nusd if in_cost else f.tokens)[part]
            for f in sorted(features, key=lambda f: names.index(f.feature))
        ]
        # Horizontal bars: feature names read across, however long they are.
        stacked.add_bar(
            name=PART_LABEL[part],
            orientation="h",
            y=names,
            x=[fmt.usd_float(v) for v in values] if in_cost else values,
            marker={"color": PART_COLOUR[part]},
            customdata=[fmt.usd(v) if in_cost else fmt.count(v) for v in values],
            hovertemplate=f"<b>%{{y}}</b><br>{PART_LABEL[part]}: %{{customdata}}<extra></extra>",
        )
    stacked.update_layout(barmode="stack", margin={"l": 110})
    stacked.update_yaxes(autorange="reversed", gridcolor="rgba(0,0,0,0)")
    stacked.update_xaxes(showgrid=True, gridcolor="#eef0f4")
    if in_cost:
        usd_axis(stacked, fmt.usd_float(max((f.total_cost_nusd for f in features), default=0)), axis="x")

    traces = sum(f.traces for f in features)
    total_cost = sum(f.total_cost_nusd for f in features)
    total_tokens = sum(f.total_tokens for f in features)
    baseline_tokens = sum(f.tokens["baseline"] for f in features)
    retries_cost = sum(f.cost_nusd["retries"] for f in features)
    pooled = total_tokens / baseline_tokens if baseline_tokens else None

    rows = [
        [
            dcc.Link(row.trace_id, href=f"/traces?trace_id={quote(row.trace_id)}", className="trace-link"),
            row.team,
            row.feature,
            f"{row.first_call_at:%Y-%m-%d %H:%M}",
            fmt.count(row.calls),
            fmt.count(row.retries),
            fmt.count(row.total_tokens),
            fmt.usd(row.total_cost_nusd),
            fmt.factor(row.amplification_tokens),
        ]
        for row in top
    ]
    return html.Div(
        [
            html.Div(
                [
                    kpi("Traces", fmt.count(traces), filters.period.label, kpi_id="amp-traces"),
                    kpi(
                        "Amplification (pooled)",
                        "n/a" if pooled is None else f"{pooled:,.2f}×",
                        "all tokens / all baselines",
                        kpi_id="amp-factor",
                    ),
                    kpi(
                        "Cost per user query",
                        fmt.usd(total_cost // traces if traces else None),
                        "mean over traces",
                        kpi_id="amp-per-query",
                    ),
                    kpi(
                        "Spent on retries",
                        fmt.usd(retries_cost),
                        fmt.percent(retries_cost / total_cost if total_cost else None, 1) + " of trace spend",
                        kpi_id="amp-retries",
                        tone="down" if retries_cost else "",
                    ),
                ],
                className="kpi-row",
            ),
            html.Div(
                [
                    card(graph("amp-distribution", dist), class_name="half"),
                    card(graph("amp-breakdown", stacked), class_name="half"),
                ],
                className="row",
            ),
            card(
                table(
                    [
                        "Trace",
                        "Team",
                        "Feature",
                        "First call (UTC)",
                        "Calls",
                        "Retries",
                        "Tokens",
                        "Cost",
                        "Factor",
                    ],
                    rows,
                    numeric=(4, 5, 6, 7, 8),
                    table_id="amp-top",
                ),
                html.P(
                    "The model filter does not apply here: one trace may call several models.",
                    className="note",
                )
                if filters.model
                else None,
                title="Costliest traces",
            ),
        ]
    )


def register(app: Dash, ctx: DashContext) -> None:
    @app.callback(Output("amp-body", "children"), *FILTER_INPUTS, Input("amp-unit", "value"))
    def _update(period: str, team: str, feature: str, model: str, unit: str) -> Any:
        return body(ctx, ctx.filters(period, team, feature, model), unit)
