"""Incremental re-matching after a decline, an expiry, a pause or an unsatisfied rating.

Only the named requests are decided again; every other assignment stays as it is and holds
its provider's capacity (as load), so the engine picks the best remaining provider — the
request's runner-up first, if it still has room — without disturbing anyone else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

import matching
from app.assignments import offers
from app.assignments.encode import Scope, breakdown, snapshot
from app.auth.principal import Principal
from app.errors import AppError
from app.events import service as event_service
from app.models import Assignment, AssignmentOrigin, HelpRequest
from app.plans import service as plan_service

logger = logging.getLogger(__name__)


def rematch_requests(
    session: Session,
    *,
    request_ids: Iterable[int],
    actor: Principal | None,
    weights: matching.Weights | None = None,
) -> list[Assignment]:
    """Offer each request its best allowed provider now; returns the new offers."""
    ids = tuple(sorted(set(request_ids)))
    if not ids:
        return []
    snap = snapshot(session, Scope(request_ids=ids), skilled_only=True)
    if len(snap.problem.requests) == 0:
        return []
    result = matching.match(snap.problem, weights)
    offers = [_offer(session, result, a, actor) for a in result.assignments]
    for unmatched in result.unmatched:
        request = session.get(HelpRequest, unmatched.request)
        if request is not None:
            event_service.record(
                session,
                actor=actor,
                action="request.unmatched",
                entity=request,
                region_code=snap.request_region.get(request.id, ""),
                after={
                    "reason": unmatched.reason.value,
                    "message_en": unmatched.message_en,
                    "message_zh": unmatched.message_zh,
                },
            )
    for enterprise_id in sorted({snap.request_enterprise[o.request_id] for o in offers if o}):
        plan_service.attach_requests(session, enterprise_id=enterprise_id, actor=actor)
    return [o for o in offers if o is not None]


def _offer(
    session: Session, result: matching.MatchResult, chosen: Any, actor: Principal | None
) -> Assignment | None:
    request = session.get(HelpRequest, chosen.request)
    provider = offers.lock_provider(session, chosen.provider)
    if request is None:
        return None
    try:
        offers.check_pair_allowed(session, request, provider)
    except AppError as exc:  # capacity went elsewhere since the snapshot: leave it for a run
        logger.info("re-match of request %s skipped provider %s: %s", request.id, provider.id, exc)
        return None
    return offers.create_offer(
        session,
        request=request,
        provider=provider,
        origin=AssignmentOrigin.REMATCH,
        actor=actor,
        score=chosen.score,
        breakdown=breakdown(result, request.id),
    )
