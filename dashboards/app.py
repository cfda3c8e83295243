"""The Dash app: a shell (navigation, filter bar, who is logged in) around one page at a time."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import flask
from dash import Dash, Input, Output, dcc, html
from sqlalchemy import Engine

from dashboards.auth import DB_CACHE_S, Auth, Viewer, viewer
from dashboards.context import DashContext
from dashboards.pages import alerts, amplification, gpus, latency, overview, spend, traces
from dashboards.periods import DEFAULT_PRESET, PRESETS, resolve
from finops.config import FinopsConfig
from finops.db import make_engine
from finops.rollups.queries import tag_values

ASSETS = Path(__file__).parent / "assets"

# (path, title, icon, module); the first is the home page.
PAGES: list[tuple[str, str, str, ModuleType]] = [
    ("/", "Overview", "◎", overview),
    ("/spend", "Spend", "$", spend),
    ("/amplification", "Amplification", "⤢", amplification),
    ("/traces", "Trace explorer", "≡", traces),
    ("/gpus", "GPUs", "▦", gpus),
    ("/latency", "Latency", "◔", latency),
    ("/alerts", "Alerts", "!", alerts),
]


def _filter_bar() -> html.Div:
    def dropdown(dropdown_id: str, placeholder: str) -> dcc.Dropdown:
        return dcc.Dropdown(id=dropdown_id, placeholder=placeholder, className="filter", clearable=True)

    return html.Div(
        [
            dcc.Dropdown(
                id="f-period",
                options=[{"label": label, "value": key} for key, label in PRESETS.items()],
                value=DEFAULT_PRESET,
                clearable=False,
                className="filter period",
            ),
            dropdown("f-team", "All teams"),
            dropdown("f-feature", "All features"),
            dropdown("f-model", "All models"),
        ],
        className="filters",
    )


def _shell() -> html.Div:
    # Dash also builds the layout once, to validate it, on the first request of any kind (a login
    # page too); that build shows nobody's name. Data only ever comes through the guarded callbacks.
    who = flask.g.get("viewer") or Viewer("", "team", None)
    role = f"{who.role} · {who.team}" if who.team else who.role
    nav = [
        dcc.Link(
            [html.Span(icon, className="nav-icon"), title],
            href=path,
            id=f"nav-{path.strip('/') or 'overview'}",
            className="nav-link",
        )
        for path, title, icon, _ in PAGES
    ]
    return html.Div(
        [
            dcc.Location(id="url"),
            html.Aside(
                [
                    html.Div(
                        [html.Span("fin"), html.Span("ops", className="brand-accent")], className="brand"
                    ),
                    html.Div("LLM cost attribution", className="brand-sub"),
                    html.Nav(nav, className="nav"),
                    html.Div(
                        [
                            html.Div(who.name, className="user-name", id="user-name"),
                            html.Div(role, className="user-role"),
                            html.A("Sign out", href="/logout", className="sign-out", id="sign-out"),
                        ],
                        className="user",
                    ),
                ],
                className="sidebar",
            ),
            html.Main(
                [
                    html.Header([html.H1(id="page-title"), _filter_bar()], className="topbar"),
                    html.Div(id="page", className="page"),
                ],
                className="main",
            ),
        ],
        className="shell",
    )


def create_app(
    config: FinopsConfig,
    engine: Engine | None = None,
    secret: str | None = None,
    *,
    db_users_cache_s: float = DB_CACHE_S,
) -> Dash:
    """The app for ``config``; ``secret`` signs the session cookie (default: the config's secret_key,
    else one generated once and kept in the database, shared by every replica). Users stored in the
    database are read at most once per ``db_users_cache_s``."""
    engine = engine or make_engine(config.database_url, pool_pre_ping=True)
    ctx = DashContext(config, engine)
    if secret is None:
        secret = _stored_secret(ctx)
    server = flask.Flask("finops.dashboards")
    Auth(config.dashboard, secret, engine, db_cache_s=db_users_cache_s).install(server)
    app = Dash(
        "finops.dashboards",
        server=server,  # type: ignore[arg-type]  # Dash's stubs miss the Flask server it accepts
        title="finops",
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
        update_title=None,  # type: ignore[arg-type]  # None: keep the tab title while updating
    )
    app.layout = _shell
    _register_shell(app, ctx)
    for _path, _title, _icon, module in PAGES:
        module.register(app, ctx)
    return app


def _stored_secret(ctx: DashContext) -> str:
    from finops.keys.service import hash_secret

    with ctx.session() as session:
        return hash_secret(session, ctx.config)


def _register_shell(app: Dash, ctx: DashContext) -> None:
    paths = [path for path, *_ in PAGES]

    @app.callback(
        Output("page", "children"),
        Output("page-title", "children"),
        *[Output(f"nav-{p.strip('/') or 'overview'}", "className") for p in paths],
        Input("url", "pathname"),
        Input("url", "search"),
    )
    def _route(pathname: str | None, search: str | None) -> Any:
        path = pathname if pathname in paths else "/"
        index = paths.index(path)
        _, title, _, module = PAGES[index]
        classes = ["nav-link active" if i == index else "nav-link" for i in range(len(paths))]
        return module.layout(ctx, search or ""), title, *classes

    @app.callback(
        Output("f-team", "options"),
        Output("f-team", "value"),
        Output("f-team", "disabled"),
        Output("f-feature", "options"),
        Output("f-model", "options"),
        Input("f-period", "value"),
        Input("f-team", "value"),
    )
    def _filter_options(period: str | None, team: str | None) -> Any:
        who = viewer()
        forced = who.scope_team(team or None)
        span = resolve(period, ctx.clock(), ctx.config.timezone)
        with ctx.session() as session:
            every = tag_values(session, span.previous_start, span.end, team=who.scope_team(None))
            scoped = tag_values(session, span.previous_start, span.end, team=forced) if forced else every
        teams = every.teams
        if who.role == "team" and who.team is not None:
            teams = [who.team]
        return (
            [{"label": t, "value": t} for t in teams],
            forced,
            who.role == "team",
            [{"label": f, "value": f} for f in scoped.features],
            [{"label": m, "value": m} for m in scoped.models],
        )
