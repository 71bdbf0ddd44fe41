"""Verifying an enterprise's claimed cultivation tier (it drives policy eligibility and the
request priority, so it is staff-owned: until verified, the verified ``tier`` applies)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.common.principal import Principal
from app.common.schemas import StaffDecision
from app.errors import Conflict, Forbidden
from app.events import service as event_service
from app.models import Enterprise, Tier
from app.notifications import outbox


def claim(enterprise: Enterprise, tier: Tier) -> None:
    """The enterprise asks for ``tier``; claiming the tier it already has withdraws a claim."""
    enterprise.claimed_tier = None if tier == enterprise.tier else tier


def set_verified(enterprise: Enterprise, tier: Tier, reason: str = "") -> None:
    """Staff set the tier directly: it is verified, and any pending claim is settled."""
    enterprise.tier, enterprise.claimed_tier = tier, None
    enterprise.tier_verified_at = utc_now()
    if reason:
        enterprise.tier_reason = reason


def decide(
    session: Session, *, principal: Principal, enterprise: Enterprise, data: StaffDecision
) -> Enterprise:
    if not principal.covers_region(enterprise.region_code):
        raise Forbidden("only coordinators of the enterprise's region verify its tier")
    claimed = enterprise.claimed_tier
    if claimed is None:
        raise Conflict("the enterprise has no tier claim waiting", field="claimed_tier")
    before = event_service.snapshot(enterprise)
    approve = data.decision == "approve"
    if approve:
        set_verified(enterprise, claimed, data.reason)
    else:
        enterprise.claimed_tier, enterprise.tier_reason = None, data.reason
        enterprise.tier_verified_at = utc_now()
    session.flush()
    action = "enterprise.tier_verified" if approve else "enterprise.tier_rejected"
    event_id = event_service.record(
        session,
        actor=principal,
        action=action,
        entity=enterprise,
        region_code=enterprise.region_code,
        before=before,
        after={**event_service.snapshot(enterprise), "claimed": claimed.value},
    )
    session.flush()
    outbox.enqueue(
        session,
        recipients=outbox.users_of(session, enterprise_id=enterprise.id),
        kind=action,
        subject=(
            f"企业梯度认定{'通过' if approve else '未通过'} / "
            f"tier {claimed.value} {'verified' if approve else 'rejected'}"
        ),
        body=data.reason,
        payload={
            "enterprise_id": enterprise.id,
            "claimed_tier": claimed.value,
            "approved": approve,
        },
        region_code=enterprise.region_code,
        cause=f"event:{event_id}" if event_id is not None else f"enterprise:{enterprise.id}",
    )
    return enterprise
