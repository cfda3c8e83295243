"""The load generator's I/O: sends the pipelines' calls through the proxy with ``httpx.AsyncClient``.

Queries start on a fixed schedule (``rps``), at most ``concurrency`` at a time; each runs its pipeline's
calls one after the other, as a real application would. A stop (Ctrl-C, SIGTERM, the duration, the
query count) issues no new query and waits up to ``grace_s`` for those in flight; a second signal
cancels them at once. Every call is recorded, whatever its outcome: errors are counted, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from finops.loadgen.config import LoadConfig, plan_query
from finops.loadgen.pipelines import (
    RETRY_OF_HEADER,
    CallSpec,
    QueryPlan,
    Reply,
    abandons,
    build_pipeline,
    call_headers,
)

REQUEST_ID_HEADER = "x-finops-request-id"
Log = Callable[[str], None]


class LoadgenError(RuntimeError):
    """The run could not start (the proxy never answered, it lists no model)."""


@dataclass(slots=True)
class CallRecord:
    """One call as the generator saw it (a line of the ``--json`` file)."""

    request_id: str | None
    trace_id: str
    query: int
    pipeline: str
    team: str
    feature: str
    model: str
    stage: str
    endpoint: str
    streamed: bool
    started_at: str
    status: int = 0
    latency_ms: float = 0.0
    retry: str | None = None
    retry_of: str | None = None
    injected_failure: bool = False
    error: str | None = None


@dataclass(slots=True)
class LoadReport:
    run_id: str
    proxy_url: str
    models: list[str] = field(default_factory=list)
    started_at: str = ""
    elapsed_s: float = 0.0
    queries_started: int = 0
    queries_completed: int = 0
    queries_abandoned: int = 0
    queries_cancelled: int = 0
    calls: list[CallRecord] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        errors: Counter[str] = Counter()
        for call in self.calls:
            key = _error_key(call)
            if key is not None:
                errors[key] += 1
        return {
            "run_id": self.run_id,
            "elapsed_s": round(self.elapsed_s, 3),
            "queries": {
                "started": self.queries_started,
                "completed": self.queries_completed,
                "abandoned": self.queries_abandoned,
                "cancelled": self.queries_cancelled,
            },
            "calls": len(self.calls),
            "streamed": sum(call.streamed for call in self.calls),
            "by_stage": dict(Counter(call.stage for call in self.calls).most_common()),
            "by_status": {str(k): v for k, v in sorted(Counter(c.status for c in self.calls).items())},
            "errors": dict(errors.most_common()),
            "injected_failures": sum(call.injected_failure for call in self.calls),
            "retries": dict(Counter(call.retry for call in self.calls if call.retry).most_common()),
        }

    def format_summary(self) -> str:
        s = self.summary()
        q = s["queries"]
        rate = q["started"] / self.elapsed_s if self.elapsed_s > 0 else 0.0
        lines = [
            f"loadgen {self.run_id}: {q['started']} queries ({q['completed']} completed, "
            f"{q['abandoned']} abandoned after an error, {q['cancelled']} cancelled) "
            f"in {self.elapsed_s:.1f} s ({rate:.1f} queries/s); {s['calls']} calls, {s['streamed']} streamed",
            "  calls by stage:  " + _pairs(s["by_stage"]),
            "  calls by status: " + _pairs(s["by_status"]),
        ]
        if s["errors"]:
            injected = f" ({s['injected_failures']} injected)" if s["injected_failures"] else ""
            lines.append("  errors:          " + _pairs(s["errors"]) + injected)
        if s["retries"]:
            lines.append("  retries:         " + _pairs(s["retries"]))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "proxy_url": self.proxy_url,
            "models": self.models,
            "started_at": self.started_at,
            "summary": self.summary(),
            "calls": [asdict(call) for call in self.calls],
        }

    def write_json(self, path: str | Path) -> None:
        Path(path).write_bytes(orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2))


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items()) or "none"


def _error_key(call: CallRecord) -> str | None:
    if call.error == "cancelled":
        return "cancelled"
    if call.status == 0:
        return "no response"
    if call.status != 200:
        return str(call.status)
    return "broken stream" if call.error else None


# -- one call -------------------------------------------------------------------------------------


def _error_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode(errors="replace")
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:200]
    return body[:200].decode(errors="replace")


def _answer_text(data: Any) -> str:
    """The generated text of a non-streamed chat answer ("" for embeddings)."""
    if isinstance(data, dict):
        choices = data.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            message = choices[0].get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                return str(message["content"])
    return ""


async def _read_stream(response: httpx.Response) -> tuple[str, str | None]:
    """The text of an SSE chat stream, and what went wrong with it, if anything."""
    parts: list[str] = []
    error: str | None = None
    done = False
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            error = error or "malformed SSE event"
            continue
        if not isinstance(event, dict):
            continue
        if "error" in event:
            error = error or f"error event: {str(event['error'])[:200]}"
        choices = event.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                parts.append(delta["content"])
    if not done and error is None:
        error = "stream ended without [DONE]"
    return "".join(parts), error


async def send_call(
    client: httpx.AsyncClient, config: LoadConfig, plan: QueryPlan, spec: CallSpec, report: LoadReport
) -> Reply:
    headers = call_headers(plan, spec, config.api_key)
    headers["Content-Type"] = "application/json"
    record = CallRecord(
        request_id=None,
        trace_id=plan.trace_id,
        query=plan.index,
        pipeline=plan.pipeline,
        team=plan.team,
        feature=plan.feature,
        model=plan.model,
        stage=spec.stage,
        endpoint=spec.path,
        streamed=spec.stream,
        started_at=datetime.now(UTC).isoformat(),
        retry=spec.retry,
        retry_of=spec.header(RETRY_OF_HEADER),
        injected_failure=spec.injected_failure,
    )
    report.calls.append(record)
    started = time.perf_counter()
    answer = ""
    try:
        if spec.stream:
            async with client.stream("POST", spec.path, content=spec.content, headers=headers) as response:
                record.request_id = response.headers.get(REQUEST_ID_HEADER)
                record.status = response.status_code
                if response.status_code == 200:
                    try:
                        answer, record.error = await _read_stream(response)
                    except httpx.HTTPError as exc:
                        record.error = f"stream broken: {type(exc).__name__}: {exc}"[:300]
                else:
                    record.error = _error_message(await response.aread())
        else:
            response = await client.post(spec.path, content=spec.content, headers=headers)
            record.request_id = response.headers.get(REQUEST_ID_HEADER)
            record.status = response.status_code
            if response.status_code == 200:
                try:
                    answer = _answer_text(orjson.loads(response.content))
                except orjson.JSONDecodeError:
                    record.error = "answer is not JSON"
            else:
                record.error = _error_message(response.content)
    except httpx.HTTPError as exc:
        record.error = f"{type(exc).__name__}: {exc}"[:300]
    except asyncio.CancelledError:
        record.error = "cancelled"
        raise
    finally:
        record.latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
    return Reply(record.status, record.request_id, answer, record.error)


async def run_query(
    client: httpx.AsyncClient, config: LoadConfig, plan: QueryPlan, report: LoadReport
) -> None:
    pipeline = build_pipeline(plan)
    report.queries_started += 1
    try:
        spec = next(pipeline)
        while True:
            reply = await send_call(client, config, plan, spec, report)
            if abandons(spec, reply):
                pipeline.close()
                report.queries_abandoned += 1
                return
            spec = pipeline.send(reply)
    except StopIteration:
        report.queries_completed += 1
    except asyncio.CancelledError:
        report.queries_cancelled += 1
        raise


# -- the run --------------------------------------------------------------------------------------


async def _wait_event(event: asyncio.Event, timeout_s: float | None) -> bool:
    """Wait for ``event`` at most ``timeout_s``; True when it is set."""
    if event.is_set():
        return True
    if timeout_s is not None and timeout_s <= 0:
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout_s)
    return event.is_set()


async def list_models(client: httpx.AsyncClient, config: LoadConfig, stop: asyncio.Event) -> list[str]:
    """The models the proxy serves, waiting up to ``wait_s`` for it to answer."""
    deadline = time.monotonic() + config.wait_s
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    problem = ""
    while True:
        try:
            response = await client.get("/v1/models", headers=headers)
            if response.status_code == 200:
                data = orjson.loads(response.content).get("data") or []
                models = sorted(
                    {m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)}
                )
                if models:
                    return models
                problem = "it lists no model"
            else:
                problem = f"HTTP {response.status_code}: {_error_message(response.content)}"
                if response.status_code < 500:
                    break
        except (httpx.HTTPError, orjson.JSONDecodeError, AttributeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if await _wait_event(stop, min(0.25, deadline - time.monotonic())) or time.monotonic() >= deadline:
            break
    raise LoadgenError(f"GET {config.proxy_url}/v1/models failed ({problem}); give the models with --model")


async def run_load_async(
    config: LoadConfig,
    stop: asyncio.Event | None = None,
    hurry: asyncio.Event | None = None,
    log: Log | None = None,
) -> LoadReport:
    """Run until the duration, the query count or ``stop``; ``hurry`` cancels the queries still in flight."""
    stop = stop or asyncio.Event()
    hurry = hurry or asyncio.Event()
    say = log or (lambda _: None)
    report = LoadReport(config.run_id, config.proxy_url, started_at=datetime.now(UTC).isoformat())
    limits = httpx.Limits(
        max_connections=config.concurrency * 2, max_keepalive_connections=config.concurrency * 2
    )
    timeout = httpx.Timeout(config.timeout_s, connect=min(config.timeout_s, 10.0))
    async with httpx.AsyncClient(base_url=config.proxy_url, timeout=timeout, limits=limits) as client:
        models = list(config.models) or await list_models(client, config, stop)
        report.models = models
        say(
            f"loadgen {config.run_id}: {config.proxy_url}, models {', '.join(models)}, "
            f"{config.rps or 'unlimited'} queries/s, concurrency {config.concurrency}"
        )
        started = time.monotonic()
        deadline = started + config.duration_s if config.duration_s is not None else None
        in_flight: set[asyncio.Task[None]] = set()

        def remaining() -> float | None:
            return None if deadline is None else deadline - time.monotonic()

        def over() -> bool:
            left = remaining()
            return stop.is_set() or (left is not None and left <= 0)

        index = 0
        while not over() and (config.queries is None or index < config.queries):
            if config.rps > 0:
                # Starts are due on a fixed schedule, so a slow spell is caught up, as open-loop load is.
                wait_s = started + index / config.rps - time.monotonic()
                left = remaining()
                if wait_s > 0 and await _wait_event(stop, wait_s if left is None else min(wait_s, left)):
                    break
                if over():
                    break
            while len(in_flight) >= config.concurrency and not over():
                stopped = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {*in_flight, stopped}, timeout=remaining(), return_when=asyncio.FIRST_COMPLETED
                )
                stopped.cancel()
            if over():
                break
            task = asyncio.create_task(run_query(client, config, plan_query(config, models, index), report))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            index += 1

        if in_flight:
            say(f"loadgen: waiting up to {config.grace_s:g} s for {len(in_flight)} queries in flight")
            grace_end = time.monotonic() + config.grace_s
            while in_flight and not hurry.is_set() and time.monotonic() < grace_end:
                hurried = asyncio.ensure_future(hurry.wait())
                await asyncio.wait(
                    {*in_flight, hurried},
                    timeout=grace_end - time.monotonic(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                hurried.cancel()
            pending = list(in_flight)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        report.elapsed_s = time.monotonic() - started
    return report


def run_load(config: LoadConfig, log: Log | None = None) -> LoadReport:
    """``run_load_async`` in its own event loop; in the main thread, SIGINT and SIGTERM stop it gently
    (a second one cancels the queries in flight)."""

    async def main() -> LoadReport:
        stop, hurry = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []

        def on_signal(sig: signal.Signals) -> None:
            if stop.is_set():
                hurry.set()
                if log:
                    log(f"loadgen: {sig.name} again, cancelling the queries in flight")
            else:
                stop.set()
                if log:
                    log(f"loadgen: {sig.name}, no new queries")

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or no such signal here: the caller stops the run itself
        try:
            return await run_load_async(config, stop, hurry, log)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(main())


def stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
