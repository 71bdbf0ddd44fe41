"""``/docs`` and ``/redoc`` from files shipped in a package (fastapi-offline), never a CDN."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_STATIC = "/static/docs"
router = APIRouter(include_in_schema=False)


def _assets() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} · API",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_STATIC}/favicon.png",
    )


@router.get("/docs/oauth2-redirect")
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} · ReDoc",
        redoc_js_url="/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{DOCS_STATIC}/favicon.png",
        with_google_fonts=False,
    )


# ReDoc's side menu shows a logo fetched from the vendor's CDN; point it at our own file.
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@lru_cache
def _redoc_js() -> bytes:
    source = (_assets() / "redoc.standalone.js").read_bytes()
    return source.replace(REDOC_CDN_LOGO, f"{DOCS_STATIC}/favicon.png".encode())


@router.get("/redoc/redoc.standalone.js")
def redoc_js() -> Response:
    return Response(
        _redoc_js(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def install(app: FastAPI) -> None:
    app.mount(DOCS_STATIC, StaticFiles(directory=_assets()), name="docs-static")
    app.include_router(router)
