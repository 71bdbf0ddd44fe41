"""Checking a provider file: idempotent on the contact e-mail, or on (kind, name,
organisation) for a provider without one; coordinators import providers based in their
regions (the same rule that lets them edit a provider)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.common.principal import Principal
from app.imports import repository
from app.imports.columns import Vocabulary
from app.imports.reader import Table
from app.imports.rows import Batch, Insert, Update, changes_of, first_seen, validated
from app.models import Vetting
from app.providers.schemas import ProviderCreate

Key = tuple[str, ...]


def _key(data: ProviderCreate) -> Key:
    if data.contact_email:
        return ("email", data.contact_email.lower())
    return ("name", data.kind.value, data.name, data.organisation)


def _stored_key(stored: dict[str, Any]) -> Key:
    if stored["contact_email"]:
        return ("email", str(stored["contact_email"]).lower())
    return ("name", str(stored["kind"]), stored["name"], stored["organisation"])


def _checked(
    batch: Batch, principal: Principal, row: int, record: dict[str, Any], known: set[str]
) -> ProviderCreate | None:
    data = validated(batch, row, ProviderCreate, record)
    if data is None:
        return None
    unknown = sorted(set(data.skills) - known)
    if unknown:
        batch.fail(row, "skills", f"unknown category {', '.join(unknown)}")
        return None
    if not principal.covers_region(data.home_region_code or ""):
        batch.fail(
            row,
            "home_region_code",
            "coordinators import providers based in their regions: "
            f"{data.home_region_code or 'no home region'} is not",
        )
        return None
    return data


def prepare(session: Session, principal: Principal, table: Table, vocab: Vocabulary) -> Batch:
    batch = Batch(table=table)
    known = set(vocab.categories.values())
    seen: dict[Key, int] = {}
    good: list[tuple[int, ProviderCreate, set[str]]] = []
    for row, record in table.records(vocab):
        data = _checked(batch, principal, row, dict(record), known)
        if data is None:
            continue
        key_field = "contact_email" if data.contact_email else "name"
        if first_seen(batch, seen, _key(data), row, key_field):
            good.append((row, data, set(record)))
    stored_rows = repository.providers_by(
        session,
        emails={d.contact_email.lower() for _, d, _ in good if d.contact_email},
        names={d.name for _, d, _ in good if not d.contact_email},
    )
    stored_by_key: dict[Key, dict[str, Any]] = {}
    for stored in stored_rows:
        stored_by_key.setdefault(_stored_key(stored), stored)
    for row, data, given in good:
        _plan(batch, principal, row, data, given, stored_by_key.get(_key(data)))
    return batch


def _plan(
    batch: Batch,
    principal: Principal,
    row: int,
    data: ProviderCreate,
    given: set[str],
    stored: dict[str, Any] | None,
) -> None:
    region = data.home_region_code or ""
    if stored is None:
        # Staff add, and so vet, providers (as provider_service.create does).
        values = data.model_dump() | {"vetting": Vetting.APPROVED, "vetted_at": utc_now()}
        batch.inserts.append(Insert(values, region))
        return
    if not principal.covers_region(stored["home_region_code"] or ""):
        batch.fail(row, "contact_email", "this provider is based outside your regions")
        return
    changes = changes_of(stored, data.model_dump(include=given))
    if changes:
        before = {k: stored[k] for k in changes}
        batch.updates.append(Update(stored["id"], changes, before, region))
    else:
        batch.unchanged += 1
