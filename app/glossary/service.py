"""The glossary admins extend at run time; every match run receives it as data.

The engine ships a glossary (``matching/scoring/data/glossary.json``) that bridges
colloquial Chinese, providers' jargon and English. Vocabulary moves faster than releases
(new loan products, new slang for late payment), so admins add entries here; the encoder
hands the engine the shipped glossary plus every entry (:func:`compiled`), so ``matching``
stays a pure library that never reads the database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import matching
from app.common.pagination import PageParams, paginate
from app.common.principal import Principal
from app.common.schemas import Page
from app.errors import Conflict, InvalidInput, NotFound
from app.events import service as event_service
from app.glossary.schemas import GlossaryEntryRead
from app.models import GlossaryEntry
from matching.scoring.glossary import extended_glossary, shipped_data


def _shipped_ids() -> set[str]:
    return {c["id"] for c in shipped_data()["concepts"]}


def read(entry: GlossaryEntry) -> GlossaryEntryRead:
    found = GlossaryEntryRead.model_validate(entry)
    return found.model_copy(update={"extends_shipped": entry.concept in _shipped_ids()})


def list_(session: Session, *, page: PageParams) -> Page[GlossaryEntryRead]:
    statement = select(GlossaryEntry)
    return paginate(session, statement, GlossaryEntry.id, page, read, count=True)


def get(session: Session, entry_id: int) -> GlossaryEntry:
    entry = session.get(GlossaryEntry, entry_id)
    if entry is None:
        raise NotFound(f"glossary entry {entry_id} not found")
    return entry


def create(
    session: Session, *, principal: Principal, concept: str, zh: list[str], en: list[str]
) -> GlossaryEntry:
    """Add terms to a shipped concept or start a new one (one entry per concept)."""
    if session.scalar(select(GlossaryEntry.id).where(GlossaryEntry.concept == concept)):
        raise Conflict(f"concept {concept} already has an entry; edit it", field="concept")
    entry = GlossaryEntry(concept=concept, zh=_unique(zh), en=_unique(en))
    session.add(entry)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent create of the same concept
        raise Conflict(f"concept {concept} already has an entry", field="concept") from None
    event_service.record(session, actor=principal, action="glossary.created", entity=entry)
    return entry


def update(
    session: Session, *, principal: Principal, entry: GlossaryEntry, changes: dict[str, Any]
) -> GlossaryEntry:
    before = event_service.snapshot(entry)
    terms = {name: changes.get(name) for name in ("zh", "en")}
    kept = {name: getattr(entry, name) if given is None else given for name, given in terms.items()}
    if not kept["zh"] and not kept["en"]:  # as at creation; an empty entry is withdrawn instead
        raise InvalidInput("give at least one Chinese or English term", field="zh")
    for name, given in terms.items():
        if given is not None:
            setattr(entry, name, _unique(given))
    session.flush()
    event_service.record(
        session, actor=principal, action="glossary.updated", entity=entry, before=before
    )
    return entry


def delete(session: Session, *, principal: Principal, entry: GlossaryEntry) -> None:
    """Withdraw an entry: the next match run uses the shipped glossary without its terms
    (a shipped concept keeps its shipped terms). The event keeps what was removed."""
    before = event_service.snapshot(entry)
    session.delete(entry)
    session.flush()
    event_service.record(
        session, actor=principal, action="glossary.deleted", entity=entry, before=before, after={}
    )


def _unique(terms: list[str]) -> list[str]:
    return list(dict.fromkeys(terms))


def compiled(session: Session) -> matching.Glossary | None:
    """The glossary a run uses: the shipped one (None) plus every admin entry."""
    rows = session.execute(
        select(GlossaryEntry.concept, GlossaryEntry.zh, GlossaryEntry.en).order_by(GlossaryEntry.id)
    ).all()
    if not rows:
        return None
    return extended_glossary(tuple((c, tuple(zh), tuple(en)) for c, zh, en in rows))
