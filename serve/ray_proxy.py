"""Ray Serve's HTTP proxy, extended: a request whose replica dies before answering gets a JSON 503.

When a replica process dies with requests in flight (killed, out of memory, node lost), Ray's
proxy ends those requests without a response and its server sends a bare ``500 Internal Server
Error``. :class:`AnswerLostRequests` answers them instead with the service's error shape:
503 ``ERR_SERVICE_UNAVAILABLE`` and ``Retry-After``, since a retry reaches a live replica.
Requests that reach no replica at all are retried by Ray itself.

Ray loads it in each proxy through ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH`` (set on the Serve
controller by serve/cluster.py, whose proxies inherit it). The proxy imports this module only:
stdlib, nothing of facecmp.
"""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

CALLBACK_IMPORT_PATH = "serve.ray_proxy:proxy_middlewares"
CODE = "ERR_SERVICE_UNAVAILABLE"
MESSAGE = ("The replica serving the request stopped before answering. "
           "Retry after the number of seconds in the Retry-After header.")
RETRY_AFTER_S = 1  # the other replicas answer at once

Message = dict[str, Any]
ASGIApp = Callable[[dict, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class AnswerLostRequests:
    """ASGI middleware: an HTTP request that ends without a response is answered 503 ``CODE``."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, receive, tracking_send)
        if not started:
            body = json.dumps({"code": CODE, "message": MESSAGE}, separators=(",", ":")).encode()
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                    (b"retry-after", str(RETRY_AFTER_S).encode())]})
            await send({"type": "http.response.body", "body": body})


def proxy_middlewares() -> list:
    """Ray's proxy callback: the middlewares to wrap the proxy's ASGI app with."""
    from starlette.middleware import Middleware

    return [Middleware(AnswerLostRequests)]
