"""The vLLM stand-in as a plain ASGI application: ``create_app(settings)``.

It answers the OpenAI endpoints vLLM serves, with vLLM's shapes, streaming and usage rules, a
``/metrics`` page with vLLM's metric names, and knobs for latency and faults (settings for every
request, ``X-Sim-*`` headers for one).
"""

from __future__ import annotations

import base64
import dataclasses
import random
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from finops.sim import responses
from finops.sim.asgi import (
    JSON_CONTENT_TYPE,
    ClientDisconnected,
    Connection,
    Receive,
    Scope,
    Send,
    read_body,
    send_response,
    serve_lifespan,
)
from finops.sim.generation import embedding_vector, output_words
from finops.sim.knobs import KnobError, Overrides, parse_overrides
from finops.sim.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from finops.sim.metrics import ModelStats, SimMetrics
from finops.sim.parsing import (
    GenerationRequest,
    SimRequestError,
    parse_chat,
    parse_completion,
    parse_embedding,
    parse_json_object,
)
from finops.sim.settings import SimSettings
from finops.tokens.counting import encoding

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything decided about one generation before its first byte is sent."""

    model: str
    prompt_tokens: int
    cached_tokens: int
    words: list[str]
    finish_reason: str
    ttft_s: float
    itl_s: float
    report_usage: bool
    error_status: int | None
    drop_after: int | None
    malformed_after: int | None

    def usage(self, completion_tokens: int) -> responses.JsonObject:
        return responses.usage(self.prompt_tokens, completion_tokens, self.cached_tokens)

    def stream_usage(self, completion_tokens: int) -> responses.JsonObject:
        return responses.stream_usage(self.prompt_tokens, completion_tokens, self.cached_tokens)


class SimApp:
    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.metrics = SimMetrics(settings.models, settings.max_model_len)
        # One seeded stream for the fault rates: the same request order faults the same requests.
        self._fault_rng = random.Random(settings.seed)
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): self._chat_completions,
            ("POST", "/v1/completions"): self._completions,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("GET", "/v1/models"): self._models,
            ("GET", "/health"): self._health,
            ("GET", "/metrics"): self._metrics,
        }
        self._paths = {path for _, path in self._routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self._routes.get((scope["method"], scope["path"]))
            if handler is None:
                # FastAPI's answers, which is what vLLM gives for these.
                if scope["path"] in self._paths:
                    await send_response(send, 405, b'{"detail":"Method Not Allowed"}')
                else:
                    await send_response(send, 404, b'{"detail":"Not Found"}')
                return
            try:
                await handler(scope, receive, send)
            except SimRequestError as exc:
                body = responses.error_body(exc.message, exc.status, exc.err_type, exc.param)
                await send_response(send, exc.status, body)
            except ClientDisconnected:
                pass
        elif scope["type"] == "lifespan":
            await serve_lifespan(receive, send)

    # -- simple endpoints -------------------------------------------------------------------------

    async def _health(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, b"", content_type=None)

    async def _models(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = responses.model_list(self.settings.models, int(time.time()), self.settings.max_model_len)
        await send_response(send, 200, orjson.dumps(body))

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, self.metrics.render(), content_type=METRICS_CONTENT_TYPE)

    # -- generation -------------------------------------------------------------------------------

    async def _chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        overrides = _overrides(scope)
        request = parse_chat(parse_json_object(body), self._settings_for(overrides))
        await self._generate(Connection(receive, send), request, self._plan(request, body, overrides), CHAT)

    async def _completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        overrides = _overrides(scope)
        request = parse_completion(parse_json_object(body), self._settings_for(overrides))
        await self._generate(
            Connection(receive, send), request, self._plan(request, body, overrides), COMPLETION
        )

    def _settings_for(self, overrides: Overrides) -> SimSettings:
        if overrides.max_model_len is None:
            return self.settings
        return dataclasses.replace(self.settings, max_model_len=overrides.max_model_len)

    def _hit(self, rate: float) -> bool:
        return rate > 0.0 and self._fault_rng.random() < rate

    def _plan(self, request: GenerationRequest, body: bytes, overrides: Overrides) -> Plan:
        settings = self.settings
        natural_tokens = overrides.output_tokens or settings.output_tokens
        # vLLM stops at max_tokens, and never beyond the room left in the context window.
        limit = settings.max_model_len - request.prompt_tokens
        if request.max_tokens is not None:
            limit = min(limit, request.max_tokens)
        count = min(natural_tokens, limit)
        error_status = overrides.error_status
        if error_status is None and self._hit(settings.error_rate):
            error_status = settings.error_status
        drop_after = overrides.drop_after
        if drop_after is None and self._hit(settings.drop_rate):
            drop_after = self._fault_rng.randrange(count) if request.stream else 0
        malformed_after = overrides.malformed_after
        if malformed_after is None and request.stream and self._hit(settings.malformed_rate):
            malformed_after = count // 2
        ttft_ms = settings.ttft_ms if overrides.ttft_ms is None else overrides.ttft_ms
        itl_ms = settings.itl_ms if overrides.itl_ms is None else overrides.itl_ms
        return Plan(
            model=request.model,
            prompt_tokens=request.prompt_tokens,
            cached_tokens=min(overrides.cached_tokens, request.prompt_tokens),
            words=output_words(body, settings.seed, count),
            finish_reason="length" if count < natural_tokens else "stop",
            ttft_s=ttft_ms / 1000.0,
            itl_s=itl_ms / 1000.0,
            report_usage=settings.usage and not overrides.no_usage,
            error_status=error_status,
            drop_after=drop_after,
            malformed_after=malformed_after,
        )

    async def _generate(self, conn: Connection, request: GenerationRequest, plan: Plan, kind: Kind) -> None:
        if plan.error_status is not None:
            raise SimRequestError(plan.error_status, f"Simulated error (HTTP {plan.error_status}).")
        stats = self.metrics.by_model[plan.model]
        stats.prompt_tokens += plan.prompt_tokens
        stats.requests_running += 1
        stats.kv_tokens += plan.prompt_tokens
        stats.prefix_cache_queries += plan.prompt_tokens
        stats.prefix_cache_hits += plan.cached_tokens
        run = _Run(stats)
        response_id = responses.request_id(kind.id_prefix)
        created = int(time.time())
        try:
            if request.stream:
                chunks = kind.chunks(response_id, created, plan.model)
                await self._stream(conn, request, plan, chunks, run)
            else:
                await self._respond(conn, plan, kind, response_id, created, run)
        finally:
            conn.close()
            stats.requests_running -= 1
            stats.kv_tokens -= plan.prompt_tokens + run.generated_tokens
            stats.successes[plan.finish_reason if run.finished else "abort"] += 1

    async def _respond(
        self, conn: Connection, plan: Plan, kind: Kind, response_id: str, created: int, run: _Run
    ) -> None:
        if plan.drop_after == 0:
            await conn.drop()
            return
        first_token_at_s = run.started_s + plan.ttft_s
        if plan.ttft_s > 0 and not await conn.sleep_until(first_token_at_s):
            return
        run.first_token()
        count = len(plan.words)
        if (
            plan.itl_s > 0
            and count > 1
            and not await conn.sleep_until(first_token_at_s + plan.itl_s * (count - 1))
        ):
            return
        run.generated(count)
        run.finished = True
        usage_info = plan.usage(count) if plan.report_usage else None
        payload = kind.body(
            response_id, created, plan.model, "".join(plan.words), plan.finish_reason, usage_info
        )
        body = b"{not json" if plan.malformed_after is not None else orjson.dumps(payload)
        await conn.start_response(200, len(body), JSON_CONTENT_TYPE)
        if plan.drop_after is not None:
            # The headers promise the whole body; only its start arrives before the connection closes.
            await conn.write(body[: plan.drop_after])
            await conn.drop()
            return
        await conn.end(body)

    async def _stream(
        self,
        conn: Connection,
        request: GenerationRequest,
        plan: Plan,
        chunks: responses.StreamChunks,
        run: _Run,
    ) -> None:
        continuous = plan.report_usage and request.continuous_usage
        await conn.start_stream()
        # Deadlines are absolute so that slow writes do not stretch the simulated token rate.
        deadline_s = run.started_s + plan.ttft_s
        for index, word in enumerate(plan.words):
            if index == plan.drop_after:
                await conn.drop()
                return
            if index == plan.malformed_after:
                await conn.write(responses.SSE_MALFORMED)
            if index == 0:
                if plan.ttft_s > 0 and not await conn.sleep_until(deadline_s):
                    return
                if chunks.has_role_chunk:
                    # vLLM sends the role with the first token, once the prompt is processed.
                    await conn.write(chunks.role(plan.stream_usage(0) if continuous else None))
                run.first_token()
            elif plan.itl_s > 0:
                deadline_s += plan.itl_s
                if not await conn.sleep_until(deadline_s):
                    return
            run.generated(1)
            await conn.write(chunks.token(word, plan.stream_usage(index + 1) if continuous else None))
        count = len(plan.words)
        if plan.drop_after is not None and plan.drop_after >= count:
            await conn.drop()
            return
        if plan.malformed_after is not None and plan.malformed_after >= count:
            await conn.write(responses.SSE_MALFORMED)
        run.finished = True
        await conn.write(chunks.finish(plan.finish_reason, plan.stream_usage(count) if continuous else None))
        if plan.report_usage and request.include_usage:
            await conn.write(chunks.usage_only(plan.stream_usage(count)))
        await conn.end(responses.SSE_DONE)

    # -- embeddings -------------------------------------------------------------------------------

    async def _embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        overrides = _overrides(scope)
        request = parse_embedding(parse_json_object(body), self.settings)
        settings = self.settings
        error_status = overrides.error_status
        if error_status is None and self._hit(settings.error_rate):
            error_status = settings.error_status
        if error_status is not None:
            raise SimRequestError(error_status, f"Simulated error (HTTP {error_status}).")
        drop = overrides.drop_after is not None or self._hit(settings.drop_rate)
        stats = self.metrics.by_model[request.model]
        stats.prompt_tokens += request.prompt_tokens
        stats.requests_running += 1
        conn = Connection(receive, send)
        run = _Run(stats)
        try:
            if drop:
                await conn.drop()
                return
            ttft_ms = settings.ttft_ms if overrides.ttft_ms is None else overrides.ttft_ms
            if ttft_ms > 0 and not await conn.sleep_until(run.started_s + ttft_ms / 1000.0):
                return
            run.finished = True
            vectors = [embedding_vector(item, settings.seed, request.dimensions) for item in request.items]
            encoded: list[object] = (
                [_base64_floats(vector) for vector in vectors] if request.base64 else list(vectors)
            )
            report_usage = settings.usage and not overrides.no_usage
            response_id = responses.request_id("embd")
            payload = responses.embeddings(
                response_id, int(time.time()), request.model, encoded, request.prompt_tokens, report_usage
            )
            await send_response(send, 200, orjson.dumps(payload))
        finally:
            conn.close()
            stats.requests_running -= 1
            stats.successes["stop" if run.finished else "abort"] += 1


@dataclass(frozen=True, slots=True)
class Kind:
    """What differs between chat and text completions."""

    id_prefix: str
    chunks: type[responses.StreamChunks]
    body: Callable[[str, int, str, str, str, responses.JsonObject | None], responses.JsonObject]


CHAT = Kind("chatcmpl", responses.ChatChunks, responses.chat_completion)
COMPLETION = Kind("cmpl", responses.CompletionChunks, responses.text_completion)


class _Run:
    """Progress of one request, for the metrics."""

    __slots__ = ("_stats", "finished", "generated_tokens", "started_s")

    def __init__(self, stats: ModelStats) -> None:
        self._stats = stats
        self.started_s = time.perf_counter()
        self.generated_tokens = 0
        self.finished = False

    def first_token(self) -> None:
        self._stats.observe_ttft(time.perf_counter() - self.started_s)

    def generated(self, tokens: int) -> None:
        self.generated_tokens += tokens
        self._stats.generation_tokens += tokens
        self._stats.kv_tokens += tokens


def _overrides(scope: Scope) -> Overrides:
    try:
        return parse_overrides(scope["headers"])
    except KnobError as exc:
        raise SimRequestError(400, str(exc), param=None) from None


def _base64_floats(vector: list[float]) -> str:
    # vLLM's base64 encoding: the little-endian float32 bytes of the vector.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def create_app(settings: SimSettings) -> ASGIApp:
    """The stand-in's ASGI application for ``settings``."""
    # Load the tokenizer now, not on the first request, so that request's latency is like the rest.
    encoding()
    return SimApp(settings)
