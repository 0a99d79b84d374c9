"""facecmp's REST service (FastAPI). ``create_app`` builds it; ``main`` runs it with uvicorn.

The CLI's ``facecmp serve [--host] [--port]`` (registered by :mod:`serve.cli`) calls :func:`main`.
The service holds no face logic: every answer comes from the shared :class:`facecmp.FaceComparer`.
"""
from __future__ import annotations

from serve.app import create_app
from serve.runner import main, run

__all__ = ["create_app", "main", "run"]
