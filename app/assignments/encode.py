"""The one place that knows both database rows and the engine's ``matching.Problem``.

Reads a consistent snapshot of requests, providers (with their current open load from every
source), conflicts, exclusions and pins, and turns an engine result back into rows' terms.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Text,
    cast,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

import matching
from app.assignments import repository as assignment_repository
from app.assignments import unmatched as unmatched_store
from app.assignments.transitions import OPEN
from app.common.clock import today
from app.common.idsets import in_ids
from app.glossary import service as glossary_service
from app.models import (
    Assignment,
    AssignmentStatus,
    Enterprise,
    Exclusion,
    HelpRequest,
    Provider,
    ProviderConflict,
    RequestStatus,
    Vetting,
)
from app.taxonomy import service as taxonomy_service

#: Only triaged requests enter a run: triage is the coordinator's gate (category, urgency and
#: fields checked). A request still ``submitted`` is left out and counted as such.
MATCHABLE = (RequestStatus.TRIAGED,)
#: Statuses a run leaves out that a coordinator should hear about, keyed by why.
LEFT_OUT = {RequestStatus.SUBMITTED: "untriaged"}


_S = TypeVar("_S", Select[HelpRequest, Enterprise], Select[RequestStatus, int])


@dataclass(frozen=True)
class Scope:
    """Which requests a run decides: a region prefix, categories, or explicit ids."""

    region: str = ""
    categories: tuple[str, ...] = ()
    request_ids: tuple[int, ...] = ()

    def statement(self) -> Select[HelpRequest, Enterprise]:
        return self._scoped(
            select(HelpRequest, Enterprise)
            .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
            .where(HelpRequest.status.in_(MATCHABLE))
            .order_by(HelpRequest.id)
        )

    def left_out_statement(self) -> Select[RequestStatus, int]:
        """Requests of the scope a run leaves out because they are not triaged, per status."""
        return self._scoped(
            select(HelpRequest.status, func.count())
            .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
            .where(HelpRequest.status.in_(list(LEFT_OUT)))
            .group_by(HelpRequest.status)
        )

    def _scoped(self, statement: _S) -> _S:
        if self.region:
            statement = statement.where(Enterprise.region_code.startswith(self.region))
        if self.categories:
            statement = statement.where(HelpRequest.category.in_(self.categories))
        if self.request_ids:
            statement = statement.where(in_ids(HelpRequest.id, self.request_ids))
        return statement


@dataclass
class Snapshot:
    problem: matching.Problem
    request_region: dict[int, str] = field(default_factory=dict)
    request_enterprise: dict[int, int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)


def _paused(starts: date | None, ends: date | None, on: date) -> bool:
    if starts is None and ends is None:
        return False
    return (starts is None or starts <= on) and (ends is None or on <= ends)


def _json_text(column: Any) -> ColumnElement[str]:
    """A JSON column read as its stored text (SQL NULL as ``null``), for :func:`_decode_all`."""
    return func.coalesce(cast(column, Text), literal("null"))


def _decode_all(texts: Sequence[str]) -> list[Any]:
    """Decode many JSON documents with one ``json.loads``: the driver's or SQLAlchemy's
    decoding of each value on its own (30,000 small documents for 10,000 providers) cost
    more than the rest of the provider read together."""
    decoded: list[Any] = json.loads(f"[{','.join(texts)}]")
    return decoded


_REQUEST_COLUMNS = (
    HelpRequest.id,
    HelpRequest.category,
    HelpRequest.title,
    HelpRequest.description,
    HelpRequest.urgency,
    _json_text(HelpRequest.extra_categories),
    Enterprise.id,
    Enterprise.industry_code,
    Enterprise.region_code,
    Enterprise.tier,
    HelpRequest.providers_wanted,
)


def _request_rows(session: Session, scope: Scope) -> list[matching.RequestIn]:
    """The scope's requests as plain column tuples: a province's 80,000 rows load in a few
    seconds instead of the half minute that building ORM objects for them took."""
    rows = session.execute(scope.statement().with_only_columns(*_REQUEST_COLUMNS)).all()
    extras = _decode_all([row[5] for row in rows])
    return [
        matching.RequestIn(
            id=request_id,
            category=category,
            text=f"{title}\n{description}",
            industry=industry,
            region=region,
            enterprise=enterprise_id,
            urgency=urgency,
            tier=tier.value,
            extra_categories=tuple(extra or ()),
            wanted=wanted,
        )
        for (
            request_id,
            category,
            title,
            description,
            urgency,
            _,
            enterprise_id,
            industry,
            region,
            tier,
            wanted,
        ), extra in zip(rows, extras, strict=True)
    ]


def _team_members(session: Session, teams: Sequence[int]) -> dict[int, list[int]]:
    """Providers already offered or working on each team request (open assignments): they
    keep their seats, so the engine fills only the rest and never picks them twice."""
    members: dict[int, list[int]] = defaultdict(list)
    if teams:
        for request_id, provider_id in session.execute(
            select(Assignment.request_id, Assignment.provider_id)
            .where(in_ids(Assignment.request_id, teams), Assignment.status.in_(OPEN))
            .order_by(Assignment.request_id, Assignment.provider_id)
        ):
            members[request_id].append(provider_id)
    return members


def _seats_left(
    rows: list[matching.RequestIn], members: dict[int, list[int]]
) -> list[matching.RequestIn]:
    return [
        dataclasses.replace(r, wanted=max(1, r.wanted - len(members.get(int(r.id), ()))))
        for r in rows
    ]


def _stored_value(column: Any) -> ColumnElement[str]:
    """An enum column read as the stored value (a str, which equals its ``StrEnum`` member),
    without the enum's per-row result processing (thousands of rows per re-match)."""
    return type_coerce(column, String)


