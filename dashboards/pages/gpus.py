"""GPUs: per backend, GPU-seconds used against idle over time, what idle costs, and cost per million
tokens. Backend capacity (queue, KV cache) comes from the observability module when it is there."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from dash import Dash, Output, dcc, html

from dashboards import format as fmt
from dashboards.context import FILTER_INPUTS, DashContext, Filters
from dashboards.pages.common import buckets, no_calls
from dashboards.ui import card, figure, graph, kpi, table, time_axis
from finops.rollups.queries import lines_of, per_unit_nusd, spend_series

USED = "#4C6EF5"
IDLE = "#ADB5BD"


def layout(ctx: DashContext, search: str) -> html.Div:
    return html.Div([dcc.Loading(html.Div(id="gpus-body"), type="dot", color="#4c6ef5")])


def _in(seconds: Decimal, per: float) -> float:
    return float(seconds) / per


def body(ctx: DashContext, filters: Filters) -> Any:
    start, end = filters.period.start, filters.period.end
    with ctx.session() as session:
        points = spend_series(
            session,
            start,
            end,
            "backend",
            bucket=filters.period.bucket,
            timezone=ctx.config.timezone,
            **filters.tags,
        )
        capacity = _capacity(session, start, end, ctx.clock())
    lines = [line for line in lines_of(points) if line.group]
    if not any(line.gpu_seconds or line.idle_gpu_seconds for line in lines):
        return no_calls(ctx, filters, "gpus-empty")
    filtered = any(filters.tags.values())
    backends = [line.group for line in lines]
    xs = buckets(points)
    by_key = {(p.bucket_start, p.group): p for p in points}
    unit = "hour" if filters.period.bucket == "hour" else "day"

    tallest = max((float(p.gpu_seconds + p.idle_gpu_seconds) for p in points), default=0.0)
    unit_label, per = fmt.gpu_unit(tallest)
    fig = figure(
        f"GPU time used and idle per {unit}, by backend",
        x_title=f"{unit} ({ctx.config.timezone})",
        height=max(300, 190 * len(backends) + 90),
    )
    fig.update_layout(barmode="stack", margin={"t": 70})
    # One band per backend, stacked top to bottom, all on the same time axis (plotly's subplots, by hand).
    gap = 0.08
    band = (1 - gap * (len(backends) - 1)) / len(backends)
    for row, backend in enumerate(backends, start=1):
        axis = "y" if row == 1 else f"y{row}"
        top = 1 - (row - 1) * (band + gap)
        fig.update_layout(
            **{
                f"yaxis{'' if row == 1 else row}": {
                    "domain": [max(0.0, top - band), top],
                    "title": {"text": unit_label},
                    "gridcolor": "#eef0f4",
                    "rangemode": "tozero",
                    "anchor": "x",
                }
            }
        )
        fig.layout.setdefault("annotations", []).append(
            {
                "text": f"<b>{backend}</b>",
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": top,
                "xanchor": "left",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 12},
            }
        )
        series = [by_key.get((x, backend)) for x in xs]
        stacks = [("used", USED, "gpu_seconds", "gpu_cost_nusd")]
        if not filtered:
            stacks.append(("idle", IDLE, "idle_gpu_seconds", "idle_cost_nusd"))
        for name, colour, seconds_field, cost_field in stacks:
            fig.add_bar(
                x=xs,
                y=[_in(getattr(p, seconds_field), per) if p else 0.0 for p in series],
                yaxis=axis,
                name=name,
                marker={"color": colour},
                legendgroup=name,
                showlegend=row == 1,
                customdata=[fmt.usd(getattr(p, cost_field)) if p else fmt.usd(0) for p in series],
                hovertemplate=f"<b>{backend}</b> {name}<br>%{{x}}<br>"
                "%{y:,.2f} " + unit_label + " · %{customdata}<extra></extra>",
            )
    # The shared time axis sits under the lowest band.
    fig.update_xaxes(anchor="y" if len(backends) == 1 else f"y{len(backends)}")
    time_axis(fig, filters.period.bucket)

    rows = []
    for line in lines:
        total_s = line.gpu_seconds + line.idle_gpu_seconds
        tokens = line.prompt_tokens + line.completion_tokens
        cost = line.gpu_cost_nusd + line.idle_cost_nusd
        rows.append(
            [
                line.group,
                fmt.gpu_time(line.gpu_seconds),
                "–" if filtered else fmt.gpu_time(line.idle_gpu_seconds),
                "–" if filtered else fmt.percent(line.gpu_seconds / total_s if total_s else None),
                fmt.usd(line.gpu_cost_nusd),
                "–" if filtered else fmt.usd(line.idle_cost_nusd),
                fmt.compact(tokens),
                fmt.usd(per_unit_nusd(cost, tokens, 1_000_000)),
            ]
        )
    used_s = sum((line.gpu_seconds for line in lines), Decimal(0))
    idle_s = sum((line.idle_gpu_seconds for line in lines), Decimal(0))
    idle_nusd = sum(line.idle_cost_nusd for line in lines)
    tokens = sum(line.prompt_tokens + line.completion_tokens for line in lines)
    cost = sum(line.gpu_cost_nusd + line.idle_cost_nusd for line in lines)
    note = (
        "Idle time belongs to no team, feature or model: with a filter set, only the GPU time of the "
        "filtered calls is shown."
        if filtered
        else "Idle: GPU time with no call in flight, billed all the same."
    )
    kpis = [
        kpi("GPU time used", fmt.gpu_time(used_s), filters.period.label, kpi_id="gpus-used"),
        kpi(
            "Utilisation",
            "–" if filtered else fmt.percent(used_s / (used_s + idle_s) if used_s + idle_s else None),
            "used / (used + idle)",
            kpi_id="gpus-util",
        ),
        kpi(
            "Idle cost",
            "–" if filtered else fmt.usd(idle_nusd),
            "GPU time nobody used",
            kpi_id="gpus-idle-cost",
            tone="down" if idle_nusd else "",
        ),
        kpi(
            "Cost per million tokens",
            fmt.usd(per_unit_nusd(cost, tokens, 1_000_000)),
            "GPU basis, idle included" if not filtered else "GPU basis",
            kpi_id="gpus-per-mtok",
        ),
    ]
    parts: list[Any] = [
        html.Div(kpis, className="kpi-row"),
        card(graph("gpus-chart", fig), html.P(note, className="note")),
        card(
            table(
                [
                    "Backend",
                    "GPU time used",
                    "GPU time idle",
                    "Utilisation",
                    "Used cost",
                    "Idle cost",
                    "Tokens",
                    "Per M tokens",
                ],
                rows,
                numeric=(1, 2, 3, 4, 5, 6, 7),
                table_id="gpus-table",
            ),
            title="Backends",
        ),
    ]
    parts.append(capacity_card(capacity))
    return html.Div(parts)


# Capacity is sampled every scrape (seconds apart): the chart shows the last day of the period, thinned.
CAPACITY_SPAN = timedelta(hours=24)
CAPACITY_POINTS_PER_BACKEND = 240


def _capacity(
    session: Any, start: datetime, end: datetime, now: datetime
) -> tuple[list[Any], dict[str, str]] | None:
    """Backend capacity samples and verdicts, or None when the observability module is not installed."""
    try:
        queries = importlib.import_module("finops.observability.queries")
    except ImportError:
        return None
    until = min(end, now)
    points: list[Any] = queries.backend_capacity(session, max(start, until - CAPACITY_SPAN), until)
    verdicts: dict[str, str] = queries.capacity_verdicts(session, now)
    thinned: list[Any] = []
    for backend in sorted({p.backend for p in points}):
        mine = [p for p in points if p.backend == backend]
        step = max(1, len(mine) // CAPACITY_POINTS_PER_BACKEND)
        thinned.extend(mine[::step])
    return thinned, verdicts


def capacity_card(found: tuple[list[Any], dict[str, str]] | None) -> html.Div:
    if found is None:
        return card(
            html.P(
                "Queue depth and KV-cache use per backend appear here once the observability module "
                "(vLLM /metrics scraping) is installed and running.",
                className="note",
            ),
            title="Capacity",
        )
    points, verdicts = found
    chips = [
        html.Span([html.B(backend), " ", verdict], className="chip", id=f"verdict-{backend}")
        for backend, verdict in verdicts.items()
    ]
    if not points:
        return card(
            html.Div(chips, className="chips"),
            html.P(
                "No capacity samples in this period: the worker scrapes each backend's /metrics "
                "(queue, KV cache, token rates) while it runs.",
                className="note",
            ),
            title="Capacity",
        )
    fig = figure(
        "KV-cache use by backend (last 24 hours of the period)", y_title="KV cache used (%)", height=300
    )
    for backend in sorted({p.backend for p in points}):
        mine = [p for p in points if p.backend == backend and p.kv_cache_usage is not None]
        fig.add_scatter(
            x=[p.at for p in mine],
            y=[p.kv_cache_usage * 100 for p in mine],
            name=backend,
            mode="lines",
            line={"color": fmt.colour(backend)},
            customdata=[[p.running or 0, p.waiting or 0] for p in mine],
            hovertemplate=f"<b>{backend}</b><br>%{{x}}<br>%{{y:.0f}}% KV cache · "
            "%{customdata[0]:.0f} running, %{customdata[1]:.0f} waiting<extra></extra>",
        )
    fig.update_yaxes(rangemode="tozero")
    return card(graph("gpus-capacity", fig), html.Div(chips, className="chips"), title="Capacity")


def register(app: Dash, ctx: DashContext) -> None:
    @app.callback(Output("gpus-body", "children"), *FILTER_INPUTS)
    def _update(period: str, team: str, feature: str, model: str) -> Any:
        return body(ctx, ctx.filters(period, team, feature, model))
