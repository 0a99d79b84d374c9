"""The demo page: ``GET /demo``, a static page (serve/static/) that posts to ``POST /compare``.

Mounted only with ``Settings.demo`` (``FACECMP_DEMO``, on by default); off, ``/demo`` is an
unknown path (ERR_NOT_FOUND). Left out of the OpenAPI schema: it is a page, not an operation.
Its Content-Security-Policy lets it load only its own script and style from this service and
talk only to this service, so neither it nor anything injected into it can reach elsewhere;
the photos are shown from ``data:`` URLs made in the browser.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from serve.errors import NotFoundError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PAGE = "demo.html"
#: The page's assets, by the name it asks for (no other file of the folder is reachable).
ASSET_TYPES = {"demo.js": "text/javascript; charset=utf-8", "demo.css": "text/css; charset=utf-8"}
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; "
                           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

router = APIRouter(tags=["demo"], include_in_schema=False)


@router.get("/demo")
async def demo_page() -> FileResponse:
    return FileResponse(STATIC_DIR / PAGE, media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/demo/{asset}")
async def demo_asset(asset: str) -> FileResponse:
    media_type = ASSET_TYPES.get(asset)
    if media_type is None:
        raise NotFoundError()
    return FileResponse(STATIC_DIR / asset, media_type=media_type, headers=HEADERS)