_PROVIDER_COLUMNS = (
    Provider.id,
    _stored_value(Provider.kind),
    _json_text(Provider.skills),
    Provider.expertise,
    _json_text(Provider.industries),
    _json_text(Provider.regions),
    Provider.remote_ok,
    Provider.capacity,
    Provider.paused_from_date,
    Provider.paused_until_date,
    Provider.active,
    _stored_value(Provider.vetting),
    Provider.rating,
)


def _providers(
    categories: Sequence[str] | None, must_have: Iterable[int]
) -> Select[*tuple[Any, ...]]:
    """Vetted providers, or only those with a skill in ``categories`` (plus ``must_have``).

    Unvetted providers never enter a snapshot; a pinned one (``must_have``) is loaded but
    marked unavailable, so the engine reports its pin as breaking a hard rule. Plain column
    tuples, not ORM objects: building 10,000 ``Provider`` instances was half a province
    run's snapshot."""
    statement = select(*_PROVIDER_COLUMNS).order_by(Provider.id)
    pins = list(must_have)
    statement = statement.where(
        or_(Provider.vetting == Vetting.APPROVED, in_ids(Provider.id, pins))
    )
    if categories:
        skilled = [Provider.skills[c].as_string().is_not(None) for c in sorted(set(categories))]
        statement = statement.where(or_(*skilled, in_ids(Provider.id, pins)))
    return statement


def _provider_table(
    session: Session, excluded_load: dict[int, int], statement: Select[*tuple[Any, ...]]
) -> matching.ProviderTable:
    """The providers of ``statement`` as the engine's columns, with their open load (less
    ``excluded_load``) and conflicts. Executed on the connection, not through the ORM, and
    turned into columns without a row object per provider: a re-match's snapshot reads most
    of the directory, and those two layers cost it a third of its reading."""
    load = dict(session.execute(assignment_repository.open_load()).all())
    conflicts: dict[int, list[int]] = defaultdict(list)
    for provider_id, enterprise_id in session.execute(
        select(ProviderConflict.provider_id, ProviderConflict.enterprise_id)
    ):
        conflicts[provider_id].append(enterprise_id)
    on = today()
    rows = session.connection().execute(statement).all()
    columns = list(zip(*rows, strict=True)) or [()] * len(_PROVIDER_COLUMNS)
    (
        ids,
        kinds,
        skills,
        expertise,
        industries,
        regions,
        remote,
        capacity,
        starts,
        ends,
        active,
        vetting,
        rating,
    ) = columns
    return matching.ProviderTable.from_columns(
        id=ids,
        kind=kinds,
        skills=[dict(levels) for levels in _decode_all(skills)],
        expertise=expertise,
        industries=_decode_all(industries),
        regions=_decode_all(regions),
        remote=remote,
        capacity=capacity,
        load=[max(0, load.get(p, 0) - excluded_load.get(p, 0)) for p in ids],
        paused=[_paused(s, e, on) for s, e in zip(starts, ends, strict=True)],
        active=[a and v == Vetting.APPROVED for a, v in zip(active, vetting, strict=True)],
        rating=rating,
        conflicts=[conflicts.get(p, ()) for p in ids],
    )


