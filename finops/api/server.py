"""``finops api``: the management API under uvicorn, in a process of its own beside the proxy."""

from __future__ import annotations

import logging

import uvicorn

from finops.api.app import PREFIX, create_app
from finops.config import FinopsConfig
from finops.proxy.server import GracefulServer


def run_api(config: FinopsConfig, host: str | None = None, port: int | None = None) -> int:
    host = host or config.api.host
    port = config.api.port if port is None else port
    app = create_app(config)
    logging.getLogger("finops").info("finops management API listening on http://%s:%d%s", host, port, PREFIX)
    # uvicorn's access log prints whole URLs; finops.api.access_log prints paths only.
    config_ = uvicorn.Config(
        app, host=host, port=port, log_level="info", access_log=False, proxy_headers=False
    )
    # The proxy's server class: after SIGTERM a clean drain exits 0 (supervisors read -15 as a crash).
    GracefulServer(config_).run()
    return 0
