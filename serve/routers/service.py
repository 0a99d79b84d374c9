"""Process probes and versions: ``/health``, ``/ready``, ``/version`` (no API key needed)."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serve.deps import EngineDep, SettingsDep
from serve.errors import ServiceNotReadyError, error_response, error_responses
from serve.schemas import HealthResponse, ReadyResponse, VersionResponse

router = APIRouter(prefix="", tags=["service"])


@router.get("/health", response_model=HealthResponse, operation_id="health", summary="The process is up")
async def health() -> HealthResponse:
    return HealthResponse()


@router.get("/ready", response_model=ReadyResponse, operation_id="ready", summary="The models are loaded",
            responses=error_responses(ServiceNotReadyError()))
async def ready(engine: EngineDep, settings: SettingsDep) -> ReadyResponse | JSONResponse:
    """503 while the models load, and for good when they could not be loaded
    (`metadata.cause`: the library's code, e.g. `ERR_WEIGHTS_UNAVAILABLE`; details in the log)."""
    if engine.ready:
        return ReadyResponse(mode=engine.comparer.mode)
    return error_response(engine.not_ready_error(), settings.retry_after_s)


@router.get("/version", response_model=VersionResponse, operation_id="version",
            summary="Versions of facecmp, the weights and the calibrations")
async def version(engine: EngineDep) -> VersionResponse:
    versions = engine.versions
    return VersionResponse(facecmp=versions.get("facecmp", ""), mode=versions.get("mode", "loading"),
                           compute=versions.get("compute"), modes=versions.get("modes", {}))
