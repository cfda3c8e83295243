"""Reading and checking a client's request before anything is sent upstream (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from finops.proxy.errors import bad_request

CHAT = "chat.completions"
COMPLETIONS = "completions"
EMBEDDINGS = "embeddings"
# The ledger's model column width.
MAX_MODEL_CHARS = 256
ENDPOINT_BY_PATH = {
    "/v1/chat/completions": CHAT,
    "/v1/completions": COMPLETIONS,
    "/v1/embeddings": EMBEDDINGS,
}


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    endpoint: str
    model: str
    stream: bool
    # The client asked for the usage chunk at the end of a stream.
    wants_stream_usage: bool
    metadata: dict[str, Any] | None
    payload: dict[str, Any]


def _require_type(payload: dict[str, Any], name: str, kind: type, what: str) -> None:
    value = payload.get(name)
    if value is None:
        return
    # bool is an int in Python, but "max_tokens": true is not a number to an API.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise bad_request(f"'{name}' must be {what}", code="invalid_type", param=name)


def parse_request(endpoint: str, body: bytes) -> ParsedRequest:
    if not body:
        raise bad_request("the request body is empty; send a JSON object", code="invalid_json")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise bad_request("the request body must be a JSON object", code="invalid_json")

    model = payload.get("model")
    if model is None:
        raise bad_request("'model' is required", code="missing_required_parameter", param="model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must be a non-empty string", code="invalid_type", param="model")
    if len(model) > MAX_MODEL_CHARS:
        raise bad_request(
            f"'model' is longer than {MAX_MODEL_CHARS} characters", code="invalid_value", param="model"
        )
    _require_type(payload, "stream", bool, "true or false")
    _require_type(payload, "stream_options", dict, "an object")
    _require_type(payload, "metadata", dict, "an object")
    _require_type(payload, "max_tokens", int, "an integer")
    _require_type(payload, "n", int, "an integer")

    if endpoint == CHAT:
        messages = payload.get("messages")
        if messages is None:
            raise bad_request("'messages' is required", code="missing_required_parameter", param="messages")
        if not isinstance(messages, list) or not messages:
            raise bad_request("'messages' must be a non-empty array", code="invalid_type", param="messages")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise bad_request(
                    f"'messages[{index}]' must be an object with a string 'role'",
                    code="invalid_type",
                    param=f"messages[{index}]",
                )
    elif endpoint == COMPLETIONS:
        prompt = payload.get("prompt")
        if prompt is None:
            raise bad_request("'prompt' is required", code="missing_required_parameter", param="prompt")
        if not isinstance(prompt, str | list):
            raise bad_request("'prompt' must be a string or an array", code="invalid_type", param="prompt")
    elif endpoint == EMBEDDINGS:
        value = payload.get("input")
        if value is None:
            raise bad_request("'input' is required", code="missing_required_parameter", param="input")
        if not isinstance(value, str | list):
            raise bad_request("'input' must be a string or an array", code="invalid_type", param="input")
        if payload.get("stream"):
            raise bad_request("embeddings cannot be streamed", code="invalid_value", param="stream")

    stream = payload.get("stream") is True
    options = payload.get("stream_options")
    wants_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    metadata = payload.get("metadata")
    return ParsedRequest(endpoint, model, stream, wants_usage, metadata, payload)


def upstream_body(request: ParsedRequest, original: bytes) -> bytes:
    """The body to send upstream: tags removed, usage asked for on streams; the original bytes if neither."""
    payload = request.payload
    needs_usage = request.stream and not request.wants_stream_usage
    if "metadata" not in payload and not needs_usage:
        return original
    rewritten = {key: value for key, value in payload.items() if key != "metadata"}
    if needs_usage:
        options = dict(rewritten.get("stream_options") or {})
        options["include_usage"] = True
        rewritten["stream_options"] = options
    return orjson.dumps(rewritten)
