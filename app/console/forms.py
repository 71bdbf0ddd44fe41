"""Forms go through the API's own schemas and services; errors come back next to the field.

A form is parsed with the same Pydantic input schema the JSON endpoint uses, so a field's
message is the one the API's RFC 9457 body carries (``field`` + ``message``). The service call
runs inside a savepoint: when it raises, everything it flushed is rolled back and the page is
shown again with the message, so a refused form leaves nothing half-written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.errors import AppError, _field_of

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

FormErrors = dict[str, str]
_LIST_ITEM = re.compile(r"(\.\d+)+$")


class Invalid(Exception):
    """A form was refused; ``errors`` maps a field name (``""`` for the form) to a message."""

    def __init__(self, errors: FormErrors) -> None:
        super().__init__(errors)
        self.errors = errors


def clean(values: Mapping[str, str], *, keep_empty: tuple[str, ...] = ()) -> dict[str, Any]:
    """An empty optional field means "not given" (the schema's default), as in JSON."""
    return {k: v for k, v in values.items() if v != "" or k in keep_empty}


def parse(schema: type[M], data: Mapping[str, Any], *, rename: Mapping[str, str] = {}) -> M:
    """Validate with the API's schema; ``rename`` maps schema fields to form field names."""
    try:
        return schema.model_validate(dict(data))
    except ValidationError as exc:
        errors: FormErrors = {}
        for error in exc.errors():
            path = _field_of(error)
            name = _LIST_ITEM.sub("", path)  # one input holds the whole list
            name = rename.get(name, name)
            errors.setdefault(name, f"{path}: {error['msg']}")
        raise Invalid(errors) from exc


def version_read(values: Mapping[str, str]) -> str:
    """The version the page showed (its hidden ``version`` field), as the If-Match value the
    use case checks: an edit of a copy someone changed since is refused, not applied."""
    return f'"{values.get("version", "")}"'


def attempt(
    session: Session,
    action: Callable[[], T],
    *,
    rename: Mapping[str, str] = {},
) -> T:
    """Run one use case in a savepoint; its business errors become form errors."""
    try:
        with session.begin_nested():
            return action()
    except AppError as exc:
        field = rename.get(exc.field or "", exc.field or "")
        raise Invalid({field: exc.detail}) from exc
    except StaleDataError as exc:
        raise Invalid({"": "the record was changed by someone else; reload and retry"}) from exc
    except IntegrityError as exc:
        raise Invalid({"": "the change conflicts with stored data"}) from exc
