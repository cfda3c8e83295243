"""Trace explorer: one user query as a waterfall of its calls, with its amplification factor."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

from dash import Dash, Input, Output, dcc, html

from dashboards import format as fmt
from dashboards.auth import viewer
from dashboards.context import FILTER_INPUTS, DashContext, Filters
from dashboards.ui import badge, card, empty_state, figure, graph, kpi, table
from finops.traces.amplification import TraceCost
from finops.traces.calls import TraceCall
from finops.traces.queries import top_traces, trace_detail

CATEGORY_COLOUR = {
    "generation": "#4C6EF5",
    "retrieval": "#15AABF",
    "tool_steps": "#7950F2",
    "safety": "#12B886",
    "other": "#ADB5BD",
}
RETRY_COLOUR = "#FA5252"
MAX_TRACE_ID = 128


def layout(ctx: DashContext, search: str) -> html.Div:
    trace_id = parse_qs(search.lstrip("?")).get("trace_id", [""])[0][:MAX_TRACE_ID]
    return html.Div(
        [
            html.Div(
                [
                    html.Span("Trace id", className="control-label"),
                    dcc.Input(
                        id="trace-id",
                        value=trace_id,
                        placeholder="paste a trace id (X-FinOps-Trace-Id) or pick one below",
                        debounce=True,
                        className="text-input",
                        maxLength=MAX_TRACE_ID,
                    ),
                ],
                className="controls",
            ),
            dcc.Loading(html.Div(id="trace-body"), type="dot", color="#4c6ef5"),
        ]
    )


def _picker(ctx: DashContext, filters: Filters, message: str | None) -> Any:
    with ctx.session() as session:
        rows = top_traces(
            session,
            filters.period.start,
            filters.period.end,
            team=filters.team,
            feature=filters.feature,
            limit=10,
        )
    head: list[Any] = [html.P(message, className="note warn", id="trace-missing")] if message else []
    if not rows:
        return html.Div(
            [
                *head,
                empty_state(
                    "No closed traces to pick from",
                    "Send calls with an X-FinOps-Trace-Id header (one id per user query); a trace closes "
                    "once quiet for traces.quiet_s. "
                    "Any trace id from the ledger can be pasted above, closed or not.",
                    state_id="trace-empty",
                ),
            ]
        )
    links = [
        [
            dcc.Link(r.trace_id, href=f"/traces?trace_id={quote(r.trace_id)}", className="trace-link"),
            r.feature,
            fmt.count(r.calls),
            fmt.usd(r.total_cost_nusd),
            fmt.factor(r.amplification_tokens),
        ]
        for r in rows
    ]
    return html.Div(
        [
            *head,
            card(
                table(["Trace", "Feature", "Calls", "Cost", "Factor"], links, numeric=(2, 3, 4)),
                title="Costliest traces in this period",
            ),
        ]
    )


def waterfall(cost: TraceCost, calls: list[TraceCall]) -> Any:
    start_us = cost.first_call_at_us
    labels = [
        f"{i + 1:>2} · {m.call.stage or m.category} · {m.call.model or '-'}" for i, m in enumerate(cost.marks)
    ]
    fig = figure(
        "Calls in time order",
        x_title="time since the first call (ms)",
        height=max(260, 46 * len(labels) + 110),
    )
    groups: dict[str, list[int]] = {}
    for index, mark in enumerate(cost.marks):
        key: str = "retry" if mark.is_retry else mark.category
        groups.setdefault(key, []).append(index)
    for key, indices in groups.items():
        marks = [cost.marks[i] for i in indices]
        fig.add_bar(
            name="retry / failed" if key == "retry" else key.replace("_", " "),
            orientation="h",
            y=[labels[i] for i in indices],
            base=[(m.call.started_at_us - start_us) / 1000 for m in marks],
            x=[max((m.call.ended_at_us - m.call.started_at_us) / 1000, 1.0) for m in marks],
            marker={
                "color": RETRY_COLOUR if key == "retry" else CATEGORY_COLOUR.get(key, "#ADB5BD"),
                "pattern": {"shape": "/" if key == "retry" else ""},
            },
            customdata=[
                [
                    m.call.status_code,
                    fmt.count(m.call.system_tokens),
                    fmt.count(m.call.history_tokens),
                    fmt.count(m.call.context_tokens),
                    fmt.count(m.call.user_tokens),
                    fmt.count(m.call.completion_tokens),
                    fmt.usd(m.call.cost_nusd),
                    m.retry_reason or "",
                    f"{(m.call.ended_at_us - m.call.started_at_us) / 1000:,.0f}",
                ]
                for m in marks
            ],
            hovertemplate=(
                "<b>%{y}</b><br>status %{customdata[0]} · %{customdata[8]} ms<br>"
                "prompt: system %{customdata[1]}, history %{customdata[2]}, context %{customdata[3]}, "
                "user %{customdata[4]}<br>output %{customdata[5]} tokens · %{customdata[6]}"
                "<br>%{customdata[7]}<extra></extra>"
            ),
        )
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=labels, showgrid=False)
    fig.update_xaxes(showgrid=True, gridcolor="#eef0f4")
    fig.update_layout(barmode="overlay", margin={"l": 220})
    return fig


def detail(cost: TraceCost, calls: list[TraceCall]) -> Any:
    first = min(calls, key=lambda c: (c.started_at_us, c.request_id))
    rows = []
    for i, mark in enumerate(cost.marks):
        c = mark.call
        rows.append(
            [
                str(i + 1),
                f"{(c.started_at_us - cost.first_call_at_us) / 1000:,.0f}",
                c.stage or "–",
                c.model or "–",
                badge(str(c.status_code), "ok" if 200 <= c.status_code < 300 else "bad"),
                fmt.count(c.system_tokens),
                fmt.count(c.history_tokens),
                fmt.count(c.context_tokens),
                fmt.count(c.user_tokens),
                fmt.count(c.completion_tokens),
                fmt.usd(c.cost_nusd),
                badge(f"retry ({mark.retry_reason})", "bad") if mark.retry_reason else "",
            ]
        )
    breakdown = cost.cost_nusd.as_dict()
    parts = [
        html.Span([html.B(part.replace("_", " ")), " ", fmt.usd(value)], className="chip")
        for part, value in breakdown.items()
        if value
    ]
    return html.Div(
        [
            html.Div(
                [
                    kpi("Trace", cost.trace_id, f"{first.team} · {first.feature}", kpi_id="trace-title"),
                    kpi(
                        "Calls",
                        fmt.count(cost.calls),
                        f"{cost.retries} retries",
                        kpi_id="trace-calls",
                        tone="down" if cost.retries else "",
                    ),
                    kpi(
                        "Cost",
                        fmt.usd(cost.total_cost_nusd),
                        f"{fmt.count(cost.total_tokens)} tokens",
                        kpi_id="trace-cost",
                    ),
                    kpi(
                        "Amplification",
                        fmt.factor(cost.amplification_tokens),
                        f"{fmt.factor(cost.amplification_cost)} in cost · "
                        f"baseline {fmt.count(cost.baseline_tokens)} tokens",
                        kpi_id="trace-factor",
                    ),
                ],
                className="kpi-row",
            ),
            card(graph("trace-waterfall", waterfall(cost, calls)), html.Div(parts, className="chips")),
            card(
                table(
                    [
                        "#",
                        "+ms",
                        "Stage",
                        "Model",
                        "Status",
                        "System",
                        "History",
                        "Context",
                        "User",
                        "Output",
                        "Cost",
                        "",
                    ],
                    rows,
                    numeric=(0, 1, 5, 6, 7, 8, 9, 10),
                    table_id="trace-calls-table",
                ),
                title="Calls (prompt parts in tokens)",
            ),
        ]
    )


def register(app: Dash, ctx: DashContext) -> None:
    @app.callback(Output("trace-body", "children"), Input("trace-id", "value"), *FILTER_INPUTS)
    def _update(trace_id: str | None, period: str, team: str, feature: str, model: str) -> Any:
        filters = ctx.filters(period, team, feature, model)
        trace_id = (trace_id or "").strip()[:MAX_TRACE_ID]
        if not trace_id:
            return _picker(ctx, filters, None)
        with ctx.session() as session:
            found = trace_detail(session, trace_id, team=viewer().scope_team(None))
        if found is None:
            return _picker(ctx, filters, f"No trace {trace_id!r} that you may see.")
        return detail(*found)