def _exclusions(
    session: Session, request_ids: Sequence[int], enterprise_ids: Sequence[int]
) -> list[matching.Exclusion]:
    """The forbidden pairs that can touch these requests, as plain columns.

    Every decline adds an exclusion, so the table grows for as long as the service runs;
    reading all of it (as ORM objects) made each one-request re-match pay for the province's
    whole history. The engine ignores exclusions naming requests or enterprises outside the
    problem, so this filter changes no result.
    """
    statement = (
        select(Exclusion.provider_id, Exclusion.request_id, Exclusion.enterprise_id)
        .where(
            or_(
                in_ids(Exclusion.request_id, request_ids),
                in_ids(Exclusion.enterprise_id, enterprise_ids),
            )
        )
        .order_by(Exclusion.id)
    )
    return [
        matching.Exclusion(provider=provider, request=request, enterprise=enterprise)
        for provider, request, enterprise in session.execute(statement)
    ]


def lexicon(session: Session) -> matching.Lexicon:
    """The taxonomy's labels and the glossary (shipped plus admins' entries), as data."""
    return matching.Lexicon(
        labels=taxonomy_service.labels(session), glossary=glossary_service.compiled(session)
    )


def skilled_providers(session: Session, category: str) -> matching.Problem:
    """The providers a re-match of ``category``'s requests reads (:func:`snapshot` with
    ``skilled_only``), in a problem without requests: what the text warm-up fits on."""
    return matching.Problem(
        requests=matching.RequestTable.from_rows([]),
        providers=_provider_table(session, {}, _providers([category], ())),
        lexicon=lexicon(session),
    )


def text_memo_inputs(session: Session, limit: int) -> tuple[list[str], matching.Glossary | None]:
    """What a re-match's text fit will look up in the engine's memo: vetted providers'
    expertise exactly as :func:`snapshot` hands it over (at most ``limit``, by id), and the
    glossary object of :func:`lexicon` (the memo knows a glossary by identity)."""
    texts = session.scalars(
        select(Provider.expertise)
        .where(Provider.vetting == Vetting.APPROVED)
        .order_by(Provider.id)
        .limit(limit)
    ).all()
    return list(texts), lexicon(session).glossary


def snapshot(
    session: Session,
    scope: Scope,
    *,
    pinned: Iterable[tuple[int, int]] = (),
    pinned_are_open: bool = False,
    skilled_only: bool = False,
    providers: Iterable[int] = (),
) -> Snapshot:
    """Build the engine's problem for ``scope``.

    ``pinned`` pairs are kept by the solver and consume capacity. When they are already open
    assignments (``pinned_are_open``) their slot is counted once, as a pin, not also as load.
    ``providers`` are loaded whatever their skills (a hand-made offer's provider, judged by
    the engine even when it lacks the category). ``skilled_only`` loads only providers with
    a skill in the requests' categories: a re-match
    of one request then reads dozens of providers, not the whole directory (the text model is
    fitted on fewer profiles, so scores can differ slightly from a full run's).
    """
    rows = _request_rows(session, scope)
    members = _team_members(session, [int(r.id) for r in rows if r.wanted > 1])
    rows = _seats_left(rows, members)
    pins = [(r, p) for r, p in pinned]
    in_scope = {request.id for request in rows}
    pins = [(r, p) for r, p in pins if r in in_scope]
    excluded_load: dict[int, int] = defaultdict(int)
    if pinned_are_open:
        for _, provider_id in pins:
            excluded_load[provider_id] += 1
    problem = matching.Problem(
        requests=matching.RequestTable.from_rows(rows),
        providers=_provider_table(
            session,
            excluded_load,
            _providers(
                [c for r in rows for c in (r.category, *r.extra_categories)]
                if skilled_only
                else None,
                [*(p for _, p in pins), *providers],
            ),
        ),
        exclusions=(
            *_exclusions(
                session,
                [int(r.id) for r in rows],
                sorted({int(r.enterprise) for r in rows}),
            ),
            *(matching.Exclusion(provider=p, request=r) for r, ps in members.items() for p in ps),
        ),
        pinned=tuple(pins),
        lexicon=lexicon(session),
    )
    return Snapshot(
        problem=problem,
        request_region={int(r.id): r.region for r in rows},
        request_enterprise={int(r.id): int(r.enterprise) for r in rows},
        left_out={
            LEFT_OUT[status]: int(n) for status, n in session.execute(scope.left_out_statement())
        },
    )


