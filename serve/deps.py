"""Dependencies shared by the routers: settings, the engine, and the API key."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serve.auth import ApiKey, require_api_key
from serve.engine import Engine
from serve.settings import Settings, get_settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]

__all__ = ["ApiKey", "EngineDep", "SettingsDep", "get_engine", "require_api_key"]
