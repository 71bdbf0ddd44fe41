from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query

from app.common.schemas import problem_responses
from app.common.types import RegionPrefix
from app.deps import AdminOnly, CurrentPrincipal, DbSession, Staff
from app.errors import Forbidden
from app.models import Notification
from app.supervision import service as supervision_service
from app.supervision.schemas import BoardRead, NotificationRead, SweepRead

router = APIRouter(tags=["supervision"])


@router.get("/supervision", response_model=BoardRead, responses=problem_responses(401, 403))
def supervision_board(
    session: DbSession,
    principal: Staff,
    region: Annotated[RegionPrefix | None, Query(description="Narrow to one region prefix")] = None,
) -> supervision_service.Board:
    """Overdue offers, first follow-ups and requests, and the ageing of the open backlog."""
    if region and not principal.covers_region(region):
        raise Forbidden(f"region {region} is outside your regions", field="region")
    return supervision_service.board(session, principal=principal, region=region)


@router.post("/supervision/sweep", response_model=SweepRead, responses=problem_responses(401, 403))
def sweep_now(session: DbSession, _admin: AdminOnly) -> supervision_service.SweepReport:
    """Run the deadline sweep now (the worker runs it on its own every few minutes)."""
    return supervision_service.sweep(session)


@router.get(
    "/notifications", response_model=list[NotificationRead], responses=problem_responses(401)
)
def list_notifications(session: DbSession, principal: CurrentPrincipal) -> Sequence[Notification]:
    """Your reminders; coordinators also see those of their regions, admins all."""
    return supervision_service.notifications_for(session, principal=principal)
