"""Building blocks every page uses, so that the pages look like one product: cards, KPIs, tables,
empty states that say what to do, and one chart style."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

from dash import dcc, html

FONT = 'Inter, "Segoe UI", Roboto, Helvetica, Arial, sans-serif'


class Fig:
    """A plotly figure as plain data. plotly's graph objects validate every property on every
    assignment, which cost more than the database on these pages; the browser's plotly.js draws the
    same dict. Only the few operations the pages use are here."""

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {}

    def add_bar(self, **trace: Any) -> None:
        self.data.append({"type": "bar", **_expand(trace)})

    def add_scatter(self, **trace: Any) -> None:
        self.data.append({"type": "scatter", **_expand(trace)})

    def update_layout(self, **changes: Any) -> None:
        _merge(self.layout, _expand(changes))

    def update_xaxes(self, **changes: Any) -> None:
        for key in [k for k in self.layout if k.startswith("xaxis")] or ["xaxis"]:
            _merge(self.layout.setdefault(key, {}), _expand(changes))

    def update_yaxes(self, row: int | None = None, **changes: Any) -> None:
        keys = [k for k in self.layout if k.startswith("yaxis")] or ["yaxis"]
        if row is not None:
            keys = ["yaxis" if row == 1 else f"yaxis{row}"]
        for key in keys:
            _merge(self.layout.setdefault(key, {}), _expand(changes))

    def add_hline(self, y: float, *, line: dict[str, Any], label: str = "") -> None:
        """A horizontal line across the plot at ``y``, labelled at its right end."""
        self.layout.setdefault("shapes", []).append(
            {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": y, "y1": y, "line": line}
        )
        if label:
            self.layout.setdefault("annotations", []).append(
                {
                    "xref": "paper",
                    "x": 1,
                    "xanchor": "right",
                    "yref": "y",
                    "y": y,
                    "yanchor": "bottom",
                    "text": label,
                    "showarrow": False,
                    "font": {"size": 11, "color": "#6b7280"},
                }
            )

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "layout": self.layout}


def _expand(changes: dict[str, Any]) -> dict[str, Any]:
    """plotly's "magic underscore" for the two spellings used here: title_text, marker_color."""
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key in ("title_text", "marker_color"):
            outer, inner = key.split("_")
            out.setdefault(outer, {})[inner] = value
        else:
            out[key] = value
    return out


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def figure(title: str, *, y_title: str = "", x_title: str = "", height: int = 360) -> Fig:
    """An empty figure in the house style: title, axis titles with units, legend beside the plot."""
    fig = Fig()
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        font={"family": FONT, "size": 12, "color": "#374151"},
        height=height,
        margin={"l": 64, "r": 24, "t": 48, "b": 40},
        # Beside the plot: above it a long legend runs into the title, below it into the axis title.
        legend={"orientation": "v", "yanchor": "top", "y": 1, "x": 1.01, "xanchor": "left"},
        hoverlabel={"font": {"family": FONT}},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
    )
    fig.update_xaxes(title={"text": x_title}, showgrid=False, linecolor="#d1d5db")
    fig.update_yaxes(title={"text": y_title}, gridcolor="#eef0f4", zerolinecolor="#d1d5db")
    return fig


def graph(graph_id: str, fig: Fig | None = None) -> dcc.Graph:
    return dcc.Graph(
        id=graph_id,
        figure=(fig if fig is not None else figure("")).to_dict(),
        config={"displaylogo": False, "displayModeBar": False},
        className="chart",
    )


def card(
    *children: Any, title: str | None = None, class_name: str = "", card_id: str | None = None
) -> html.Div:
    head = [html.H3(title, className="card-title")] if title else []
    extra = {"id": card_id} if card_id else {}
    return html.Div([*head, *children], className=f"card {class_name}".strip(), **cast(dict[str, Any], extra))


def kpi(label: str, value: str, note: str = "", *, kpi_id: str, tone: str = "") -> html.Div:
    """One headline number; ``tone`` ("up", "down") colours the note."""
    return html.Div(
        [
            html.Div(label, className="kpi-label"),
            html.Div(value, className="kpi-value", id=kpi_id),
            html.Div(note, className=f"kpi-note {tone}".strip()),
        ],
        className="kpi",
    )


def empty_state(title: str, *lines: str, code: str | None = None, state_id: str | None = None) -> html.Div:
    """What to do when there is nothing to show, instead of a blank chart."""
    body: list[Any] = [html.Div("∅", className="empty-icon"), html.H4(title)]
    body += [html.P(line) for line in lines]
    if code:
        body.append(html.Pre(code, className="empty-code"))
    extra = {"id": state_id} if state_id else {}
    return html.Div(body, className="empty-state", **cast(dict[str, Any], extra))


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    numeric: Sequence[int] = (),
    table_id: str | None = None,
) -> html.Table:
    """A plain, readable table; columns in ``numeric`` are right-aligned with tabular figures."""

    def cell(tag: type[html.Th] | type[html.Td], index: int, value: Any) -> Any:
        return tag(value, className="num" if index in numeric else "")

    head = html.Thead(html.Tr([cell(html.Th, i, h) for i, h in enumerate(header)]))
    body = html.Tbody([html.Tr([cell(html.Td, i, v) for i, v in enumerate(row)]) for row in rows])
    extra = {"id": table_id} if table_id else {}
    return html.Table([head, body], className="data-table", **cast(dict[str, Any], extra))


def badge(text: str, tone: str) -> html.Span:
    return html.Span(text, className=f"badge badge-{tone}")


def progress(fraction: float, marks: Sequence[float] = (), tone: str = "") -> html.Div:
    """A bar filled to ``fraction`` (capped at 100% wide), with ticks at ``marks`` (thresholds)."""
    width = max(0.0, min(fraction, 1.0)) * 100
    ticks = [html.Div(className="progress-mark", style={"left": f"{min(m, 1.0) * 100:.1f}%"}) for m in marks]
    return html.Div(
        [html.Div(className=f"progress-fill {tone}".strip(), style={"width": f"{width:.1f}%"}), *ticks],
        className="progress",
    )


def usd_axis(fig: Fig, largest_usd: float, axis: str = "y", **selector: Any) -> None:
    """Dollar ticks with as many decimals as the largest value needs: $1,200 / $3.50 / $0.0025."""
    if largest_usd >= 100:
        places = 0
    elif largest_usd >= 1 or largest_usd <= 0:
        places = 2
    else:
        places = min(9, 1 - math.floor(math.log10(largest_usd)))
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    update(tickprefix="$", tickformat=f",.{places}~f", rangemode="tozero", **selector)


def time_axis(fig: Fig, bucket: str, **selector: Any) -> None:
    """Dates for daily buckets, hours for hourly ones."""
    if bucket == "day":
        fig.update_xaxes(tickformat="%b %d", dtick=86_400_000, **selector)
    else:
        fig.update_xaxes(tickformat="%H:%M\n%b %d", **selector)
