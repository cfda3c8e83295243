"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Clients built on the openai library read ``type`` and ``code``; we keep OpenAI's vocabulary so their
existing error handling keeps working behind the proxy.
"""

from __future__ import annotations

import orjson


class ProxyError(Exception):
    """An answer the proxy gives itself. (Not a frozen dataclass: raising sets __traceback__.)"""

    # Extra response headers (e.g. x-should-retry for a hard limit's 429).
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> bytes:
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        )


def bad_request(message: str, *, code: str = "invalid_request", param: str | None = None) -> ProxyError:
    return ProxyError(400, message, "invalid_request_error", code, param)


def missing_tag(tag: str) -> ProxyError:
    return ProxyError(
        400,
        f"missing required tag '{tag}': send the X-FinOps-{tag.capitalize()} header, "
        f"or metadata.{tag} in the body, or use an API key whose team sets it",
        "invalid_request_error",
        "missing_tag",
        tag,
    )


def invalid_api_key(message: str = "invalid API key") -> ProxyError:
    return ProxyError(401, message, "invalid_request_error", "invalid_api_key")


def forbidden(message: str, code: str) -> ProxyError:
    return ProxyError(403, message, "permission_error", code)


def not_found(message: str, *, code: str = "not_found", param: str | None = None) -> ProxyError:
    return ProxyError(404, message, "invalid_request_error", code, param)


def model_not_found(model: str) -> ProxyError:
    return not_found(
        f"the model '{model}' does not exist or no backend serves it", code="model_not_found", param="model"
    )


def method_not_allowed(method: str, path: str) -> ProxyError:
    return ProxyError(
        405, f"method {method} is not allowed on {path}", "invalid_request_error", "method_not_allowed"
    )


def body_too_large(limit_bytes: int) -> ProxyError:
    return ProxyError(
        413,
        f"request body is larger than the limit of {limit_bytes} bytes",
        "invalid_request_error",
        "request_too_large",
    )


def upstream_unreachable(model: str) -> ProxyError:
    return ProxyError(
        502, f"no backend for model '{model}' could be reached", "api_error", "upstream_unreachable"
    )


def upstream_failed(detail: str) -> ProxyError:
    return ProxyError(502, f"the backend failed: {detail}", "api_error", "upstream_error")


def upstream_timeout(seconds: float) -> ProxyError:
    return ProxyError(
        504, f"the backend did not answer within {seconds:g} s", "api_error", "upstream_timeout"
    )


def budget_exceeded(message: str) -> ProxyError:
    return ProxyError(429, message, "insufficient_quota", "budget_exceeded")


def keys_unavailable() -> ProxyError:
    return ProxyError(
        503,
        "API keys cannot be checked yet: the proxy has not reached its database since it "
        "started; retry shortly",
        "api_error",
        "keys_unavailable",
    )
