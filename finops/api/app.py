"""The management API's application: ``create_app(config)`` builds it, ``finops api`` serves it.

Every endpoint lives under ``/finops/api/v1``; the OpenAPI document is ``/finops/api/v1/openapi.json``
(Swagger UI at ``/finops/api/v1/docs``). It is a process of its own, so nothing here touches the
proxy's hot path.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from finops.api.access_log import AccessLog
from finops.api.context import ApiContext
from finops.api.errors import install_error_handlers
from finops.api.routes import alerts, budgets, exports, health, keys, spend, teams, traces
from finops.config import FinopsConfig
from finops.db import make_engine

PREFIX = "/finops/api/v1"

DESCRIPTION = """\
Authenticate with `Authorization: Bearer <management token>` (`finops tokens create`); proxy API keys
do not open this API. Roles: **admin** (everything), **finance** (reads everything, exports; no key or
budget changes), **team** (reads only its own team's spend, traces and alerts). Each operation lists the
roles it admits under `x-finops-roles`.

Errors always answer `{"error": {"code", "message", "field", "details"}}`; `code` is stable and
`field` names the offending input. Lists take `limit` (1-1000, default 100) and `offset` (default 0) and
answer `next_offset`, null on the last page. Money is integer nano-USD (`*_nusd`); GPU-seconds and
factors are decimal strings. Times are ISO 8601, UTC.
"""


def create_app(config: FinopsConfig, engine: Engine | None = None) -> FastAPI:
    app = FastAPI(
        title="finops management API",
        version="1",
        description=DESCRIPTION,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.finops = ApiContext(config, engine or make_engine(config.database_url))
    install_error_handlers(app)
    app.add_middleware(AccessLog)
    for module in (health, teams, keys, spend, traces, budgets, alerts, exports):
        app.include_router(module.router, prefix=PREFIX)
    return app
