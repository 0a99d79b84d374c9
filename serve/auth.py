"""API-key authentication: key resolution at start-up and the ``require_api_key`` dependency.

Keys come from ``FACECMP_API_KEYS`` (comma-separated) and ``FACECMP_API_KEYS_FILE`` (one a
line). With neither, the first start generates a key, prints it once on stderr and stores
it in ``<facecmp cache>/serve/api_key`` (mode 0600); later starts read it from there. Only
``FACECMP_ALLOW_NO_AUTH=true`` serves without a key, and says so loudly in the log.
Presented keys are compared with :func:`hmac.compare_digest` against every accepted key.
Keys are never logged.
"""
from __future__ import annotations

import hmac
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from serve.errors import ApiKeyNotPresentError, ApiKeyNotValidError, ServiceNotReadyError
from serve.settings import Settings

log = logging.getLogger("facecmp.serve")

API_KEY_HEADER = "x-api-key"
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                               description="An API key configured on the server (FACECMP_API_KEYS).")


@dataclass(frozen=True, repr=False)
class KeyRing:
    """The accepted keys (utf-8 bytes); ``open`` means no key is required."""

    keys: tuple[bytes, ...]
    open: bool = False

    def accepts(self, presented: str) -> bool:
        candidate = presented.encode("utf-8", "surrogateescape")
        matched = False
        for key in self.keys:  # no early exit: the time does not depend on which key matched
            matched |= hmac.compare_digest(key, candidate)
        return matched


def generated_key_path(settings: Settings) -> Path:
    return settings.cache_dir / "serve" / "api_key"


def load_key_ring(settings: Settings) -> KeyRing:
    """Resolve the accepted keys for ``settings`` (may create and print a new key)."""
    keys = [key.get_secret_value() for key in settings.api_keys]
    if settings.api_keys_file is not None:
        keys += _read_key_file(settings.api_keys_file)
    if settings.allow_no_auth:
        log.warning("!!! FACECMP_ALLOW_NO_AUTH=true: the service answers requests WITHOUT an API key. "
                    "Anyone who can reach %s:%s can use it. !!!", settings.host, settings.port)
        return KeyRing(keys=(), open=True)
    if not keys:
        keys = [_generated_key(generated_key_path(settings))]
    return KeyRing(keys=tuple(key.encode("utf-8") for key in keys))


def _read_key_file(path: Path) -> list[str]:
    try:
        lines = path.expanduser().read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RuntimeError(f"cannot read FACECMP_API_KEYS_FILE {path}: {exc.strerror}") from exc
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _generated_key(path: Path) -> str:
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if key:
            log.info("using the generated API key stored in %s", path)
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    # The one and only time the key is shown: on the operator's terminal, not in the log.
    print(f"facecmp serve: no API key configured; generated one and stored it in {path} (mode 0600).\n"
          f"  x-api-key: {key}\n"
          "  Set FACECMP_API_KEYS or FACECMP_API_KEYS_FILE to use your own keys.",
          file=sys.stderr, flush=True)
    return key


def require_api_key(request: Request,
                    presented: Annotated[str | None, Security(_api_key_header)]) -> str:
    """The presented key, if accepted; raises ``ERR_API_KEY_NOT_PRESENT``/``_NOT_VALID``."""
    ring: KeyRing | None = getattr(request.app.state, "key_ring", None)
    if ring is None:  # start-up has not run: fail closed
        raise ServiceNotReadyError()
    if ring.open:
        return presented or ""
    if not presented:
        raise ApiKeyNotPresentError()
    if not ring.accepts(presented):
        raise ApiKeyNotValidError()
    return presented


ApiKey = Annotated[str, Depends(require_api_key)]
