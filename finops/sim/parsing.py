"""Request bodies in, validated requests out, with vLLM's error statuses and wording.

Prompt tokens are counted with ``finops.tokens.counting``, the same rules the proxy uses for its own
estimates, so that the proxy and the stand-in agree on every count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from finops.sim.settings import SimSettings
from finops.tokens.counting import count_chat_prompt, count_prompt_input


class SimRequestError(Exception):
    """A request the stand-in answers with an OpenAI-style error, as vLLM would."""

    def __init__(self, status: int, message: str, err_type: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.param = param


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    model: str
    prompt_tokens: int
    max_tokens: int | None
    stream: bool
    include_usage: bool
    continuous_usage: bool


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    model: str
    # Each input as bytes (what its vector is derived from).
    items: list[bytes]
    prompt_tokens: int
    dimensions: int
    base64: bool


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SimRequestError(400, f"JSON decode error: {exc}") from None
    if not isinstance(payload, dict):
        raise SimRequestError(400, "The request body must be a JSON object.")
    return payload


def resolve_model(payload: dict[str, Any], settings: SimSettings) -> str:
    model = payload.get("model")
    if model is None:
        # vLLM serves a request without a model with its (first) served model.
        return settings.default_model
    if not isinstance(model, str) or model not in settings.models:
        raise SimRequestError(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
    return model


def _optional_int(payload: dict[str, Any], key: str) -> int | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SimRequestError(400, f"{key}: Input should be a valid integer", param=key)
    return value


def _stream_flags(payload: dict[str, Any]) -> tuple[bool, bool, bool]:
    stream = bool(payload.get("stream", False))
    options = payload.get("stream_options")
    if options is None:
        return stream, False, False
    if not isinstance(options, dict):
        raise SimRequestError(
            400, "stream_options: Input should be a valid dictionary", param="stream_options"
        )
    if not stream:
        raise SimRequestError(
            400, "Stream options can only be defined when `stream=True`.", param="stream_options"
        )
    # vLLM's StreamOptions defaults include_usage to True once stream_options is present at all.
    include_usage = bool(options.get("include_usage", True))
    continuous_usage = include_usage and bool(options.get("continuous_usage_stats", False))
    return stream, include_usage, continuous_usage


def _check_lengths(prompt_tokens: int, max_tokens: int | None, settings: SimSettings) -> None:
    max_model_len = settings.max_model_len
    if max_tokens is not None and max_tokens < 1:
        raise SimRequestError(400, f"max_tokens must be at least 1, got {max_tokens}.", param="max_tokens")
    # vLLM's wording (serving engine _validate_input): the prompt must leave room for one token.
    if prompt_tokens >= max_model_len:
        raise SimRequestError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, your request has "
            f"{prompt_tokens} input tokens. Please reduce the length of the input messages.",
            param="input_tokens",
        )
    # Unlike vLLM, a max_tokens that overflows the window is not an error: generation stops at the
    # window's end (finish_reason "length"), so tests can ask for long answers from a small window.


def parse_chat(payload: dict[str, Any], settings: SimSettings) -> GenerationRequest:
    model = resolve_model(payload, settings)
    messages = payload.get("messages")
    if not isinstance(messages, list):
        raise SimRequestError(400, "messages: Field required (a list of messages)", param="messages")
    prompt_tokens = count_chat_prompt(messages)
    # max_completion_tokens supersedes the deprecated max_tokens, as in vLLM.
    max_tokens = _optional_int(payload, "max_completion_tokens") or _optional_int(payload, "max_tokens")
    stream, include_usage, continuous_usage = _stream_flags(payload)
    _check_lengths(prompt_tokens, max_tokens, settings)
    return GenerationRequest(model, prompt_tokens, max_tokens, stream, include_usage, continuous_usage)


def parse_completion(payload: dict[str, Any], settings: SimSettings) -> GenerationRequest:
    model = resolve_model(payload, settings)
    prompt = payload.get("prompt")
    if prompt is None or prompt == "" or prompt == []:
        raise SimRequestError(
            400, "Either prompt or prompt_embeds must be provided and non-empty.", param="prompt"
        )
    if not isinstance(prompt, str | list):
        raise SimRequestError(400, "prompt: Input should be a string or a list", param="prompt")
    prompt_tokens = count_prompt_input(prompt)
    max_tokens = _optional_int(payload, "max_tokens")
    stream, include_usage, continuous_usage = _stream_flags(payload)
    _check_lengths(prompt_tokens, max_tokens, settings)
    return GenerationRequest(model, prompt_tokens, max_tokens, stream, include_usage, continuous_usage)


def _embedding_items(value: Any) -> list[Any]:
    """The separate inputs of an embeddings request: one text, texts, one token list, token lists."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            return [value]
        if all(isinstance(item, str | list) for item in value):
            return value
    raise SimRequestError(
        400, "input: Input should be a string, a list of strings or token lists", param="input"
    )


def parse_embedding(payload: dict[str, Any], settings: SimSettings) -> EmbeddingRequest:
    model = resolve_model(payload, settings)
    items = _embedding_items(payload.get("input"))
    item_tokens = [count_prompt_input(item) for item in items]
    for tokens in item_tokens:
        if tokens > settings.max_model_len:
            raise SimRequestError(
                400,
                f"This model's maximum context length is {settings.max_model_len} tokens. However, you "
                f"requested {tokens} tokens in the input for embedding generation. Please reduce the "
                "length of the input.",
                param="input_tokens",
            )
    dimensions = _optional_int(payload, "dimensions")
    if dimensions is not None and dimensions < 1:
        raise SimRequestError(400, f"dimensions must be at least 1, got {dimensions}.", param="dimensions")
    encoding_format = payload.get("encoding_format") or "float"
    if encoding_format not in ("float", "base64"):
        raise SimRequestError(
            400,
            f"encoding_format must be 'float' or 'base64', got {encoding_format!r}.",
            param="encoding_format",
        )
    as_bytes = [item.encode() if isinstance(item, str) else orjson.dumps(item) for item in items]
    return EmbeddingRequest(
        model=model,
        items=as_bytes,
        prompt_tokens=sum(item_tokens),
        dimensions=dimensions or settings.embedding_dim,
        base64=encoding_format == "base64",
    )
