"""Structured logs for the API, the workers and the CLI, configured once per process.

structlog renders both its own events and every stdlib ``logging`` record (uvicorn,
SQLAlchemy, our modules) through one ``ProcessorFormatter``: JSON lines when stderr is not a
terminal (containers, files, log shippers), coloured key=value lines when it is. The request
id bound by the middleware lives in a context variable, so every line logged while serving a
request carries it — in worker threads too, since Starlette copies the context into them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from functools import lru_cache
from typing import IO, Any, Final

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

HANDLER_NAME: Final = "zhuqi"
REDACTED: Final = "[redacted]"
SECRET_KEYS = re.compile(
    r"pass(word|wd)?|secret|token|authori[sz]ation|api[_-]?key|cookie|credential|signature",
    re.IGNORECASE,
)
# Credentials that can hide inside free text: URL userinfo, bearer tokens, our API keys,
# Standard Webhooks secrets.
SECRET_TEXT = (
    (re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+(?=@)"), REDACTED),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
    (re.compile(r"\bzq_[0-9a-f]+_[A-Za-z0-9_-]+"), REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), REDACTED),
)


# Every text any pattern above can match contains one of these: one search clears most values
# (every field of every access line) instead of four substitutions each.
_SECRET_HINT = re.compile(r"://|bearer|zq_|whsec_", re.IGNORECASE)


def scrub(text: str) -> str:
    """Credentials out of a free-text message (a DSN in an error, a header echoed back)."""
    if not _SECRET_HINT.search(text):
        return text
    for pattern, replacement in SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


@lru_cache(maxsize=4096)
def _names_a_secret(key: str) -> bool:
    """Memoised: log lines reuse a few dozen field names, and this runs on each field."""
    return SECRET_KEYS.search(key) is not None


def _scrub_value(key: str, value: Any) -> Any:
    if _names_a_secret(key):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, MutableMapping):
        return {k: _scrub_value(str(k), v) for k, v in value.items()}
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Last line of defence: no password, token, key or secret reaches a log line, whatever a
    caller passed. Keys that name a secret are blanked; string values are scrubbed."""
    return {key: _scrub_value(key, value) for key, value in event_dict.items()}


def _drop_uvicorn_colours(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """uvicorn passes a terminal-coloured copy of each message as an extra; one is enough."""
    event_dict.pop("color_message", None)
    return event_dict


def _shared_processors() -> list[Processor]:
    """Run on structlog events and on stdlib records alike, before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]


def configure_logging(
    level: str = "INFO", *, json: bool | None = None, stream: IO[str] | None = None
) -> None:
    """Route structlog and stdlib logging through one handler on stderr.

    Idempotent: a second call replaces the handler it installed and leaves other handlers
    (pytest's capture, for one) alone. ``json=None`` picks JSON unless stderr is a terminal.
    """
    stream = stream or sys.stderr
    as_json = not stream.isatty() if json is None else json
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.ExtraAdder(),
                _drop_uvicorn_colours,
                *_shared_processors(),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    global _DIRECT
    _DIRECT = DirectLine(handler, renderer)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # One access line per request comes from our middleware, with the route and request id.
    logging.getLogger("uvicorn.access").disabled = True


_SHARED_PROCESSORS: Final = _shared_processors()


class DirectLine:
    """Our handler's line for a structlog event dict, written without a ``LogRecord``.

    Through stdlib logging, an access line built two ``LogRecord`` objects (the logger's, and
    the copy ``ProcessorFormatter.format`` makes so that other handlers keep the original),
    went through the logger's and the handler's filters and locks and copied the event dict
    again, on every request, on the event loop. Where our handler is the only place the line
    would go (what ``configure_logging`` sets up; pytest's capture, or any handler or filter
    added later, sends lines the stdlib way again), the line is rendered by the renderer the
    handler's formatter ends with and written under the handler's lock, as
    ``StreamHandler.emit`` writes it: the same bytes.
    """

    __slots__ = ("handler", "render")

    def __init__(self, handler: logging.StreamHandler[IO[str]], render: Processor) -> None:
        self.handler = handler
        self.render = render

    def serves(self, logger: logging.Logger) -> bool:
        """Whether ``logger``'s INFO records reach our handler and nothing else, unfiltered."""
        handler = self.handler
        if handler.filters or handler.level > logging.INFO or logger.disabled:
            return False
        node: logging.Logger | None = logger
        while node is not None:
            if node.filters:
                return False
            if node.handlers and (node.parent is not None or node.handlers != [handler]):
                return False  # a handler below the root, or the root has others too
            if not node.propagate and node.parent is not None:
                return False  # the record stops before the root's handler
            node = node.parent
        return True

    def write(self, logger: logging.Logger, event_dict: EventDict) -> bool:
        """Write the line; ``False`` (nothing written) if it could not be rendered, for the
        caller to log it the stdlib way. A stream that fails is reported as
        ``StreamHandler.emit`` reports it (``handleError``), and the line is not retried."""
        handler = self.handler
        try:
            line = self.render(logger, "info", event_dict)
        except Exception:
            return False
        if not isinstance(line, str):
            return False
        handler.acquire()
        try:
            handler.stream.write(f"{line}{handler.terminator}")
            handler.flush()
        except Exception:
            handler.handleError(_record(logger, event_dict))
        finally:
            handler.release()
        return True


_DIRECT: DirectLine | None = None  # our handler's, once ``configure_logging`` has run


def log_info(logger: logging.Logger, event: str, /, **fields: Any) -> None:
    """``get_logger(name).info(event, **fields)`` for a line written on every request.

    The very same line: the shared processors (request context, level, logger name, time,
    redaction) build the event dict, and our handler's renderer renders it. What it skips is
    structlog's bound-logger dispatch and stdlib's ``makeRecord``/``findCaller`` walk up the
    stack, which nothing here reads, and, where our handler is the line's only destination,
    stdlib's records and handler chain altogether (:class:`DirectLine`).
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    event_dict: EventDict = {**fields, "event": event}
    for processor in _SHARED_PROCESSORS:
        event_dict = processor(logger, "info", event_dict)  # type: ignore[assignment]
    direct = _DIRECT
    if direct is not None and direct.serves(logger) and direct.write(logger, event_dict):
        return
    logger.handle(_record(logger, event_dict))


def _record(logger: logging.Logger, event_dict: EventDict) -> logging.LogRecord:
    """The INFO record of a structlog event dict, carrying what ``wrap_for_formatter``
    attaches, for our ``ProcessorFormatter``."""
    record = logging.LogRecord(logger.name, logging.INFO, __file__, 0, event_dict, (), None)
    record._logger = logger
    record._name = "info"
    return record


def direct_line() -> DirectLine | None:
    """The direct writer of our handler (tests compare its lines with stdlib's)."""
    return _DIRECT


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def current_request_id() -> str | None:
    """The id of the request being served (or of the run being executed), if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Bind context (``request_id``, ``run_id``) to every log line inside the block; ``None``
    values are left out."""
    with structlog.contextvars.bound_contextvars(
        **{k: v for k, v in values.items() if v is not None}
    ):
        yield
