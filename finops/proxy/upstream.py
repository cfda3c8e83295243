"""A lean HTTP/1.1 client for the backends: keep-alive pools of asyncio protocols parsed by httptools.

General-purpose clients spend most of a proxied call's CPU here (measured: aiohttp about 3/4 of the
proxy's time per call in our benchmark), on features a relay to a handful of known vLLM servers does
not need: cookies, redirects, content decoding, per-request timeout tasks. This client writes the
request in one call, parses the response with the same C parser uvicorn uses, and hands body chunks
over as they arrive. Read timeouts are one timer per wait that re-arms lazily, not one per chunk.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

# Pause reading from a backend while this many body bytes wait for a slow client.
HIGH_WATER_BYTES = 1 << 20


class UpstreamError(Exception):
    """The backend could not be reached, or broke the connection, before the exchange was complete."""


class ConnectFailed(UpstreamError):
    """No connection could be opened (refused, unreachable, or timed out): nothing was sent."""


class UpstreamTimeout(UpstreamError):
    pass


class UpstreamClosed(UpstreamError):
    """The connection ended before the response did."""

    def __init__(self, message: str, *, response_started: bool) -> None:
        super().__init__(message)
        self.response_started = response_started


class _Connection(asyncio.Protocol):
    __slots__ = (
        "_body_done",
        "_buffered",
        "_chunks",
        "_closed",
        "_error",
        "_head",
        "_headers",
        "_keep_alive",
        "_last_data_at",
        "_paused",
        "_waiter",
        "loop",
        "parser",
        "pool",
        "reused",
        "transport",
    )

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.reused = False
        self._closed = False
        self._error: UpstreamError | None = None
        self._reset()

    def _reset(self) -> None:
        self._headers: list[tuple[bytes, bytes]] = []
        self._head: asyncio.Future[None] | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._body_done = False
        self._keep_alive = False
        self._waiter: asyncio.Future[None] | None = None
        self._last_data_at = 0.0
        self._paused = False

    # -- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._last_data_at = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamClosed(f"invalid HTTP from backend: {exc}", response_started=True))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.pool.forget(self)
        if not self._body_done:
            started = self._head is not None and self._head.done()
            self._fail(UpstreamClosed("the backend closed the connection", response_started=started))

    # -- httptools callbacks ----------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._head is not None and not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER_BYTES and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        # Only valid inside the parser's callbacks: read it now, not after.
        self._keep_alive = self.parser.should_keep_alive()
        self._body_done = True
        self._wake()

    # -- internals --------------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: UpstreamError) -> None:
        # Kept as well as delivered: a reader between two waits must still see it at its next wait.
        self._error = error
        for future in (self._head, self._waiter):
            if future is not None and not future.done():
                future.set_exception(error)

    async def _wait(self, future: asyncio.Future[None], timeout_s: float) -> None:
        """Await ``future``; time out when no byte arrived for ``timeout_s`` (re-armed lazily)."""
        if future.done():
            future.result()
            return
        self._last_data_at = time.monotonic()

        def check() -> None:
            if future.done():
                return
            idle_s = time.monotonic() - self._last_data_at
            if idle_s >= timeout_s:
                future.set_exception(UpstreamTimeout(f"no data from the backend for {timeout_s:g} s"))
            else:
                handles[0] = self.loop.call_later(timeout_s - idle_s, check)

        handles = [self.loop.call_later(timeout_s, check)]
        try:
            await future
        finally:
            handles[0].cancel()

    # -- the exchange -----------------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        return not self._closed and self.transport is not None and not self.transport.is_closing()

    def send(self, head: bytes, body: bytes) -> None:
        self._reset()
        self._error = None
        self._head = self.loop.create_future()
        assert self.transport is not None
        # One buffer, one segment: two writes can reach the backend as two reads (an extra wake-up).
        self.transport.write(head + body)

    async def response_head(self, timeout_s: float) -> tuple[int, list[tuple[bytes, bytes]]]:
        assert self._head is not None
        await self._wait(self._head, timeout_s)
        return self.parser.get_status_code(), self._headers

    async def chunks(self, timeout_s: float) -> AsyncIterator[bytes]:
        """Body chunks as they arrive, until the response is complete."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < HIGH_WATER_BYTES // 2 and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                yield chunk
                continue
            if self._body_done:
                return
            if self._error is not None:
                raise self._error
            self._waiter = self.loop.create_future()
            await self._wait(self._waiter, timeout_s)

    async def read_all(self, timeout_s: float) -> bytes:
        parts = [chunk async for chunk in self.chunks(timeout_s)]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def finish(self) -> None:
        """Return a fully read connection to its pool, or close one that cannot be reused."""
        if self._body_done and self._keep_alive and self.usable:
            self.pool.put_back(self)
        else:
            self.close()

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Idle keep-alive connections to one backend."""

    def __init__(self, url: str, connect_timeout_s: float, max_idle: int = 256) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.base_path = parts.path.rstrip("/")
        host_header = parts.netloc.encode("idna") if parts.port else (parts.hostname or "").encode("idna")
        self.host_header = b"host: " + host_header + b"\r\n"
        self.connect_timeout_s = connect_timeout_s
        self.max_idle = max_idle
        self._idle: list[_Connection] = []
        self._ssl = ssl.create_default_context() if self.tls else None

    async def acquire(self, fresh: bool = False) -> _Connection:
        """An idle kept-alive connection, or a new one (always new when ``fresh``)."""
        while self._idle and not fresh:
            connection = self._idle.pop()
            if connection.usable:
                connection.reused = True
                return connection
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, protocol = await loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self._ssl
                )
        except TimeoutError:
            raise ConnectFailed(f"connecting to {self.host}:{self.port} timed out") from None
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from None
        return protocol

    def put_back(self, connection: _Connection) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(connection)
        else:
            connection.close()

    def forget(self, connection: _Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    def request_head(self, path: str, headers: list[tuple[bytes, bytes]], body_length: int) -> bytes:
        lines = [
            b"POST ",
            (self.base_path + path).encode(),
            b" HTTP/1.1\r\n",
            self.host_header,
            b"content-length: ",
            str(body_length).encode(),
            b"\r\n",
        ]
        for name, value in headers:
            lines += (name, b": ", value, b"\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)


Connection = _Connection
