"""Alerts: every alert, newest first, with the delivery status of each channel it went to."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, dcc, html

from dashboards import format as fmt
from dashboards.context import FILTER_INPUTS, DashContext, Filters
from dashboards.pages.overview import optional
from dashboards.ui import badge, card, empty_state, table

PAGE_SIZE = 50
STATUS_TONE = {"delivered": "ok", "pending": "warn", "failed": "bad"}


def layout(ctx: DashContext, search: str) -> html.Div:
    return html.Div(
        [
            html.Div(
                [
                    html.Span("Page", className="control-label"),
                    dcc.Input(
                        id="alerts-page", type="number", min=1, step=1, value=1, className="text-input small"
                    ),
                ],
                className="controls",
            ),
            dcc.Loading(html.Div(id="alerts-body"), type="dot", color="#4c6ef5"),
        ]
    )


def body(ctx: DashContext, filters: Filters, page: int) -> Any:
    queries = optional("finops.alerts.queries")
    if queries is None:
        return empty_state(
            "Alerts are not available yet",
            "Budget and latency alerting (finops.alerts) is not installed in this deployment.",
            state_id="alerts-empty",
        )
    with ctx.session() as session:
        alerts = queries.list_alerts(
            session, team=filters.team, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    if not alerts:
        return empty_state(
            "No alerts" + (" on this page" if page > 1 else " yet"),
            "An alert fires once per budget, period and threshold (50%, 80%, 100% by default), and when the "
            "run rate forecasts more than 100% by the period's end. "
            "Set budgets under `budgets:` and channels "
            "under `channels:` in finops.yaml.",
            state_id="alerts-empty",
        )
    rows = []
    for a in alerts:
        scope = ", ".join(f"{k}={v}" for k, v in sorted(a.scope.items()) if v) or "everything"
        deliveries: list[Any] = [
            html.Div(
                [
                    badge(d.status, STATUS_TONE.get(d.status, "warn")),
                    html.Span(f" {d.channel}", className="channel"),
                    html.Span(f" · {d.attempts} attempt{'s' if d.attempts != 1 else ''}", className="muted"),
                    html.Div(d.last_error, className="error-text")
                    if d.last_error and d.status != "delivered"
                    else None,
                ],
                className="delivery",
            )
            for d in a.deliveries
        ] or [html.Span("no channel", className="muted")]
        rows.append(
            [
                f"{a.created_at:%Y-%m-%d %H:%M}",
                badge(a.kind, "bad" if a.kind in ("threshold", "latency") else "warn"),
                html.Div(
                    [
                        html.B(a.subject),
                        html.Div(f"{a.source} · {a.budget or '–'} · {scope}", className="muted"),
                    ]
                ),
                fmt.percent(a.threshold) if a.threshold is not None else "–",
                fmt.usd(a.spend_nusd),
                fmt.usd(a.amount_nusd),
                html.Div(deliveries),
            ]
        )
    return card(
        table(
            ["When (UTC)", "Kind", "Alert", "Threshold", "Spend", "Budget", "Delivery"],
            rows,
            numeric=(3, 4, 5),
            table_id="alerts-table",
        ),
        title="Alerts, newest first",
    )


def register(app: Dash, ctx: DashContext) -> None:
    @app.callback(Output("alerts-body", "children"), *FILTER_INPUTS, Input("alerts-page", "value"))
    def _update(period: str, team: str, feature: str, model: str, page: Any) -> Any:
        number = page if isinstance(page, int) and page >= 1 else 1
        return body(ctx, ctx.filters(period, team, feature, model), number)
