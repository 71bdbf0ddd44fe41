"""Writing a re-match's offers in a fixed number of statements, whatever their number.

One at a time an offer cost a provider lock, a staleness check, a capacity count, an insert,
a team-status read, a request update and an audit event with its region: about ten round
trips, 20 ms each under load (a sweep's batch of 250 re-match offers spent a minute here).
Here a group's offers are checked against facts read once (under the locks, taken in the
global order of ``app.common.locking``: enterprise → plan → request → provider), inserted in
one executemany, their requests' statuses set in at most three ``UPDATE``s, and their
``assignment.offered`` events (the full row, as :func:`app.assignments.offers.create_offer`
records it) written in one batch with their webhook deliveries. The rules re-check what a
concurrent transaction may have changed since the engine chose (the pair-level rules were
judged by the engine on its snapshot): the provider's availability and free capacity, and,
for a plan made in an earlier transaction, whether the request was offered or the pair
excluded or declared a conflict since. They apply in order, so a provider's capacity counts
the offers made earlier in the same group.

An offer refused is not the end of its request: unless the request is gone or its seats were
filled meanwhile, it still wants a provider, so it is handed back (``Written.refused``) for
the caller to plan again (:func:`app.assignments.rematch.apply` marks it for the worker).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.assignments import repository
from app.assignments.offers import OFFER_TTL
from app.assignments.reopen import sync_loaded
from app.common.clock import utc_now
from app.common.locking import lock_in_order
from app.common.principal import Principal
from app.events import service as event_service
from app.models import (
    REQUEST_CLOSED,
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    HelpRequest,
    RequestStatus,
    Vetting,
)
from app.models.base import table_of

logger = logging.getLogger(__name__)

WORKING = (AssignmentStatus.ACCEPTED, AssignmentStatus.ACTIVE)


@dataclass(frozen=True)
class Choice:
    """One offer the engine chose: the pair, its score and the breakdown to store."""

    request_id: int
    provider_id: int
    score: float
    breakdown: dict[str, Any]


@dataclass
class _Facts:
    """What the checks read, once per group, after the locks."""

    requests: dict[int, Any]  # id → (status, providers_wanted, enterprise_id, region_code)
    providers: dict[int, Any]  # id → (active, vetting, capacity)
    load: Counter[int]
    held: set[int] = field(default_factory=set)  # requests whose every seat is taken
    seats: Counter[int] = field(default_factory=Counter)  # request → open assignments
    excluded: set[tuple[int, int]] = field(default_factory=set)  # (request, provider)
    conflicts: set[tuple[int, int]] = field(default_factory=set)  # (provider, enterprise)


@dataclass(frozen=True)
class Written:
    """The offers made (loaded), and the requests that still want a provider because an
    offer of theirs was refused (its provider is gone, unavailable or full now, or the pair
    was forbidden since): planning them again gives them one that fits."""

    made: list[Assignment] = field(default_factory=list)
    refused: tuple[int, ...] = ()


def write_offers(
    session: Session,
    choices: Sequence[Choice],
    *,
    actor: Principal | None,
    planned_apart: bool,
) -> Written:
    """Make the offers among ``choices`` that still pass the checks.

    ``planned_apart``: the choices were made in an earlier transaction, so an offer is also
    skipped when its request was offered meanwhile or its pair excluded since."""
    if not choices:
        return Written()
    session.flush()  # the statements below read and write past the ORM
    request_ids = sorted({c.request_id for c in choices})
    provider_ids = sorted({c.provider_id for c in choices})
    paths = session.execute(repository.request_paths(request_ids)).all()
    lock_in_order(
        session,
        enterprises=[p.enterprise_id for p in paths],
        plans=[p.plan_id for p in paths],
        requests=request_ids,
        providers=provider_ids,
    )
    facts = _read(session, request_ids, provider_ids, planned_apart)
    kept, refused = _checked(choices, facts, planned_apart)
    if not kept:
        return Written(refused=refused)
    now = utc_now()
    table = table_of(Assignment)
    rows = [_row(c, now) for c in kept]
    made_ids = [i for (i,) in session.execute(insert(table).returning(table.c.id), rows)]
    made = list(session.scalars(repository.by_ids(made_ids)))
    _set_team_statuses(session, facts, sorted({c.request_id for c in kept}), now)
    event_service.record_many(
        session,
        actor=actor,
        changes=(
            event_service.Change(
                action="assignment.offered",
                entity_type="assignments",
                entity_id=a.id,
                region_code=facts.requests[a.request_id].region_code or "",
                after=event_service.snapshot(a),
            )
            for a in made
        ),
    )
    return Written(made, refused)


def _read(
    session: Session, request_ids: list[int], provider_ids: list[int], planned_apart: bool
) -> _Facts:
    facts = _Facts(
        requests={r.id: r for r in session.execute(repository.request_facts(request_ids))},
        providers={p.id: p for p in session.execute(repository.provider_facts(provider_ids))},
        load=Counter(dict(session.execute(repository.open_load(provider_ids)).all())),
    )
    if not planned_apart:
        return facts
    of_enterprise: dict[int, list[int]] = defaultdict(list)
    for r in facts.requests.values():
        of_enterprise[r.enterprise_id].append(r.id)
    facts.seats = Counter(r for r, _ in session.execute(repository.open_statuses(request_ids)))
    facts.held = {  # a team's other members hold their own seats, not the one re-matched
        r.id for r in facts.requests.values() if facts.seats[r.id] >= r.providers_wanted
    }
    for request_id, enterprise_id, provider_id in session.execute(
        repository.exclusions_of(request_ids, sorted(of_enterprise), provider_ids)
    ):  # a request's own exclusion, or one of its whole enterprise
        for r in [request_id] if request_id is not None else of_enterprise[enterprise_id or 0]:
            facts.excluded.add((r, provider_id))
    conflicts = repository.conflicts_of(provider_ids, sorted(of_enterprise))
    facts.conflicts = {(p, e) for p, e in session.execute(conflicts)}
    return facts


def _why_not(choice: Choice, facts: _Facts, planned_apart: bool) -> tuple[str, bool] | None:
    """Why this offer cannot be made now, and whether its request still wants a provider
    (None: it can be made); the per-pair rules, in order."""
    request = facts.requests.get(choice.request_id)
    provider = facts.providers.get(choice.provider_id)
    if request is None:
        return "its request is gone", False
    if request.status in REQUEST_CLOSED:  # withdrawn (or settled) after its plan was made
        return f"its request is {request.status.value}", False
    if planned_apart and choice.request_id in facts.held:
        return "its seats were filled since its plan", False
    if provider is None:
        return f"provider {choice.provider_id} is gone", True
    if planned_apart and (
        (choice.request_id, choice.provider_id) in facts.excluded
        or (choice.provider_id, request.enterprise_id) in facts.conflicts
    ):
        return "the pair was forbidden since its plan", True
    if not provider.active or provider.vetting != Vetting.APPROVED:
        return f"provider {provider.id} is not available", True
    if provider.capacity - facts.load[provider.id] <= 0:
        return f"provider {provider.id} has no free capacity", True
    return None


def _checked(
    choices: Sequence[Choice], facts: _Facts, planned_apart: bool
) -> tuple[list[Choice], tuple[int, ...]]:
    """The choices that pass, in order, and the requests refused that still want a provider:
    each kept offer takes a slot of its provider and (the staleness rule) makes its request
    held for the choices after it."""
    kept: list[Choice] = []
    refused: set[int] = set()
    for choice in choices:
        why = _why_not(choice, facts, planned_apart)
        if why is not None:
            reason, wanted = why
            logger.info("re-match of request %s skipped: %s", choice.request_id, reason)
            if wanted:
                refused.add(choice.request_id)
            continue
        kept.append(choice)
        facts.load[choice.provider_id] += 1
        facts.seats[choice.request_id] += 1
        wanted_seats = facts.requests[choice.request_id].providers_wanted
        if facts.seats[choice.request_id] >= wanted_seats:
            facts.held.add(choice.request_id)
    return kept, tuple(sorted(refused - facts.held))


def _row(choice: Choice, now: datetime) -> dict[str, Any]:
    return {
        "request_id": choice.request_id,
        "provider_id": choice.provider_id,
        "origin": AssignmentOrigin.REMATCH,
        "status": AssignmentStatus.OFFERED,
        "score": choice.score,
        "breakdown": choice.breakdown,
        "match_run_id": None,
        "offered_at": now,
        "offer_expires_at": now + OFFER_TTL,
    }


def _set_team_statuses(
    session: Session, facts: _Facts, request_ids: list[int], now: datetime
) -> None:
    """Each request's status once its offers are made (``offers.team_status``): ``matched``
    when every seat it wants holds an open assignment (``in_progress`` if one works on it),
    ``triaged`` while a seat is empty. One ``UPDATE`` per target status."""
    open_by_request: dict[int, list[AssignmentStatus]] = defaultdict(list)
    for request_id, status in session.execute(repository.open_statuses(request_ids)):
        open_by_request[request_id].append(status)
    targets: dict[RequestStatus, list[int]] = defaultdict(list)
    for request_id in request_ids:
        statuses = open_by_request[request_id]
        if len(statuses) < facts.requests[request_id].providers_wanted:
            target = RequestStatus.TRIAGED
        elif WORKING[0] in statuses or WORKING[1] in statuses:
            target = RequestStatus.IN_PROGRESS
        else:
            target = RequestStatus.MATCHED
        if facts.requests[request_id].status != target:
            targets[target].append(request_id)
    for target, ids in sorted(targets.items()):
        moved = session.execute(repository.set_request_status(ids, target, now)).all()
        sync_loaded(session, HelpRequest, moved)
