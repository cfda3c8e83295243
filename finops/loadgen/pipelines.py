"""LLM pipelines as pure generators of calls: no I/O, every choice drawn from a seeded ``random.Random``.

A pipeline is one user query. It yields a ``CallSpec`` for each call it makes and is sent back that
call's ``Reply``, so a later call can use an earlier answer (a conversation's history, a tool result's
summary fed back to the agent). The runner does the sending; ``drive`` does it with any function that
answers a spec, which is how the builders are tested without a server.

Stages (``X-FinOps-Stage``) use finops's vocabulary: ``generation``, ``retrieval``, ``rerank``,
``tool``, ``safety``. Retrieved text is sent as ``{"role": "user", "name": "context", ...}`` just before
the user's own last message, which is how finops tells context from the user's query.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from finops.loadgen import text

Endpoint = Literal["chat", "embeddings"]
RetryKind = Literal["hash", "header", "failure"]
Message = dict[str, Any]

PATHS: Mapping[Endpoint, str] = {"chat": "/v1/chat/completions", "embeddings": "/v1/embeddings"}
RETRY_OF_HEADER = "X-FinOps-Retry-Of"
# The stand-in (``finops sim``) answers a call carrying this header with that status; a real vLLM
# ignores it, so an injected failure against real backends is simply one more successful call.
SIM_ERROR_HEADER = "X-Sim-Error-Status"
INJECTED_ERROR_STATUS = "503"


@dataclass(frozen=True, slots=True)
class CallSpec:
    """One call a pipeline wants made. The query's own headers (trace, tags) are added by ``call_headers``."""

    endpoint: Endpoint
    stage: str
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    # Why this call repeats the previous one: an identical body ("hash"), the X-FinOps-Retry-Of header
    # ("header"), or the retry of an injected failure ("failure", which also carries the header).
    retry: RetryKind | None = None
    # A call that is meant to fail (X-Sim-Error-Status); its failure does not end the query.
    injected_failure: bool = False

    @property
    def path(self) -> str:
        return PATHS[self.endpoint]

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream", False))

    @property
    def content(self) -> bytes:
        """The request body's bytes: the same body always gives the same bytes (and body hash)."""
        return orjson.dumps(self.body)

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a pipeline learns from a call: its status, the proxy's request id and the generated text.

    ``status`` 0 means no HTTP response at all (connection refused, timeout); ``error`` is set for a
    transport failure or a stream that broke off after its 200.
    """

    status: int
    request_id: str | None
    text: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


Pipeline = Generator[CallSpec, Reply, None]


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """Everything decided about one user query before its first call (see ``config.plan_query``)."""

    index: int
    trace_id: str
    team: str
    feature: str
    model: str
    pipeline: str
    seed: str
    stream_share: float = 0.5
    retry_rate: float = 0.0
    failure_rate: float = 0.0


def call_headers(plan: QueryPlan, spec: CallSpec, api_key: str | None = None) -> dict[str, str]:
    """The HTTP headers of one call: the query's trace and tags, the call's stage, then its own extras."""
    headers = {
        "X-FinOps-Trace-Id": plan.trace_id,
        "X-FinOps-Stage": spec.stage,
        "X-FinOps-Team": plan.team,
        "X-FinOps-Feature": plan.feature,
    }
    headers.update(spec.headers)
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


@dataclass(slots=True)
class Context:
    """What a pipeline builder draws from: the query's generator, its model and its streaming share."""

    rng: random.Random
    model: str
    stream_share: float = 0.5

    def chat(
        self,
        stage: str,
        messages: list[Message],
        max_tokens: int,
        *,
        stream: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> CallSpec:
        body: dict[str, Any] = {"model": self.model, "messages": list(messages), "max_tokens": max_tokens}
        if extra:
            body.update(extra)
        if stream:
            body["stream"] = True
            # Half the streaming clients ask for the usage chunk, as the OpenAI SDK lets them.
            if self.rng.random() < 0.5:
                body["stream_options"] = {"include_usage": True}
        return CallSpec("chat", stage, body)

    def generation(
        self, messages: list[Message], *, extra: Mapping[str, Any] | None = None, may_stream: bool = True
    ) -> CallSpec:
        # Always draw, so that the number of draws (and every later choice) does not depend on may_stream.
        streams = self.rng.random() < self.stream_share
        return self.chat(
            "generation",
            messages,
            self.rng.choice((256, 384, 512)),
            stream=streams and may_stream,
            extra=extra,
        )

    def embeddings(self, stage: str, inputs: str | list[str]) -> CallSpec:
        return CallSpec("embeddings", stage, {"model": self.model, "input": inputs})


def _system(content: str) -> Message:
    return {"role": "system", "content": content}


def _user(content: str) -> Message:
    return {"role": "user", "content": content}


def context_message(documents: list[str]) -> Message:
    return {"role": "user", "name": "context", "content": "\n\n".join(documents)}


# -- pipelines ------------------------------------------------------------------------------------


def chat(ctx: Context) -> Pipeline:
    """One generation call: a system prompt and the user's question."""
    yield ctx.generation([_system(text.system_prompt(ctx.rng)), _user(text.question(ctx.rng))])


RERANK_PROMPT = (
    "You rank passages by how well they answer a question. Answer with the passage numbers, best first, "
    "separated by commas, and nothing else."
)


def rag(ctx: Context, rerank_share: float = 0.5) -> Pipeline:
    """Embed the question (retrieval), maybe rerank the passages (chat), then answer with them as context."""
    rng = ctx.rng
    system = text.system_prompt(rng) + " Answer only from the provided context, and cite the passage."
    asked = text.question(rng)
    yield ctx.embeddings("retrieval", asked)
    documents = [text.document(rng) for _ in range(rng.randint(2, 4))]
    if rng.random() < rerank_share:
        numbered = "\n\n".join(f"[{number}] {doc}" for number, doc in enumerate(documents, 1))
        ranking = yield ctx.chat(
            "rerank",
            [_system(RERANK_PROMPT), _user(f"Question: {asked}\n\nPassages:\n{numbered}")],
            16,
        )
        # The ranking is read from the answer: the same answer keeps the same passages, in the same order.
        order = sorted(
            range(len(documents)),
            key=lambda i: hashlib.sha256(f"{ranking.text}\x00{i}".encode()).digest(),
        )
        documents = [documents[i] for i in order[: max(1, (len(documents) + 1) // 2)]]
    yield ctx.generation([_system(system), context_message(documents), _user(asked)])


def multiturn(ctx: Context, min_turns: int = 2, max_turns: int = 5) -> Pipeline:
    """A conversation: each turn re-sends the whole history with the new user message."""
    rng = ctx.rng
    messages: list[Message] = [_system(text.system_prompt(rng))]
    for turn in range(rng.randint(min_turns, max_turns)):
        messages.append(_user(text.question(rng, follow_up=turn > 0)))
        answer = yield ctx.generation(messages)
        messages.append({"role": "assistant", "content": answer.text})


def _tool(name: str, description: str, argument: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {argument: {"type": "string"}},
                "required": [argument],
            },
        },
    }


TOOLS: tuple[dict[str, Any], ...] = (
    _tool("search_knowledge_base", "Search internal documentation for passages.", "query"),
    _tool("lookup_order", "Fetch an order and its shipment status.", "order_id"),
    _tool("run_sql", "Run a read-only SQL query on the analytics warehouse.", "sql"),
    _tool("fetch_ticket", "Fetch a support ticket with its comments.", "ticket_id"),
)
AGENT_PROMPT = (
    " You can call tools. Call a tool when you need facts you do not have; when you have enough, "
    "answer the user directly."
)


def _tool_arguments(rng: random.Random, tool: dict[str, Any], asked: str) -> str:
    name = tool["function"]["name"]
    if name == "search_knowledge_base":
        return orjson.dumps({"query": asked}).decode()
    if name == "run_sql":
        table = rng.choice(text.NOUNS)
        return orjson.dumps({"sql": f"SELECT * FROM {table}s WHERE status = 'open' LIMIT 20"}).decode()
    key = next(iter(tool["function"]["parameters"]["properties"]))
    return orjson.dumps({key: f"{rng.randrange(10**6, 10**7)}"}).decode()


def agent(ctx: Context, min_steps: int = 1, max_steps: int = 3) -> Pipeline:
    """A tool-using agent: decide (generation), run 1-2 tools whose raw output a ``tool`` call summarises,
    feed the summaries back as ``tool`` messages, repeat, then answer."""
    rng = ctx.rng
    asked = text.question(rng)
    tools = rng.sample(TOOLS, rng.randint(2, len(TOOLS)))
    extra = {"tools": tools, "tool_choice": "auto"}
    messages: list[Message] = [_system(text.system_prompt(rng) + AGENT_PROMPT), _user(asked)]
    for _ in range(rng.randint(min_steps, max_steps)):
        decision = yield ctx.generation(messages, extra=extra, may_stream=False)
        calls: list[dict[str, Any]] = []
        for tool in rng.sample(tools, rng.randint(1, 2)):
            calls.append(
                {
                    "id": f"call_{rng.getrandbits(64):016x}",
                    "type": "function",
                    "function": {
                        "name": tool["function"]["name"],
                        "arguments": _tool_arguments(rng, tool, asked),
                    },
                }
            )
        messages.append({"role": "assistant", "content": decision.text or None, "tool_calls": calls})
        for call in calls:
            name = call["function"]["name"]
            raw = text.document(rng, 80, 300)
            summary = yield ctx.chat(
                "tool",
                [
                    _system(f"Summarise the output of the tool {name} for an agent, keeping every figure."),
                    _user(raw),
                ],
                rng.choice((64, 128)),
            )
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": summary.text or raw})
    yield ctx.generation(messages, extra=extra)


SAFETY_INPUT_PROMPT = (
    "Classify the user's message as SAFE or UNSAFE for a workplace assistant. Answer with one word."
)
SAFETY_OUTPUT_PROMPT = (
    "Classify the assistant's answer as SAFE or UNSAFE to show the user. Answer with one word."
)


def safety(ctx: Context) -> Pipeline:
    """A short safety classification of the input, the generation, then one of the output."""
    rng = ctx.rng
    asked = text.question(rng)
    system = text.system_prompt(rng)
    yield ctx.chat("safety", [_system(SAFETY_INPUT_PROMPT), _user(asked)], 2)
    answer = yield ctx.generation([_system(system), _user(asked)])
    yield ctx.chat("safety", [_system(SAFETY_OUTPUT_PROMPT), _user(answer.text or "(no answer)")], 2)


Builder = Callable[[Context], Pipeline]
PIPELINES: Mapping[str, Builder] = {
    "chat": chat,
    "rag": rag,
    "multiturn": multiturn,
    "agent": agent,
    "safety": safety,
}


# -- injected retries and failures ----------------------------------------------------------------


def retry_of(spec: CallSpec, request_id: str | None, kind: RetryKind) -> CallSpec:
    """``spec`` sent again, with the same body; by header when the earlier call's request id is known."""
    headers = tuple((k, v) for k, v in spec.headers if k.lower() != SIM_ERROR_HEADER.lower())
    if request_id is not None and kind != "hash":
        headers += ((RETRY_OF_HEADER, request_id),)
    return dataclasses.replace(spec, headers=headers, retry=kind, injected_failure=False)


def with_faults(inner: Pipeline, rng: random.Random, retry_rate: float, failure_rate: float) -> Pipeline:
    """``inner`` with retries injected: after a successful call, with probability ``retry_rate``, the same
    call again (half identical bodies, half ``X-FinOps-Retry-Of``); before a call, with probability
    ``failure_rate``, the same call made to fail with a 503 from the stand-in, then retried by header.

    ``inner`` is sent the last successful answer of each call, so it never sees the repeats.
    """
    try:
        spec = next(inner)
    except StopIteration:
        return
    while True:
        # Every draw is made whatever the answers, so the sequence of choices depends only on the seed.
        fail_draw, retry_draw, kind_draw = rng.random(), rng.random(), rng.random()
        if fail_draw < failure_rate:
            failing = dataclasses.replace(
                spec,
                headers=(*spec.headers, (SIM_ERROR_HEADER, INJECTED_ERROR_STATUS)),
                injected_failure=True,
            )
            failed = yield failing
            reply = yield retry_of(spec, failed.request_id, "failure")
        else:
            reply = yield spec
            if reply.ok and retry_draw < retry_rate:
                kind: RetryKind = "hash" if kind_draw < 0.5 else "header"
                again = yield retry_of(spec, reply.request_id, kind)
                if again.ok:
                    reply = again
        try:
            spec = inner.send(reply)
        except StopIteration:
            return


def build_pipeline(plan: QueryPlan) -> Pipeline:
    """The calls of one planned query, faults included; the same plan always builds the same calls."""
    rng = random.Random(plan.seed)
    # The fault draws have their own generator, so turning retries on does not change the messages.
    faults = random.Random(plan.seed + "/faults")
    inner = PIPELINES[plan.pipeline](Context(rng, plan.model, plan.stream_share))
    return with_faults(inner, faults, plan.retry_rate, plan.failure_rate)


def abandons(spec: CallSpec, reply: Reply) -> bool:
    """A query ends early when a call fails that was not meant to (a client would give up or raise)."""
    return not reply.ok and not spec.injected_failure


def drive(pipeline: Pipeline, answer: Callable[[CallSpec], Reply]) -> list[tuple[CallSpec, Reply]]:
    """Run a pipeline synchronously, each call answered by ``answer``: the runner's loop without I/O."""
    made: list[tuple[CallSpec, Reply]] = []
    try:
        spec = next(pipeline)
        while True:
            reply = answer(spec)
            made.append((spec, reply))
            if abandons(spec, reply):
                pipeline.close()
                break
            spec = pipeline.send(reply)
    except StopIteration:
        pass
    return made
