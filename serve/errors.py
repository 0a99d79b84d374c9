"""The service's own errors and the one place that turns any error into a JSON answer.

Library errors (:mod:`facecmp.errors`) and the service's errors below share one base,
:class:`~facecmp.errors.FacecmpError`, and one mapping from ``code`` to HTTP status,
:data:`STATUS_BY_CODE`. Request validation errors, unknown paths and unexpected exceptions
are converted into a ``FacecmpError`` first, so every body has the same shape:
``{"code", "message"[, "metadata"]}``. No body ever carries a traceback or the request's
content.
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facecmp.errors import FacecmpError, ImageDecodeError, LivenessError

log = logging.getLogger("facecmp.serve")

#: Tags of ``POST /compare``'s two body shapes, left out of field names (see serve.schemas).
UNION_TAGS = frozenset({"face_pair", "image_sets"})


class ApiKeyNotPresentError(FacecmpError):
    code = "ERR_API_KEY_NOT_PRESENT"
    default_message = "API Key must be present in the x-api-key header."


class ApiKeyNotValidError(FacecmpError):
    code = "ERR_API_KEY_NOT_VALID"
    default_message = "The provided API Key is not valid."


class NotFoundError(FacecmpError):
    code = "ERR_NOT_FOUND"
    default_message = "The requested resource does not exist."


class MethodNotAllowedError(FacecmpError):
    code = "ERR_METHOD_NOT_ALLOWED"
    default_message = "The method is not allowed for the requested resource."


class PayloadTooLargeError(FacecmpError):
    code = "ERR_PAYLOAD_IS_TOO_LARGE"
    default_message = "The request sent is too big. Please try reducing the size of image(s)/data."


class UnprocessableContentError(FacecmpError):
    code = "ERR_UNPROCESSABLE_CONTENT"
    default_message = "Invalid request."


class ServiceOverloadedError(FacecmpError):
    code = "ERR_SERVICE_OVERLOADED"
    default_message = "The service is busy. Retry after the number of seconds in the Retry-After header."


class ServiceNotReadyError(FacecmpError):
    code = "ERR_SERVICE_NOT_READY"
    default_message = "The models are still loading."


class UnknownError(FacecmpError):
    code = "UNKNOWN_ERROR"
    default_message = "An unexpected error occurred."


STATUS_BY_CODE: dict[str, int] = {
    "ERR_BASE64_IMAGE_CANNOT_BE_DECODED": status.HTTP_400_BAD_REQUEST,
    "ERR_FACE_NOT_DETECTED": status.HTTP_400_BAD_REQUEST,
    "ERR_LIVENESS_ERROR": status.HTTP_400_BAD_REQUEST,
    ApiKeyNotPresentError.code: status.HTTP_401_UNAUTHORIZED,
    ApiKeyNotValidError.code: status.HTTP_403_FORBIDDEN,
    NotFoundError.code: status.HTTP_404_NOT_FOUND,
    MethodNotAllowedError.code: status.HTTP_405_METHOD_NOT_ALLOWED,
    PayloadTooLargeError.code: status.HTTP_413_CONTENT_TOO_LARGE,
    UnprocessableContentError.code: status.HTTP_422_UNPROCESSABLE_CONTENT,
    ServiceOverloadedError.code: status.HTTP_503_SERVICE_UNAVAILABLE,
    ServiceNotReadyError.code: status.HTTP_503_SERVICE_UNAVAILABLE,
}

# Set by the app factory: seconds a client should wait after a 503.
RETRY_AFTER_STATE_KEY = "retry_after_s"


def error_response(error: FacecmpError, retry_after_s: int | None = None) -> JSONResponse:
    """The JSON answer for ``error``; codes the service does not expose become a bare 500."""
    error = public_error(error)
    http_status = STATUS_BY_CODE.get(error.code)
    if http_status is None:
        error, http_status = UnknownError(), status.HTTP_500_INTERNAL_SERVER_ERROR
    headers = {}
    if http_status == status.HTTP_503_SERVICE_UNAVAILABLE and retry_after_s:
        headers["Retry-After"] = str(retry_after_s)
    return JSONResponse(error.to_dict(), status_code=http_status, headers=headers)


def public_error(error: FacecmpError) -> FacecmpError:
    """What a client may see of ``error``: the documented message, no server paths."""
    if isinstance(error, ImageDecodeError) and error.message != ImageDecodeError.default_message:
        # The contract fixes the message; the specific reason (size, pixel limit) goes to metadata.
        return ImageDecodeError(metadata={**(error.metadata or {}), "reason": error.message})
    if isinstance(error, LivenessError) and error.liveness_code == "LICENSE_ERROR":
        # The library's message names the weights directory: for the operator's log only.
        return LivenessError("LICENSE_ERROR", "The liveness check is not available on this server.")
    return error


def validation_error(exc: RequestValidationError) -> UnprocessableContentError:
    """422 naming each offending field (``body.face_base_64``), never echoing its value."""
    problems = []
    for item in exc.errors():
        kind = item.get("type", "value_error")
        loc = [str(part) for part in item.get("loc", ()) if part not in UNION_TAGS]
        message = item.get("msg", "invalid")
        if kind == "json_invalid":  # loc ends with a character offset, not a field
            loc = ["body"]
            message = f"{message}: {(item.get('ctx') or {}).get('error', 'not JSON')}"
        problems.append({"field": ".".join(loc) or "body", "message": message, "type": kind})
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    return UnprocessableContentError(f"Invalid request: {summary}", metadata={"errors": problems})


def as_facecmp_error(exc: Exception) -> FacecmpError:
    """Translate any exception reaching the app's edge into a :class:`FacecmpError`."""
    if isinstance(exc, FacecmpError):
        return exc
    if isinstance(exc, RequestValidationError):
        return validation_error(exc)
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == status.HTTP_404_NOT_FOUND:
            return NotFoundError()
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            return MethodNotAllowedError()
        if exc.status_code == status.HTTP_413_CONTENT_TOO_LARGE:
            return PayloadTooLargeError()
        if exc.status_code in (status.HTTP_400_BAD_REQUEST, status.HTTP_422_UNPROCESSABLE_CONTENT):
            # FastAPI raises 400 "There was an error parsing the body" for undecodable bodies.
            return UnprocessableContentError(f"Invalid request: {exc.detail}",
                                             metadata={"errors": [{"field": "body", "message": str(exc.detail),
                                                                   "type": "body_parse_error"}]})
    return UnknownError()


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    """The single exception handler: every error the app raises is answered here."""
    error = as_facecmp_error(exc)
    if isinstance(error, LivenessError) and error.liveness_code == "LICENSE_ERROR":
        log.error("liveness requested but unavailable: %s", error.message)
    if isinstance(error, UnknownError) or STATUS_BY_CODE.get(error.code) is None:
        # The trace goes to the server log only; the exception text may hold user data, so
        # it is not formatted into the message.
        log.error("unexpected error %s on %s %s", type(exc).__name__, request.method,
                  _route_path(request), exc_info=(type(exc), exc, exc.__traceback__))
    retry_after = getattr(request.app.state, RETRY_AFTER_STATE_KEY, None)
    return error_response(error, retry_after)