def breakdown(
    result: matching.MatchResult, request_id: int, provider_id: int | None = None
) -> dict[str, Any]:
    """What an assignment row stores to explain itself: features × weights, reasons,
    runners-up — and, for a team request, the team it belongs to (``team``: the providers
    this result gives the request, ``team_short``: seats still empty)."""
    team = result.team(request_id)
    chosen = next((a for a in team if a.provider == provider_id), None) if team else None
    chosen = chosen or result.assignment(request_id)
    if chosen is None:
        return {}
    explanation = chosen.explanation
    extra: dict[str, Any] = {}
    if len(team) > 1 or request_id in result.short:
        extra = {
            "team": [int(a.provider) for a in team],
            "team_short": int(result.short.get(request_id, 0)),
        }
    return extra | {
        "features": dict(explanation.features),
        "contributions": dict(explanation.contributions),
        "priority": explanation.priority,
        "slot_multiplier": explanation.slot_multiplier,
        "reason_zh": explanation.reason_zh,
        "reason_en": explanation.reason_en,
        "runners_up": [
            {"provider_id": c.provider, "score": c.score}
            for c in result.runners_up.get(request_id, ())[:5]
        ],
    }


def unmatched_rows(result: matching.MatchResult) -> list[dict[str, Any]]:
    """Every unmatched reason in its JSON form (run statistics, the diff)."""
    return [unmatched_store.structured(u) for u in result.unmatched]


#: Request ids stored per advice cell (the count is always stored in full).
ADVICE_REQUEST_IDS = 100


def advice_rows(result: matching.MatchResult) -> list[dict[str, Any]]:
    """The engine's recruitment advice as JSON rows for the run's statistics, ranked from 1
    (the rank is the cell's key for paging)."""
    return [
        {
            "rank": rank,
            "category": a.category,
            "region": a.region,
            "marginal_score": a.marginal_score,
            "provider_id": a.provider,
            "requests": len(a.requests),
            "request_ids": list(a.requests[:ADVICE_REQUEST_IDS]),
            "with_candidates": a.with_candidates,
            "slots_needed": a.slots_needed,
            "providers_needed": a.providers_needed,
            "exact": a.exact,
        }
        for rank, a in enumerate(result.advice, start=1)
    ]


def locked_pairs(session: Session, request_ids: Sequence[int]) -> list[tuple[int, int]]:
    """Pinned pairs a coordinator locked on drafts of these requests (one bound id set,
    however many requests the run has)."""
    rows = session.execute(
        select(Assignment.request_id, Assignment.provider_id).where(
            Assignment.locked.is_(True),
            in_ids(Assignment.request_id, request_ids),
            Assignment.status == AssignmentStatus.PROPOSED,
        )
    )
    return [(r, p) for r, p in rows]


def seats(session: Session, request_ids: Sequence[int]) -> dict[int, int]:
    """Providers each request still wants: ``providers_wanted`` minus its open assignments
    (at least 1: a request in a run wants someone)."""
    if not request_ids:
        return {}
    wanted = dict(
        session.execute(
            select(HelpRequest.id, HelpRequest.providers_wanted).where(
                in_ids(HelpRequest.id, request_ids)
            )
        ).all()
    )
    members = _team_members(session, [r for r, w in wanted.items() if w > 1])
    return {r: max(1, w - len(members.get(r, ()))) for r, w in wanted.items()}
