"""One proxied call, from the client's bytes to the backend and back, and its usage record."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from finops.ledger.record import UsageRecord
from finops.observability.events import classify_upstream_error
from finops.pricing.book import UNPRICED, CallCost, nusd_to_usd_string
from finops.proxy import errors
from finops.proxy.errors import ProxyError
from finops.proxy.requests import CHAT, EMBEDDINGS, ParsedRequest, parse_request, upstream_body
from finops.proxy.routing import Backend
from finops.proxy.sse import StreamTracker
from finops.proxy.state import ProxyState
from finops.proxy.tags import KeyDefaults, Tags, resolve_tags
from finops.proxy.upstream import (
    ConnectFailed,
    Connection,
    Pool,
    UpstreamClosed,
    UpstreamError,
    UpstreamTimeout,
)
from finops.tokens.counting import content_text, count_chat_prompt, count_prompt_input, count_text
from finops.tokens.parts import prompt_parts

log = logging.getLogger("finops.proxy")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FINOPS_KEY_PREFIX = "fo-"
# Headers never forwarded upstream: hop-by-hop, recomputed, or ours.
_DROP_UPSTREAM = frozenset(
    name.encode()
    for name in {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
        "accept-encoding",
        "authorization",
        "expect",
        "content-type",  # we send our own: the body we forward is always JSON
    }
)
# Headers of the backend's response not relayed: hop-by-hop or rewritten by our server.
_DROP_DOWNSTREAM = frozenset(
    name.encode()
    for name in {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "date",
        "server",
    }
)
STATUS_CLIENT_CLOSED = 499  # nginx's convention for "the client went away before the answer ended"


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    estimated: bool


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def usage_from(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt = data.get("prompt_tokens")
    if not isinstance(prompt, int):
        return None
    details = data.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(_int(prompt), _int(data.get("completion_tokens")), cached, estimated=False)


def estimate_prompt_tokens(request: ParsedRequest) -> int:
    payload = request.payload
    if request.endpoint == CHAT:
        return count_chat_prompt(payload.get("messages") or [])
    if request.endpoint == EMBEDDINGS:
        return count_prompt_input(payload.get("input"))
    return count_prompt_input(payload.get("prompt"))


def response_text(data: Any) -> str:
    """The generated text of a non-streamed response, for counting when it came without usage."""
    parts: list[str] = []
    if isinstance(data, dict):
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message")
            if isinstance(message, dict):
                parts.append(content_text(message.get("content")))
                if message.get("tool_calls"):
                    parts.append(orjson.dumps(message["tool_calls"]).decode())
            elif isinstance(choice.get("text"), str):
                parts.append(choice["text"])
    return "".join(parts)


class CallHandler:
    def __init__(self, state: ProxyState) -> None:
        self.state = state
        proxy = state.config.proxy
        self.read_timeout_s = proxy.read_timeout_s
        self.pools = {
            backend.name: Pool(backend.api_base, proxy.connect_timeout_s, proxy.max_connections_per_backend)
            for backend in state.router.backends
        }
        self._reject_untagged = state.config.tagging.untagged == "reject"
        self._required_tags = tuple(state.config.tagging.required)
        self._max_body = proxy.max_body_bytes

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()

    # -- reading and checking ---------------------------------------------------------------------
    async def _read_body(self, scope: MutableMapping[str, Any], receive: Receive) -> bytes:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise errors.bad_request(
                        "invalid Content-Length header", code="invalid_request"
                    ) from None
                if declared > self._max_body:
                    raise errors.body_too_large(self._max_body)
                break
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise errors.bad_request("the client disconnected while sending the request")
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self._max_body:
                    raise errors.body_too_large(self._max_body)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _authenticate(self, authorization: str | None) -> tuple[KeyDefaults | None, str | None]:
        """The finops key that made the call, and the Authorization value to forward (a backend's own key)."""
        token = None
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer":
                token = None
            token = token.strip() if token else None
        require = self.state.config.auth.require_api_key
        if token and (require or token.startswith(FINOPS_KEY_PREFIX)):
            if not self.state.keys.loaded:
                # The database was away since start-up: we cannot tell a good key from a bad one yet.
                raise errors.keys_unavailable()
            key = self.state.keys.lookup(token)
            if key is None:
                raise errors.invalid_api_key("invalid or revoked API key")
            return key, None
        if require:
            raise errors.invalid_api_key("an API key is required: send 'Authorization: Bearer <key>'")
        # Not ours (a placeholder like "EMPTY", or the backend's own key): pass it through untouched.
        return None, authorization

    # -- the call ---------------------------------------------------------------------------------
    async def handle(
        self, endpoint: str, scope: MutableMapping[str, Any], receive: Receive, send: Send, request_id: str
    ) -> None:
        started_wall = time.time()
        started = time.perf_counter()
        # One pass over the headers: ours (decoded, for tags), the client's key, the rest forwarded as bytes.
        finops_headers: dict[str, str] = {}
        forwarded: list[tuple[bytes, bytes]] = []
        authorization = None
        for name, value in scope["headers"]:
            if name.startswith(b"x-finops-"):
                finops_headers[name.decode("latin-1")] = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value.decode("latin-1")
            elif name not in _DROP_UPSTREAM:
                if name == b"traceparent":
                    finops_headers["traceparent"] = value.decode("latin-1")
                forwarded.append((name, value))
        body = await self._read_body(scope, receive)
        key, client_authorization = self._authenticate(authorization)
        request = parse_request(endpoint, body)
        if not self.state.router.serves(request.model):
            raise errors.model_not_found(request.model)
        tags = resolve_tags(
            finops_headers,
            request.metadata,
            key,
            reject_untagged=self._reject_untagged,
            required=self._required_tags,
        )
        self.state.limits.check(tags.team, tags.feature, request.model)
        forward = upstream_body(request, body)
        call = Call(self, request, tags, key, request_id, started_wall, started, forward)
        await call.run(send, receive, forwarded, client_authorization)


class Call:
    """The life of one call after it passed the checks: route, relay, record."""

    def __init__(
        self,
        handler: CallHandler,
        request: ParsedRequest,
        tags: Tags,
        key: KeyDefaults | None,
        request_id: str,
        started_wall: float,
        started: float,
        forward: bytes,
    ) -> None:
        self.handler = handler
        self.state = handler.state
        self.request = request
        self.tags = tags
        self.key = key
        self.request_id = request_id
        self.started_wall = started_wall
        self.started = started
        self.forward = forward
        self.backend: Backend | None = None
        self.served_model = request.model

    async def run(
        self,
        send: Send,
        receive: Receive,
        forwarded: list[tuple[bytes, bytes]],
        client_authorization: str | None,
    ) -> None:
        connection, status, headers = await self._connect(forwarded, client_authorization)
        backend = self.backend
        assert backend is not None
        try:
            if self.request.stream and status == 200:
                await self._relay_stream(connection, headers, send, receive)
            else:
                await self._relay_whole(connection, status, headers, send)
        finally:
            backend.in_flight -= 1

    async def _connect(
        self, forwarded: list[tuple[bytes, bytes]], client_authorization: str | None
    ) -> tuple[Connection, int, list[tuple[bytes, bytes]]]:
        """Send the call to the first backend that takes it; returns once the response headers arrived."""
        router = self.state.router
        path = "/" + self.request.endpoint.replace(".", "/")
        timeout_s = self.handler.read_timeout_s
        for backend in router.candidates(self.request.model):
            pool = self.handler.pools[backend.name]
            headers = [*forwarded, (b"content-type", b"application/json")]
            if backend.config.api_key:
                headers.append((b"authorization", f"Bearer {backend.config.api_key}".encode("latin-1")))
            elif client_authorization:
                headers.append((b"authorization", client_authorization.encode("latin-1")))
            head = pool.request_head(path, headers, len(self.forward))
            backend.in_flight += 1
            self.backend = backend
            for attempt in range(2):
                try:
                    connection = await pool.acquire(fresh=attempt > 0)
                except ConnectFailed as exc:
                    backend.in_flight -= 1
                    router.mark_down(backend)
                    log.warning(
                        "backend %s: %s; skipping it for %.0f s",
                        backend.name,
                        exc,
                        self.state.config.proxy.backend_cooldown_s,
                    )
                    break
                try:
                    connection.send(head, self.forward)
                    status, response_headers = await connection.response_head(timeout_s)
                except UpstreamClosed as exc:
                    connection.close()
                    # A kept-alive connection the backend closed just before we wrote: nothing was read,
                    # so send again once, on a fresh connection.
                    if connection.reused and not exc.response_started and attempt == 0:
                        continue
                    backend.in_flight -= 1
                    self._fail_before_response(errors.upstream_failed("closed"), "upstream_disconnected")
                    raise errors.upstream_failed(
                        "the backend closed the connection before answering"
                    ) from None
                except UpstreamTimeout:
                    connection.close()
                    backend.in_flight -= 1
                    self._fail_before_response(errors.upstream_timeout(timeout_s), "upstream_timeout")
                    raise errors.upstream_timeout(timeout_s) from None
                router.mark_up(backend)
                return connection, status, response_headers
        error = errors.upstream_unreachable(self.request.model)
        self._fail_before_response(error, "upstream_unreachable")
        raise error

    def _fail_before_response(self, error: ProxyError, error_type: str) -> None:
        """Record a call that reached routing but got no answer from any backend."""
        self._submit(error.status, Usage(0, 0, 0, estimated=False), error_type=error_type)

    # -- non-streamed -----------------------------------------------------------------------------
    async def _relay_whole(
        self, connection: Connection, status: int, headers: list[tuple[bytes, bytes]], send: Send
    ) -> None:
        try:
            body = await connection.read_all(self.handler.read_timeout_s)
        except UpstreamTimeout:
            connection.close()
            self._submit(504, Usage(0, 0, 0, False), error_type="upstream_timeout")
            raise errors.upstream_timeout(self.handler.read_timeout_s) from None
        except UpstreamError as exc:
            connection.close()
            self._submit(502, Usage(0, 0, 0, False), error_type="upstream_disconnected")
            raise errors.upstream_failed(f"{exc} while reading the response") from None
        connection.finish()
        usage: Usage | None = None
        finish_reason = None
        error_type = None
        if status == 200:
            data = _loads(body)
            if isinstance(data, dict):
                if isinstance(data.get("model"), str):
                    self.served_model = data["model"]
                usage = usage_from(data.get("usage"))
                choices = data.get("choices")
                if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                    reason = choices[0].get("finish_reason")
                    finish_reason = reason[:32] if isinstance(reason, str) else None
            if usage is None:
                try:
                    usage = await asyncio.to_thread(self._estimate, response_text(data))
                except Exception:
                    log.exception("token counting failed; recording the call with zero estimated tokens")
                    usage = Usage(0, 0, 0, estimated=True)
        elif not 100 <= status <= 599:
            # Not an HTTP status our server can send on: answer 502, and record what happened.
            self._submit(502, Usage(0, 0, 0, False), error_type="upstream_invalid_status")
            raise errors.upstream_failed(f"the backend answered with status {status}")
        else:
            error_type = classify_upstream_error(status, body)  # context_overflow or upstream_error
            usage = Usage(0, 0, 0, estimated=False)
        cost = self._cost(usage)
        # Recorded before the answer goes out: whatever happens to the client, the call is in the ledger.
        self._submit(status, usage, cost=cost, finish_reason=finish_reason, error_type=error_type)
        out_headers = _relayed_headers(headers)
        out_headers.append((b"content-length", str(len(body)).encode()))
        out_headers.append((b"x-finops-request-id", self.request_id.encode()))
        out_headers.append((b"x-finops-cost-usd", nusd_to_usd_string(cost.cost_nusd).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": body})

    # -- streamed ---------------------------------------------------------------------------------
    async def _relay_stream(
        self, connection: Connection, headers: list[tuple[bytes, bytes]], send: Send, receive: Receive
    ) -> None:
        tracker = StreamTracker(strip_usage=not self.request.wants_stream_usage)
        out_headers = _relayed_headers(headers)
        out_headers.append((b"x-finops-request-id", self.request_id.encode()))
        await send({"type": "http.response.start", "status": 200, "headers": out_headers})
        # The server tells us the client left only through receive(). When it does, close the upstream
        # connection at once (vLLM aborts the generation), even in the middle of a long prefill.
        watcher = asyncio.ensure_future(receive())
        relaying = [True]
        client_gone = [False]

        def on_client_event(_: asyncio.Future[Message]) -> None:
            if relaying[0]:
                client_gone[0] = True
                connection.close()

        watcher.add_done_callback(on_client_event)
        disconnected = False
        failure: tuple[int, str, ProxyError] | None = None
        try:
            async for chunk in connection.chunks(self.handler.read_timeout_s):
                relay = tracker.feed(chunk, time.perf_counter())
                if client_gone[0]:
                    break
                if relay:
                    await send({"type": "http.response.body", "body": relay, "more_body": True})
            else:
                tail = tracker.flush()
                if tail:
                    await send({"type": "http.response.body", "body": tail, "more_body": True})
        except UpstreamTimeout:
            error = errors.upstream_timeout(self.handler.read_timeout_s)
            failure = (504, "upstream_timeout", error)
        except UpstreamError as exc:
            if not client_gone[0]:
                error = errors.upstream_failed(f"the stream broke off ({exc})")
                failure = (502, "upstream_disconnected", error)
        except Exception:
            # A bug of ours mid-relay: the call must still be recorded and the upstream closed.
            log.exception("relaying a stream failed")
            failure = (502, "proxy_error", errors.upstream_failed("the proxy failed while relaying"))
        finally:
            relaying[0] = False
            if not watcher.done():
                watcher.cancel()
        disconnected = client_gone[0]
        if disconnected:
            failure = None
        ended = time.perf_counter()
        if disconnected or failure is not None:
            connection.close()  # closing the upstream connection makes vLLM abort the generation
        else:
            connection.finish()
        try:
            if failure is not None and not disconnected:
                # Headers are gone already; tell an OpenAI client the way vLLM does, with an error event.
                event = b"data: " + failure[2].body() + b"\n\n"
                await send({"type": "http.response.body", "body": event, "more_body": False})
            elif not disconnected:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:
            log.exception("could not end the stream to the client")
        if tracker.model:
            self.served_model = tracker.model
        usage = usage_from(tracker.usage)
        ttft_ms = (tracker.first_token_at - self.started) * 1000 if tracker.first_token_at else None
        if disconnected:
            status, error_type = STATUS_CLIENT_CLOSED, "client_disconnected"
        elif failure is not None:
            status, error_type = failure[0], failure[1]
        elif tracker.error_event:
            status, error_type = 200, "upstream_stream_error"
        else:
            status, error_type = 200, None
        self._submit_stream(status, usage, tracker, ttft_ms, ended, error_type, disconnected)

    def _submit_stream(
        self,
        status: int,
        usage: Usage | None,
        tracker: StreamTracker,
        ttft_ms: float | None,
        ended: float,
        error_type: str | None,
        disconnected: bool,
    ) -> None:
        def itl_ms(completion_tokens: int) -> float | None:
            first, last = tracker.first_token_at, tracker.last_token_at
            if first is None or last is None or completion_tokens < 2:
                return None
            return (last - first) * 1000 / (completion_tokens - 1)

        def finish() -> UsageRecord:
            # No usage from the backend: count what was relayed, on the writer's thread.
            counted = usage if usage is not None else self._estimate(tracker.generated_text())
            return self._record(
                status,
                counted,
                self._cost(counted),
                ttft_ms=ttft_ms,
                itl_ms=itl_ms(counted.completion_tokens),
                ended=ended,
                finish_reason=tracker.finish_reason,
                error_type=error_type,
                disconnected=disconnected,
            )

        self._defer(
            finish,
            status,
            ttft_ms=ttft_ms,
            ended=ended,
            finish_reason=tracker.finish_reason,
            error_type=error_type,
            disconnected=disconnected,
        )

    # -- records ----------------------------------------------------------------------------------
    def _estimate(self, generated: str) -> Usage:
        prompt = estimate_prompt_tokens(self.request)
        completion = 0 if self.request.endpoint == EMBEDDINGS else count_text(generated)
        return Usage(prompt, completion, 0, estimated=True)

    def _cost(self, usage: Usage) -> CallCost:
        prices = self.state.prices
        model = self.served_model if self.served_model in prices else self.request.model
        return prices.cost(
            model,
            datetime.fromtimestamp(self.started_wall, UTC),
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
        )

    def _prompt_parts(self, prompt_tokens: int) -> tuple[int | None, int | None, int | None, int | None]:
        """How a chat prompt divides (tiktoken), or four Nones for other calls."""
        messages = self.request.payload.get("messages")
        if self.request.endpoint != CHAT or not isinstance(messages, list) or prompt_tokens <= 0:
            return (None, None, None, None)
        parts = prompt_parts(messages, prompt_tokens)
        return (parts.system, parts.history, parts.context, parts.user)

    def _submit(
        self,
        status: int,
        usage: Usage,
        *,
        cost: CallCost | None = None,
        ttft_ms: float | None = None,
        itl_ms: float | None = None,
        ended: float | None = None,
        finish_reason: str | None = None,
        error_type: str | None = None,
        disconnected: bool = False,
    ) -> None:
        """Hand the call to the ledger writer; the record itself is built on its thread, off the loop."""
        ended = ended if ended is not None else time.perf_counter()

        def finish() -> UsageRecord:
            return self._record(
                status,
                usage,
                cost or self._cost(usage),
                ttft_ms=ttft_ms,
                itl_ms=itl_ms,
                ended=ended,
                finish_reason=finish_reason,
                error_type=error_type,
                disconnected=disconnected,
            )

        self._defer(
            finish,
            status,
            ttft_ms=ttft_ms,
            ended=ended,
            finish_reason=finish_reason,
            error_type=error_type,
            disconnected=disconnected,
        )

    def _defer(
        self,
        finish: Callable[[], UsageRecord],
        status: int,
        *,
        ttft_ms: float | None,
        ended: float,
        finish_reason: str | None,
        error_type: str | None,
        disconnected: bool,
    ) -> None:
        def fallback() -> UsageRecord:
            # Counting or pricing failed (a bug): keep the row, with what is certain.
            return self._record(
                status,
                Usage(0, 0, 0, True),
                UNPRICED,
                ttft_ms=ttft_ms,
                itl_ms=None,
                ended=ended,
                finish_reason=finish_reason,
                error_type=error_type,
                disconnected=disconnected,
                with_parts=False,
            )

        self.state.writer.submit(self.state.limits.counted(_safe(finish, fallback), self.backend))

    def _record(
        self,
        status: int,
        usage: Usage,
        cost: CallCost,
        *,
        ttft_ms: float | None,
        itl_ms: float | None,
        ended: float | None,
        finish_reason: str | None,
        error_type: str | None,
        disconnected: bool,
        with_parts: bool = True,
    ) -> UsageRecord:
        ended = ended if ended is not None else time.perf_counter()
        latency_s = ended - self.started
        system, history, context, user = (
            self._prompt_parts(usage.prompt_tokens) if with_parts else (None, None, None, None)
        )
        started_at = datetime.fromtimestamp(self.started_wall, UTC)
        tags = self.tags
        return UsageRecord(
            request_id=self.request_id,
            trace_id=tags.trace_id or self.request_id,
            started_at=started_at,
            ended_at=started_at + timedelta(seconds=latency_s),
            team=tags.team,
            feature=tags.feature,
            model=self.served_model[:256],  # the backend's word, cut to the column's width
            requested_model=self.request.model,
            backend=self.backend.name if self.backend else None,
            stage=tags.stage,
            endpoint=self.request.endpoint,
            streamed=self.request.stream,
            status_code=status,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            tokens_estimated=usage.estimated,
            ttft_ms=ttft_ms,
            itl_ms=itl_ms,
            latency_ms=latency_s * 1000,
            prompt_cost_nusd=cost.prompt_cost_nusd,
            completion_cost_nusd=cost.completion_cost_nusd,
            cost_nusd=cost.cost_nusd,
            priced=cost.priced,
            api_key_id=self.key.key_id if self.key else None,
            finish_reason=finish_reason,
            error_type=error_type,
            client_disconnected=disconnected,
            body_sha256=hashlib.sha256(self.forward).hexdigest(),
            retry_of=tags.retry_of,
            prompt_system_tokens=system,
            prompt_history_tokens=history,
            prompt_context_tokens=context,
            prompt_user_tokens=user,
        )


def _safe(make: Callable[[], UsageRecord], fallback: Callable[[], UsageRecord]) -> Callable[[], UsageRecord]:
    """A deferred record that never raises: a counting failure must not lose the row."""

    def run() -> UsageRecord:
        try:
            return make()
        except Exception:
            log.exception("token counting failed; recording the call with zero estimated tokens")
            return fallback()

    return run


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _relayed_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower(), value) for name, value in headers if name.lower() not in _DROP_DOWNSTREAM]
