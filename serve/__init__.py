"""facecmp's REST service (FastAPI). ``create_app`` builds it; ``main`` runs it with uvicorn.

The CLI's ``facecmp serve [--host] [--port]`` (registered by :mod:`serve.cli`) calls :func:`main`.
The service holds no face logic: every answer comes from the shared :class:`facecmp.FaceComparer`.
"""
from __future__ import annotations

from facecmp.extras import require

for _module in ("fastapi", "uvicorn", "fastapi_offline"):
    require(_module, "serve")  # say which extra is missing before the first import fails
del _module

from serve.app import create_app  # noqa: E402
from serve.runner import main, run  # noqa: E402

__all__ = ["create_app", "main", "run"]
