"""Pure ASGI middleware: the body-size limit and the access log (with the last-resort 500).

The access-log middleware also folds repeated slashes in the path (``//compare``), and feeds
the metrics (serve/metrics.py) from the same record of each request.

The access log writes one JSON line per request to the ``facecmp.serve.access`` logger:
method, route (the matched path template, never the raw path or query), status, latency,
face counts and a request id. Nothing a client sent (bytes, base64, keys) is logged.
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.errors import PayloadTooLargeError, UnknownError, error_response
from serve.metrics import ServiceMetrics

access_log = logging.getLogger("facecmp.serve.access")
#: The route of a request that no route answered: one name for every unknown path.
UNMATCHED_ROUTE = "<unmatched>"
_REPEATED_SLASHES = re.compile(r"/{2,}")
log = logging.getLogger("facecmp.serve")


class BodySizeLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await error_response(PayloadTooLargeError())(scope, receive, send)
            return

        received = 0
        exceeded = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise PayloadTooLargeError()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded and not response_started:
                return  # the app's answer to a truncated body is replaced by the 413 below
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except PayloadTooLargeError:
            if not exceeded:
                raise
        if exceeded and not response_started:
            await error_response(PayloadTooLargeError())(scope, receive, send)


class AccessLogMiddleware:
    """One JSON access-log line per request, and its metrics when ``metrics`` is given; version
    and request-id headers on every answer.

    It also answers 500 ``UNKNOWN_ERROR`` for any exception that got past the app's handlers,
    logging the traceback (server side only).
    """

    def __init__(self, app: ASGIApp, engine: Any, metrics: ServiceMetrics | None = None):
        self.app = app
        self.engine = engine
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        if "//" in scope.get("path", ""):
            # SDK users write base URLs ending in "/" and the SDK adds "/compare": "//compare".
            path = _REPEATED_SLASHES.sub("/", scope["path"])
            scope = {**scope, "path": path, "raw_path": path.encode("utf-8")}
        arrived = dict(scope)  # routing rewrites the scope in place (a Mount's root_path)
        status_code = 500
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status_code, started
            if message["type"] == "http.response.start":
                started = True
                status_code = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-facecmp-version", self.engine.version_header.encode("latin-1")))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # noqa: BLE001 - the edge of the app: answer, never crash the connection
            log.error("unhandled %s (request %s)", type(exc).__name__, request_id,
                      exc_info=(type(exc), exc, exc.__traceback__))
            if not started:
                await error_response(UnknownError())(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - start
            outcome = (scope.get("state") or {}).get("outcome")  # set by the routers (serve.operations.Outcome)
            route = route_template(scope, arrived)
            if self.metrics is not None:
                self.metrics.observe_request(scope.get("method"), route, status_code, seconds)
                if outcome is not None and outcome.timings_ms:
                    self.metrics.observe_stages(outcome.mode, outcome.timings_ms)
            entry = {
                "event": "access", "request_id": request_id, "method": scope.get("method"),
                "path": route, "status": status_code, "latency_ms": round(seconds * 1000.0, 2),
                "faces": list(outcome.face_counts) if outcome is not None and outcome.face_counts else None,
            }
            access_log.info(json.dumps(entry, separators=(",", ":")))


def route_template(scope: Scope, arrived: Scope) -> str:
    """The path template of the route that answered (``/demo/{asset}``), never the raw path.

    FastAPI's routes put themselves in the scope; Starlette's own (``/openapi.json``, the docs'
    static files) are found by matching the scope as it ``arrived`` against the app's routes.
    """
    route = scope.get("route")
    if route is None:
        routes = getattr(scope.get("app"), "routes", ())
        route = next((candidate for candidate in routes if candidate.matches(arrived)[0] is not Match.NONE), None)
    return getattr(route, "path", None) or UNMATCHED_ROUTE


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1").strip()
    return None
