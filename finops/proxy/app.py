"""The proxy: a plain ASGI application (no framework on the hot path) relaying to vLLM backends.

A route through a framework costs about twice a plain ASGI route here, and the proxy's whole budget is
a fraction of a millisecond, so dispatch is a dictionary lookup and responses are raw ASGI messages.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from finops.config import FinopsConfig
from finops.proxy.call import CallHandler
from finops.proxy.errors import ProxyError, method_not_allowed, model_not_found, not_found
from finops.proxy.requests import ENDPOINT_BY_PATH
from finops.proxy.state import ProxyState

log = logging.getLogger("finops.proxy")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"


async def send_json(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: ProxyError, request_id: str | None = None) -> None:
    extra = [(b"x-finops-request-id", request_id.encode())] if request_id else []
    await send_json(send, error.status, error.body(), [*extra, *error.headers])


class ProxyApp:
    def __init__(self, config: FinopsConfig, state: ProxyState | None = None) -> None:
        self.config = config
        self.state = state or ProxyState(config)
        self._calls: CallHandler | None = None
        self._models_body = orjson.dumps(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": int(time.time()), "owned_by": "finops"}
                    for m in self.state.router.models()
                ],
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # -- lifespan ---------------------------------------------------------------------------------
    async def startup(self) -> None:
        self._calls = CallHandler(self.state)
        await self.state.start()

    async def shutdown(self) -> None:
        if self._calls is not None:
            self._calls.close()
        await self.state.stop()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("proxy failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    # -- routes -----------------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        endpoint = ENDPOINT_BY_PATH.get(path) or ENDPOINT_BY_PATH.get(path.rstrip("/"))
        if endpoint is not None:
            if method != "POST":
                await send_error(send, method_not_allowed(method, path))
                return
            assert self._calls is not None, "the lifespan startup has not run"
            request_id = secrets.token_hex(16)
            try:
                await self._calls.handle(endpoint, scope, receive, send, request_id)
            except ProxyError as error:
                self.state.metrics.errors.labels(error.code or str(error.status)).inc()
                await send_error(send, error, request_id)
            return
        if method not in ("GET", "HEAD"):
            await send_error(
                send,
                method_not_allowed(method, path)
                if path in _GET_PATHS
                else not_found(f"no route for {method} {path}"),
            )
            return
        if path in ("/v1/models", "/v1/models/"):
            await send_json(send, 200, self._models_body)
        elif path.startswith("/v1/models/"):
            await self._one_model(send, path[len("/v1/models/") :])
        elif path == "/healthz":
            await send_json(send, 200, orjson.dumps(self._health()))
        elif path == "/metrics":
            await self._metrics(send)
        else:
            await send_error(send, not_found(f"no route for {method} {path}"))

    async def _one_model(self, send: Send, model: str) -> None:
        if not self.state.router.serves(model):
            await send_error(send, model_not_found(model))
            return
        await send_json(
            send,
            200,
            orjson.dumps({"id": model, "object": "model", "created": int(time.time()), "owned_by": "finops"}),
        )

    def _health(self) -> dict[str, Any]:
        writer = self.state.writer
        now = time.monotonic()
        return {
            "status": "ok",
            "ledger": {
                "queued_records": writer.queued,
                "database_up": not writer.database_down,
                "spooled_records": writer.stats.spooled_records,
                "replayed_records": writer.stats.replayed_records,
            },
            "backends": [
                {
                    "name": b.name,
                    "models": list(b.config.models),
                    "in_flight": b.in_flight,
                    "cooling_down": b.down_until > now,
                }
                for b in self.state.router.backends
            ],
        }

    async def _metrics(self, send: Send) -> None:
        metrics = self.state.metrics
        writer = self.state.writer
        metrics.queue_depth.set(writer.queued)
        metrics.spooled.set(writer.stats.spooled_records)
        metrics.database_up.set(0 if writer.database_down else 1)
        body = await asyncio.to_thread(generate_latest, metrics.registry)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPE_LATEST.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


_GET_PATHS = {"/v1/models", "/healthz", "/metrics"}


def create_app(config: FinopsConfig) -> ProxyApp:
    return ProxyApp(config)
