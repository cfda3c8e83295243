"""Plain-ASGI plumbing for the stand-in: bodies, responses, streams, pacing and dropped connections.

No framework sits between uvicorn and the handlers, so the stand-in adds as little as possible to the
latency a proxy benchmark measures against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_CONTENT_TYPE = b"application/json"
SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
# How long a dropped connection may take to be noticed by the server before the handler gives up.
_DROP_SETTLE_S = 1.0


class ClientDisconnected(Exception):
    """The client went away before the request body arrived."""


class ConnectionDropped(Exception):
    """Raised to make the server close a connection when the transport cannot be reached directly."""


async def read_body(receive: Receive) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    parts = [body]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes | None = JSON_CONTENT_TYPE,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    response_headers = [(b"content-length", str(len(body)).encode()), *headers]
    if content_type is not None:
        response_headers.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class Connection:
    """One request's connection: streamed writes, paced sleeps that notice a client leaving, drops."""

    __slots__ = ("_disconnect", "_receive", "_send")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        # Started on the first sleep only: a request that never waits never pays for a task.
        self._disconnect: asyncio.Task[None] | None = None

    async def _wait_for_disconnect(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass

    def _disconnect_task(self) -> asyncio.Task[None]:
        if self._disconnect is None:
            self._disconnect = asyncio.ensure_future(self._wait_for_disconnect())
        return self._disconnect

    async def sleep_until(self, deadline_s: float) -> bool:
        """Wait until ``time.perf_counter()`` reaches ``deadline_s``; False as soon as the client has
        gone (the request should then be aborted)."""
        # Timers may fire a little early (libuv rounds to milliseconds against a cached clock), and a
        # simulated latency must be a floor, so wait again for any remainder.
        while (remaining_s := deadline_s - time.perf_counter()) > 0:
            done, _ = await asyncio.wait({self._disconnect_task()}, timeout=remaining_s)
            if done:
                return False
        return self._disconnect is None or not self._disconnect.done()

    async def start_stream(self) -> None:
        await self._send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})

    async def start_response(self, status: int, content_length: int, content_type: bytes) -> None:
        headers = [(b"content-length", str(content_length).encode()), (b"content-type", content_type)]
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def write(self, data: bytes) -> None:
        # One ASGI message per event: the server writes each at once, so the client sees real streaming.
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, data: bytes = b"") -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": False})

    async def drop(self) -> None:
        """Close the TCP connection now, mid-response or before it, as a crashing backend would.

        ASGI has no abort message. Under uvicorn, ``send`` is a method of the request cycle, which
        holds the transport: closing it flushes what was written and ends the connection, so the
        client sees a truncated body (or no response at all). We then wait for the server to notice,
        so that it neither answers 500 nor logs an unfinished response.
        """
        transport = getattr(getattr(self._send, "__self__", None), "transport", None)
        close = getattr(transport, "close", None)
        if not callable(close):
            # Elsewhere an unhandled error makes servers close a started response's connection.
            raise ConnectionDropped("simulated dropped connection")
        close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._disconnect_task()), _DROP_SETTLE_S)

    def close(self) -> None:
        if self._disconnect is not None and not self._disconnect.done():
            self._disconnect.cancel()


async def serve_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
