"""Typed errors carrying their HTTP status, rendered as RFC 9457 ``application/problem+json``.

Services raise these; one set of handlers renders them. 404/409/412 are business outcomes,
never 500s. Anything unexpected becomes a generic 500 problem without internals.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger(__name__)


class AppError(Exception):
    status = 400
    type = "about:blank"
    title = "Bad request"
    headers: Mapping[str, str] | None = None

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class InvalidInput(AppError):
    status = 422
    type = "/problems/invalid-input"
    title = "Invalid input"


class Unauthorized(AppError):
    status = 401
    type = "/problems/unauthorized"
    title = "Authentication required"


class Forbidden(AppError):
    status = 403
    type = "/problems/forbidden"
    title = "Forbidden"


class NotFound(AppError):
    status = 404
    type = "/problems/not-found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    type = "/problems/conflict"
    title = "Conflict"


class PreconditionFailed(AppError):
    status = 412
    type = "/problems/precondition-failed"
    title = "Precondition failed"


class Unavailable(AppError):
    """A transient condition (busy database, held lock, exhausted pool): retry later."""

    status = 503
    type = "/problems/unavailable"
    title = "Service unavailable"


RETRY_AFTER_SECONDS = "2"
# Set on a response whose transaction met a deadlock or serialization failure, so
# app.common.retry runs the request again; stripped before anything leaves the server.
RETRY_MARKER = "x-zhuqi-retry-transaction"
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure


def is_retryable(exc: BaseException) -> bool:
    """A database error that a fresh attempt of the same transaction may not meet again."""
    orig: Any = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) in RETRYABLE_SQLSTATES


class PreconditionRequired(AppError):
    status = 428
    type = "/problems/precondition-required"
    title = "Precondition required"


class TooManyRequests(AppError):
    status = 429
    type = "/problems/too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}


class CalendarUnavailable(AppError):
    """A working-day clock reached a year the official holiday calendar does not know yet.

    The State Council publishes each year's holidays late in the year before; the package
    that carries them (chinese-calendar) must be upgraded then, or the operator types them
    into ``ZHUQI_HOLIDAY_FILE`` (:mod:`app.holiday_file`). Guessing would misplace
    deadlines around the Spring Festival and National Day, so we refuse instead.
    """

    status = 503
    type = "/problems/holiday-calendar-unavailable"
    title = "Holiday calendar does not cover this date"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    instance: str = "",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    all_headers = dict(headers or {})
    if status == 401:
        all_headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=all_headers or None
    )


_MODEL_LEVEL_FIELD = re.compile(r"^(?:Value error, )?([a-z_][a-z0-9_]*): ")


def _field_of(error: Mapping[str, Any]) -> str:
    """Dotted path of the offending field, without the ``body``/``query`` root.

    Cross-field (model-level) validators cannot set a location; by convention their message
    starts with ``"<field>: "``, which names the field instead.
    """
    parts = [str(p) for p in error["loc"] if p not in ("body", "query", "path", "header")]
    match = _MODEL_LEVEL_FIELD.match(str(error.get("msg", "")))
    if match and error.get("type") == "value_error":
        parts.append(match.group(1))
    return ".".join(parts) or ".".join(str(p) for p in error["loc"])


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    def _app_error(request: Request, exc: AppError) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status == 503:
            headers.setdefault("Retry-After", RETRY_AFTER_SECONDS)
        return problem(
            exc.status,
            exc.title,
            exc.detail,
            type_=exc.type,
            instance=request.url.path,
            headers=headers,
            field=exc.field,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_of(e), "message": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return problem(
            422,
            "Invalid input",
            f"{first['field']}: {first['message']}",
            type_=InvalidInput.type,
            instance=request.url.path,
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Framework errors (404 route, 405 with its ``Allow``, 400 unparsable body) keep headers."""
        return problem(
            exc.status_code,
            str(exc.detail),
            str(exc.detail),
            instance=request.url.path,
            headers=exc.headers,
        )

    @app.exception_handler(StaleDataError)
    def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        """A concurrent writer won. With ``If-Match`` that is a stale version: always 412."""
        error: AppError = (
            PreconditionFailed("the resource was changed by someone else; reload and retry")
            if "if-match" in request.headers
            else Conflict("the resource was changed by someone else; reload and retry")
        )
        return problem(
            error.status, error.title, error.detail, type_=error.type, instance=request.url.path
        )

    @app.exception_handler(IntegrityError)
    def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        logger.info("integrity error on %s: %s", request.url.path, exc.orig)
        return problem(
            409,
            "Conflict",
            "the change conflicts with stored data",
            type_=Conflict.type,
            instance=request.url.path,
        )

    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(OperationalError)
    def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        """Pool exhausted, statement timeout, lock wait, lost connection: transient, so 503.

        The client is told when to retry; nothing was committed, because the request's
        transaction rolls back with the error.
        """
        logger.warning("database unavailable on %s: %s", request.url.path, _first_line(exc))
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
        if is_retryable(exc):
            headers[RETRY_MARKER] = "1"
        return problem(
            503,
            Unavailable.title,
            "the database is busy or unreachable; retry shortly",
            type_=Unavailable.type,
            instance=request.url.path,
            headers=headers,
        )

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
        """A value the database cannot hold (validation should have caught it first)."""
        logger.warning("value out of range on %s: %s", request.url.path, exc)
        return problem(
            422,
            "Invalid input",
            "a value is out of the range the database can store",
            type_=InvalidInput.type,
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s", request.url.path, exc_info=exc)
        return problem(
            500, "Internal error", "an unexpected error occurred", instance=request.url.path
        )
