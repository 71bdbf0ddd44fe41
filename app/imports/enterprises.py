"""Checking an enterprise file: idempotent on the USCC, inside the caller's regions."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.common.principal import Principal
from app.enterprises.schemas import EnterpriseCreate
from app.imports import repository
from app.imports.columns import Vocabulary
from app.imports.reader import Table
from app.imports.rows import Batch, Insert, Update, changes_of, first_seen, validated


def prepare(session: Session, principal: Principal, table: Table, vocab: Vocabulary) -> Batch:
    batch = Batch(table=table)
    now = utc_now()
    seen: dict[str, int] = {}
    good: list[tuple[int, EnterpriseCreate, set[str]]] = []
    for row, record in table.records(vocab):
        data = validated(batch, row, EnterpriseCreate, record)
        if data is None or not first_seen(batch, seen, data.uscc, row, "uscc"):
            continue
        if not principal.covers_region(data.region_code):
            batch.fail(row, "region_code", f"region {data.region_code} is outside your regions")
            continue
        good.append((row, data, set(record)))
    existing = repository.enterprises_by_uscc(session, [d.uscc for _, d, _ in good])
    for row, data, given in good:
        stored = existing.get(data.uscc)
        if stored is None:
            # Staff set the tier, so it is verified (as enterprise_service.create does).
            values = data.model_dump() | {"claimed_tier": None, "tier_verified_at": now}
            batch.inserts.append(Insert(values, data.region_code))
            continue
        if not principal.covers_region(stored["region_code"]):
            batch.fail(row, "uscc", "this enterprise is registered outside your regions")
            continue
        # Only the cells the file fills in change a stored enterprise.
        changes = changes_of(stored, data.model_dump(include=given - {"uscc"}))
        if "tier" in changes:
            changes |= {"claimed_tier": None, "tier_verified_at": now}
        if changes:
            before = {k: stored[k] for k in changes}
            batch.updates.append(Update(stored["id"], changes, before, data.region_code))
        else:
            batch.unchanged += 1
    return batch
