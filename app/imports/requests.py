"""Checking a help-request file.

A request has no code of its own, so its natural key is (enterprise USCC, category, title):
a row whose enterprise already has a request of that category and title is taken as one
already imported and left as it is — by then its lifecycle (triage, offers) belongs to the
coordinators, and an import must not rewrite it. Re-importing a file therefore adds nothing.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from app.common.principal import Principal
from app.common.types import Uscc
from app.errors import InvalidInput
from app.imports import repository
from app.imports.columns import Vocabulary
from app.imports.reader import Table
from app.imports.rows import Batch, Insert, first_seen, validated
from app.models import RequestStatus
from app.requests import service as request_service
from app.requests.schemas import HelpRequestCreate

_USCC: TypeAdapter[str] = TypeAdapter(Uscc)


def _uscc(batch: Batch, row: int, record: dict[str, object]) -> str | None:
    try:
        return _USCC.validate_python(record.pop("uscc", ""))
    except ValidationError as exc:
        batch.fail(row, "uscc", exc.errors()[0]["msg"], exc.errors()[0]["type"])
        return None


def _checked(
    batch: Batch, row: int, record: dict[str, object], known: set[str]
) -> tuple[str, HelpRequestCreate] | None:
    uscc = _uscc(batch, row, record)
    data = validated(batch, row, HelpRequestCreate, record)
    if uscc is None or data is None:
        return None
    if data.category not in known:
        batch.fail(row, "category", f"unknown category {data.category}; see GET /api/v1/categories")
        return None
    try:
        request_service.check_wanted_by(data.wanted_by_date)
    except InvalidInput as exc:
        batch.fail(row, "wanted_by_date", exc.detail)
        return None
    return uscc, data


def prepare(session: Session, principal: Principal, table: Table, vocab: Vocabulary) -> Batch:
    batch = Batch(table=table)
    severities = repository.default_severities(session)
    good: list[tuple[int, str, HelpRequestCreate]] = []
    for row, record in table.records(vocab):
        checked = _checked(batch, row, dict(record), set(severities))
        if checked is not None:
            good.append((row, *checked))
    enterprises = repository.enterprises_by_uscc(session, {uscc for _, uscc, _ in good})
    stored = repository.request_keys(session, [e["id"] for e in enterprises.values()])
    seen: dict[tuple[str, str, str], int] = {}
    for row, uscc, data in good:
        enterprise = enterprises.get(uscc)
        if enterprise is None:
            batch.fail(row, "uscc", "no enterprise has this USCC; import the enterprises first")
            continue
        if not principal.covers_region(enterprise["region_code"]):
            batch.fail(row, "uscc", "this enterprise is outside your regions")
            continue
        if data.category is None:  # the API would suggest one; an import names it
            batch.fail(row, "category", "a category is required in an import")
            continue
        if not first_seen(batch, seen, (uscc, data.category, data.title), row, "title"):
            continue
        if (enterprise["id"], data.category, data.title) in stored:
            batch.unchanged += 1
            continue
        values: dict[str, Any] = data.model_dump(
            exclude={"enterprise_id", "severity", "extra_categories"}
        ) | {
            "extra_categories": [c for c in data.extra_categories or [] if c != data.category],
            "enterprise_id": enterprise["id"],
            "severity": data.severity or severities[data.category],
            "status": RequestStatus.SUBMITTED,
        }
        batch.inserts.append(Insert(values, enterprise["region_code"]))
    return batch
