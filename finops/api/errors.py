"""One error shape for every answer that is not a success: ``{"error": {code, message, field, details}}``.

``code`` is stable (clients branch on it); ``message`` is for people; ``field`` names the offending input
(``limit``, ``team``, ``scope.team``...) when there is one. FastAPI's own 422 shape is replaced by this.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

logger = logging.getLogger("finops.api")

# Status -> stable code, for the errors the framework raises itself (unknown route, wrong method...).
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    field: str | None
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """An answer the API gives on purpose: raised by endpoints and dependencies, rendered by the handler."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers


def not_found(message: str, field: str | None = None) -> ApiError:
    return ApiError(404, "not_found", message, field)


def invalid(message: str, field: str | None) -> ApiError:
    return ApiError(422, "validation_error", message, field)


def forbidden(message: str, field: str | None = None) -> ApiError:
    return ApiError(403, "forbidden", message, field)


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    details: Sequence[ErrorDetail] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, field=field, details=list(details)))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def field_name(loc: Sequence[Any]) -> str | None:
    """``("query", "limit")`` -> ``limit``; ``("body", "scope", "team")`` -> ``scope.team``."""
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("query", "path", "body", "header") else list(loc)
    return ".".join(str(p) for p in parts) or (str(loc[0]) if loc else None)


def _validation_details(exc: RequestValidationError) -> list[ErrorDetail]:
    details = []
    for problem in exc.errors():
        # Never echo the input back: a rejected body may hold a secret (a webhook URL, a key).
        message = str(problem.get("msg", "invalid value"))
        details.append(ErrorDetail(field=field_name(problem.get("loc", ())), message=message))
    return details


async def _on_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field, headers=exc.headers)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    first = details[0] if details else ErrorDetail(field=None, message="invalid request")
    where = f"{first.field}: " if first.field else ""
    return error_response(422, "validation_error", where + first.message, first.field, details)


def allowed_methods(app: Any, path: str) -> list[str]:
    """The methods the OpenAPI document lists for ``path``: one route knows only its own method, so
    its 405 would name that one alone when a path has several (GET and POST /keys)."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = [
            (compile_path(template)[0], sorted(m.upper() for m in item))
            for template, item in app.openapi()["paths"].items()
        ]
        app.state.allowed_methods = table
    # The first match, as routing goes: /budgets/status is its own path, not a /budgets/{name}.
    return next((methods for pattern, methods in table if pattern.match(path)), [])


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path)) or headers.get(
            "Allow", ""
        )
    return error_response(exc.status_code, code, message, headers=headers or None)


async def _on_data_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value (too long, out of range): bad input that slipped past the checks.
    logger.warning(
        "database refused a value on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    return error_response(422, "validation_error", "a value is too long or out of range for storage")


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The path only: query strings and headers stay out of the log.
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error; the API's log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(DataError, _on_data_error)
    app.add_exception_handler(Exception, _on_unexpected)


# Documented on every operation, so that clients (and the schema checks) know the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "the body could not be read (not UTF-8 or not JSON)"},
    401: {"model": ErrorResponse, "description": "no token, an unknown or revoked token, or a proxy key"},
    403: {"model": ErrorResponse, "description": "the token's role may not do this, or not for this team"},
    404: {"model": ErrorResponse, "description": "no such resource"},
    422: {"model": ErrorResponse, "description": "invalid input; `field` names it"},
}
