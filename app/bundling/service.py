"""What the domains below the plan call when their changes touch it: bundle an enterprise's
requests into its open plan, and move the plan on once every one of them is settled."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bundling import attach, repository
from app.common.clock import utc_now
from app.common.principal import Principal
from app.enterprises.repository import region_of
from app.events import service as event_service
from app.models import REQUEST_CLOSED, HelpRequest, Plan, PlanStatus


def attach_requests(session: Session, *, enterprise_id: int, actor: Principal | None) -> Plan:
    """Create or update the enterprise's open plan so it bundles all its unsettled requests
    (the one-enterprise case of :func:`app.bundling.attach.attach_many`)."""
    plan_id = attach.attach_many(session, enterprise_ids=[enterprise_id], actor=actor)
    plan = session.get(Plan, plan_id[enterprise_id], populate_existing=True)
    assert plan is not None  # just created or found under the enterprise's lock
    return plan


def touch(session: Session, plan: Plan, principal: Principal | None, action: str) -> None:
    """Every edit bumps the plan's version, so a concurrent editor's If-Match goes stale."""
    plan.updated_at = utc_now()
    session.flush()
    event_service.record(
        session, actor=principal, action=action, entity=plan, region_code=region_of(session, plan)
    )


def refresh_status(session: Session, plan_id: int | None, actor: Principal | None) -> None:
    """When every request is settled the plan moves to follow-up, ready to be closed."""
    plan = session.get(Plan, plan_id) if plan_id else None
    if plan is None or plan.status != PlanStatus.ACTIVE:
        return
    if not unsettled(session, plan):
        plan.status = PlanStatus.FOLLOW_UP
        touch(session, plan, actor, "plan.ready_to_close")


def unsettled(session: Session, plan: Plan) -> list[int]:
    """The ids of the plan's requests not yet resolved, withdrawn or declared unresolvable."""
    return list(
        session.scalars(
            select(HelpRequest.id).where(
                repository.of_plan(plan), HelpRequest.status.not_in(REQUEST_CLOSED)
            )
        )
    )
