"""The web console: server-rendered pages (Jinja2 + a vendored htmx) over the API's services.

Every page calls the same service functions and repositories as the JSON API; this package
adds only presentation: templates, the message catalogue, forms, charts drawn as SVG.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import Receive, Scope, Send

from app.console import (
    admin_pages,
    auth_pages,
    coordinator_pages,
    dashboard_pages,
    docs,
    enterprise_pages,
    i18n,
    plan_pages,
    provider_pages,
    run_pages,
)
from app.console.web import (
    CsrfRejected,
    LoginRequired,
    check_csrf,
    environment,
    login_redirect,
)
from app.errors import AppError
from app.settings import Settings

logger = logging.getLogger(__name__)
SESSION_COOKIE = "zhuqi_session"
NOT_CONSOLE = ("/api/", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz", "/metrics")
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the console, its static files and the offline API docs on ``app``."""
    app.add_middleware(
        ConsoleSessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.console_session_minutes * 60,
        same_site="lax",
        https_only=settings.cookie_secure,
    )
    static = Path(__file__).resolve().parent / "static"
    app.mount("/static/console", StaticFiles(directory=static), name="console-static")
    docs.install(app)
    for module in (
        auth_pages,
        enterprise_pages,
        provider_pages,
        coordinator_pages,
        plan_pages,
        run_pages,
        dashboard_pages,
        admin_pages,
    ):
        app.include_router(module.router, dependencies=[Depends(check_csrf)])
    _install_error_pages(app)


class ConsoleSessionMiddleware(SessionMiddleware):
    """Starlette's signed-cookie sessions, stepped over where they can do nothing.

    Outside the console (the API, health, metrics) nothing writes the session; the API only
    reads it, for a console download link (``app.deps._console_user``). So a request there
    without the session cookie gets the empty session it would have got, without the
    cookie parsing and the wrapped ``send`` that every API call paid for; with the cookie
    (or on a console page) it takes Starlette's full path, expiry refresh included.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].startswith(NOT_CONSOLE)
            and not _may_carry_cookie(scope, self.session_cookie.encode())
        ):
            scope["session"] = {}
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _may_carry_cookie(scope: Scope, name: bytes) -> bool:
    """Whether a ``Cookie`` header mentions ``name`` (a false alarm takes the full path)."""
    return any(key == b"cookie" and name in value for key, value in scope["headers"])


def is_console(request: Request) -> bool:
    return not request.url.path.startswith(NOT_CONSOLE)


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    """People get a page in their language with the reason, never a stack trace."""
    locale = i18n.pick_locale(request)
    html = (
        environment(locale)
        .get_template("error.html")
        .render(
            status=status,
            detail=detail,
            locale=locale,
            user=None,
            principal=None,
            csrf="",
            full_path=request.url.path,
            flashes=[],
        )
    )
    return HTMLResponse(html, status_code=status)


def _install_error_pages(app: FastAPI) -> None:
    """Console paths get HTML error pages; the API keeps its problem+json handlers."""
    handlers: dict[Any, Handler] = dict(app.exception_handlers)

    def wrap(kind: Any, page: Callable[[Request, Any], Response]) -> None:
        original = handlers[kind]

        async def handle(request: Request, exc: Any) -> Response:
            if is_console(request):
                return page(request, exc)
            result = original(request, exc)
            return await result if isinstance(result, Awaitable) else result

        app.add_exception_handler(kind, handle)

    wrap(AppError, lambda r, e: error_page(r, e.status, _detail(r, e)))
    wrap(StarletteHTTPException, lambda r, e: error_page(r, e.status_code, str(e.detail)))
    wrap(RequestValidationError, lambda r, e: error_page(r, 422, _first_error(e)))
    wrap(Exception, _unexpected)
    app.add_exception_handler(LoginRequired, lambda r, e: login_redirect(r))


def _detail(request: Request, exc: AppError) -> str:
    """Our own refusals speak the page's language; the API's details are shown as they are."""
    if isinstance(exc, CsrfRejected):
        translate = i18n.translations(i18n.pick_locale(request))
        return translate.gettext("The form has expired; reload the page and try again.")
    return exc.detail


def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s", request.url.path, exc_info=exc)
    return error_page(request, 500, "an unexpected error occurred")


def _first_error(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"] if p not in ("body", "query", "path"))
    return f"{where}: {first['msg']}"
