"""Prometheus metrics: ``GET /metrics`` (serve/metrics.py; docs/service.md "Metrics").

No API key, like ``/health`` and ``/ready``: Prometheus scrapes without one, and the text holds
counts, timings and the ids ``/version`` already shows, nothing a client sent. Mounted only with
``Settings.metrics`` (``FACECMP_METRICS``, on by default); off, ``/metrics`` is an unknown path
(ERR_NOT_FOUND). Left out of the OpenAPI schema: it is for scrapers, in their own format.
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(tags=["service"], include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    # A coroutine, so that it runs on the event loop: the inference gate's counts it reads are only
    # changed there.
    body, content_type = request.app.state.metrics.render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
