"""One log line per request: method, path, status, time. Never the query string or any header: a caller
who puts a token or a key in the URL by mistake must not find it in the logs (uvicorn's own access log,
which prints the whole URL, is off)."""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger("finops.api.access")


class AccessLog:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, elapsed_ms)
