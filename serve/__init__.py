"""facecmp's REST service (FastAPI). ``create_app`` builds it; ``main`` runs it with uvicorn.

The CLI's ``facecmp serve [--host] [--port]`` (registered by :mod:`serve.cli`) calls :func:`main`.
The service holds no face logic: every answer comes from the shared :class:`facecmp.FaceComparer`.

The names load on first use, so that importing a light module of the package (Ray's proxy
imports ``serve.ray_proxy``) does not load the pipeline.
"""
from __future__ import annotations

__all__ = ["create_app", "main", "run"]


def _require_extra() -> None:
    from facecmp.extras import require

    for module in ("fastapi", "uvicorn", "fastapi_offline"):
        require(module, "serve")  # say which extra is missing before the first import fails


def __getattr__(name: str):
    if name in __all__:
        _require_extra()
    if name == "create_app":
        from serve.app import create_app

        return create_app
    if name in ("main", "run"):
        from serve import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'serve' has no attribute {name!r}")