def install_error_handlers(app: FastAPI) -> None:
    # Anything else is answered by AccessLogMiddleware (500 UNKNOWN_ERROR, trace to the log).
    for exc_type in (FacecmpError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(exc_type, handle_error)


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "<unmatched>")


def error_responses(*errors: FacecmpError) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting ``errors`` (plus 500) with one example per code."""
    from serve.schemas import ErrorResponse  # schemas import nothing from here; avoid a cycle anyway

    grouped: dict[int, list[FacecmpError]] = {}
    for error in (*errors, UnknownError()):
        grouped.setdefault(STATUS_BY_CODE.get(error.code, status.HTTP_500_INTERNAL_SERVER_ERROR), []).append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for http_status, members in sorted(grouped.items()):
        entry: dict[str, Any] = {
            "model": ErrorResponse,
            "description": " / ".join(error.code for error in members),
            "content": {"application/json": {"examples": {
                error.code: {"summary": error.message, "value": error.to_dict()} for error in members}}},
        }
        if http_status == status.HTTP_503_SERVICE_UNAVAILABLE:
            entry["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                                "schema": {"type": "integer"}}}
        responses[http_status] = entry
    return responses


#: Examples for the OpenAPI schema; their messages are the ones the service sends.
VALIDATION_EXAMPLE = UnprocessableContentError(
    "Invalid request: body.face_base_64: Field required",
    metadata={"errors": [{"field": "body.face_base_64", "message": "Field required", "type": "missing"}]})
AUTH_ERRORS = (ApiKeyNotPresentError(), ApiKeyNotValidError())
LOAD_ERRORS = (PayloadTooLargeError(), VALIDATION_EXAMPLE, ServiceOverloadedError(), ServiceNotReadyError())
