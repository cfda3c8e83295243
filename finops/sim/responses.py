"""Response bodies in the shapes vLLM's OpenAI server produces.

Non-streaming bodies are dumped with every field, nulls included, as vLLM's pydantic models are.
Stream chunks carry only the fields vLLM sets explicitly (it dumps them with ``exclude_unset``), which
is why a chunk has no ``usage`` key unless usage is being reported in it. The final usage-only chunk is
dumped without nulls, so ``prompt_tokens_details`` appears there only when something was cached.
"""

from __future__ import annotations

import random
from http import HTTPStatus
from typing import Any

import orjson

JsonObject = dict[str, Any]

SSE_DONE = b"data: [DONE]\n\n"
# A stream event whose data is not JSON: a relay must survive it without losing the rest.
SSE_MALFORMED = b"data: {not json\n\n"


def request_id(prefix: str) -> str:
    # vLLM uses a random uuid4 hex. Ids stay random (not derived from the seed) because ledgers may be
    # keyed on them across restarts; the module generator is seeded from the OS, with no syscall per id.
    return f"{prefix}-{random.getrandbits(128):032x}"


def sse_event(payload: JsonObject) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_body(message: str, status: int, err_type: str | None = None, param: str | None = None) -> bytes:
    """vLLM's ``ErrorResponse``: OpenAI's error envelope with the HTTP status as ``code``."""
    return orjson.dumps(
        {
            "error": {
                "message": message,
                "type": err_type or error_type(status),
                "param": param,
                "code": status,
            }
        }
    )


def error_type(status: int) -> str:
    """vLLM-style error type names: ``BadRequestError``, ``NotFoundError``, ``InternalServerError``."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "InternalServerError" if status >= 500 else "BadRequestError"
    return "".join(part.capitalize() for part in phrase.replace("-", " ").split()) + (
        "" if phrase.endswith("Error") else "Error"
    )


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> JsonObject:
    """Usage as vLLM reports it in a non-streaming body (``prompt_tokens_details`` null when unset)."""
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens} if cached_tokens else None,
    }


def stream_usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> JsonObject:
    """Usage as vLLM reports it in a stream chunk: null fields are left out."""
    result: JsonObject = {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }
    if cached_tokens:
        result["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    return result


def chat_completion(
    response_id: str,
    created: int,
    model: str,
    content: str,
    finish_reason: str,
    usage_info: JsonObject | None,
) -> JsonObject:
    body: JsonObject = {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": None,
                    "audio": None,
                    "function_call": None,
                    "tool_calls": [],
                    "reasoning_content": None,
                },
                "logprobs": None,
                "finish_reason": finish_reason,
                "stop_reason": None,
            }
        ],
        "service_tier": None,
        "system_fingerprint": None,
        "prompt_logprobs": None,
        "kv_transfer_params": None,
    }
    if usage_info is not None:
        body["usage"] = usage_info
    return body


def text_completion(
    response_id: str, created: int, model: str, text: str, finish_reason: str, usage_info: JsonObject | None
) -> JsonObject:
    body: JsonObject = {
        "id": response_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": finish_reason,
                "stop_reason": None,
                "prompt_logprobs": None,
            }
        ],
        "service_tier": None,
        "system_fingerprint": None,
        "kv_transfer_params": None,
    }
    if usage_info is not None:
        body["usage"] = usage_info
    return body


class StreamChunks:
    """The chunks of one stream; all share one id, ``created`` and model, as in vLLM."""

    object_name = ""
    has_role_chunk = False

    def __init__(self, response_id: str, created: int, model: str) -> None:
        self._head: JsonObject = {
            "id": response_id,
            "object": self.object_name,
            "created": created,
            "model": model,
        }

    def _chunk(self, choice: JsonObject, usage_info: JsonObject | None) -> bytes:
        payload = {**self._head, "choices": [choice]}
        if usage_info is not None:
            payload["usage"] = usage_info
        return sse_event(payload)

    def role(self, usage_info: JsonObject | None = None) -> bytes:
        raise NotImplementedError(f"{self.object_name} streams have no role chunk")

    def token(self, text: str, usage_info: JsonObject | None = None) -> bytes:
        raise NotImplementedError

    def finish(self, finish_reason: str, usage_info: JsonObject | None = None) -> bytes:
        raise NotImplementedError

    def usage_only(self, usage_info: JsonObject) -> bytes:
        return sse_event({**self._head, "choices": [], "usage": usage_info})


class ChatChunks(StreamChunks):
    object_name = "chat.completion.chunk"
    has_role_chunk = True

    def role(self, usage_info: JsonObject | None = None) -> bytes:
        choice = {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
        return self._chunk(choice, usage_info)

    def token(self, text: str, usage_info: JsonObject | None = None) -> bytes:
        choice = {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
        return self._chunk(choice, usage_info)

    def finish(self, finish_reason: str, usage_info: JsonObject | None = None) -> bytes:
        # As vLLM's last chunk when the end-of-sequence token (empty text) ends generation; that token
        # is not counted here, so the streamed text's token count equals completion_tokens.
        choice = {
            "index": 0,
            "delta": {"content": ""},
            "logprobs": None,
            "finish_reason": finish_reason,
            "stop_reason": None,
        }
        return self._chunk(choice, usage_info)


class CompletionChunks(StreamChunks):
    object_name = "text_completion"

    def token(self, text: str, usage_info: JsonObject | None = None) -> bytes:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": None, "stop_reason": None}
        return self._chunk(choice, usage_info)

    def finish(self, finish_reason: str, usage_info: JsonObject | None = None) -> bytes:
        choice = {
            "index": 0,
            "text": "",
            "logprobs": None,
            "finish_reason": finish_reason,
            "stop_reason": None,
        }
        return self._chunk(choice, usage_info)


def embeddings(
    response_id: str, created: int, model: str, vectors: list[Any], prompt_tokens: int, usage_info: bool
) -> JsonObject:
    body: JsonObject = {
        "id": response_id,
        "object": "list",
        "created": created,
        "model": model,
        "data": [
            {"index": index, "object": "embedding", "embedding": vector}
            for index, vector in enumerate(vectors)
        ],
    }
    if usage_info:
        body["usage"] = usage(prompt_tokens, 0, 0)
    return body


def model_list(models: tuple[str, ...], created: int, max_model_len: int) -> JsonObject:
    return {
        "object": "list",
        "data": [
            {
                "id": model,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": model,
                "parent": None,
                "max_model_len": max_model_len,
                "permission": [
                    {
                        "id": request_id("modelperm"),
                        "object": "model_permission",
                        "created": created,
                        "allow_create_engine": False,
                        "allow_sampling": True,
                        "allow_logprobs": True,
                        "allow_search_indices": False,
                        "allow_view": True,
                        "allow_fine_tuning": False,
                        "organization": "*",
                        "group": None,
                        "is_blocking": False,
                    }
                ],
            }
            for model in models
        ],
    }
