"""Run the service with uvicorn: ``serve.main(host, port)`` (the CLI) or ``python -m serve``."""
from __future__ import annotations

import json
import logging
import sys

from serve.settings import Settings, get_settings


class JsonFormatter(logging.Formatter):
    """One JSON object per line; access-log messages are JSON already and pass through."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == "facecmp.serve.access":
            return message
        entry = {"time": self.formatTime(record), "level": record.levelname.lower(), "logger": record.name,
                 "message": message}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"))


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("facecmp", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def run(settings: Settings | None = None) -> None:
    """Serve ``settings`` (default: the environment's) until interrupted."""
    import uvicorn

    from serve.app import create_app

    settings = settings or get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                access_log=False,  # our access log never shows raw paths or query strings
                server_header=False, timeout_graceful_shutdown=30)


def main(host: str | None = None, port: int | None = None) -> None:
    """Entry point of ``facecmp serve``: the environment's settings, ``host``/``port`` overriding."""
    settings = get_settings()
    overrides = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    run(settings.model_copy(update=overrides) if overrides else settings)
