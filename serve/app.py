"""The FastAPI application: ``create_app(settings=None)``.

Start-up (lifespan) resolves the API keys and loads the pipeline once, on one of the inference
worker threads: ``/health`` answers at once, ``/ready`` once the models are loaded. With
``wait_for_models`` start-up itself waits for them (Ray Serve replicas: serve/cluster.py). All
routes share one :class:`~serve.engine.Engine`. ``/demo`` (serve/routers/demo.py) is mounted
only with ``settings.demo``, ``/metrics`` (serve/routers/metrics.py) only with ``settings.metrics``. Swagger UI (``/docs``) and ReDoc are served from the
``fastapi-offline`` package's own copies of their JS/CSS: no CDN is contacted.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from facecmp import __version__
from serve.auth import load_key_ring
from serve.engine import Engine
from serve.errors import RETRY_AFTER_STATE_KEY, install_error_handlers
from serve.metrics import ServiceMetrics
from serve.middleware import AccessLogMiddleware, BodySizeLimitMiddleware
from serve.routers import compare, demo, liveness, metrics, service
from serve.settings import Settings, get_settings


DESCRIPTION = """\
1:1 face compare with calibrated scores, compatible with the OpenCV Face Compare Server
(`POST /compare` with `face_base_64` / `ref_face_base_64`) and with the OpenCV FR Python SDK
(`compare_image_sets`, `compare_live_face`, `check_liveness`).

Every operation except `/health`, `/ready`, `/version` (and `/metrics`) needs the `x-api-key` header
(press **Authorize**). Errors are `{"code", "message"[, "metadata"]}`.
Images are used for the answer only: nothing sent is stored or logged.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; ``settings`` default to the environment's (:func:`get_settings`)."""
    settings = settings or get_settings()
    engine = Engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.key_ring = load_key_ring(settings)
        engine.gate.open()
        loading = engine.gate.run_in_worker(engine.load)
        try:
            if settings.wait_for_models:
                await asyncio.shield(loading)  # a cancelled start-up still lets the load finish
                if not engine.ready:
                    raise engine.not_ready_error()
            yield
        finally:
            await loading  # a load cannot be interrupted; Engine.load never raises
            engine.gate.close()

    app = FastAPIOffline(
        title="facecmp face compare service", version=__version__, description=DESCRIPTION,
        lifespan=lifespan, swagger_ui_parameters={"tryItOutEnabled": True, "displayRequestDuration": True},
    )
    app.state.engine = engine
    setattr(app.state, RETRY_AFTER_STATE_KEY, settings.retry_after_s)
    if settings is not get_settings():
        app.dependency_overrides[get_settings] = lambda: settings
    install_error_handlers(app)
    for router in (compare.router, compare.live_router, liveness.router, service.router):
        app.include_router(router)
    if settings.demo:
        app.include_router(demo.router)
    service_metrics = ServiceMetrics(engine) if settings.metrics else None
    if service_metrics is not None:
        app.state.metrics = service_metrics
        app.include_router(metrics.router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Added last = outermost: it times and counts every answer, the 413s and last-resort 500s too.
    app.add_middleware(AccessLogMiddleware, engine=engine, metrics=service_metrics)
    return app
