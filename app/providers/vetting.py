"""Vetting: a self-registered provider is matched only once staff of its region approve it.

Approval is the gate the matching snapshot, publishing and every hand path check
(``Provider.vetting == approved``); the decision is audited and announced to the provider's
accounts through the outbox.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.common.principal import Principal
from app.common.schemas import StaffDecision
from app.errors import Conflict, Forbidden
from app.events import service as event_service
from app.models import Provider, Vetting
from app.notifications import outbox

_SUBJECT = {
    Vetting.APPROVED: "服务方审核通过 / your provider profile was approved",
    Vetting.REJECTED: "服务方审核未通过 / your provider profile was rejected",
}


def may_vet(principal: Principal, provider: Provider) -> bool:
    """Admins, or coordinators whose regions cover the provider's home region."""
    if principal.is_admin:
        return True
    return bool(provider.home_region_code) and principal.covers_region(
        provider.home_region_code or ""
    )


def decide(
    session: Session, *, principal: Principal, provider: Provider, data: StaffDecision
) -> Provider:
    if not may_vet(principal, provider):
        raise Forbidden(
            "only coordinators of the provider's home region (or admins) vet it",
            field="home_region_code",
        )
    to = Vetting.APPROVED if data.decision == "approve" else Vetting.REJECTED
    if provider.vetting == to:
        raise Conflict(f"the provider is already {to.value}", field="decision")
    if to == Vetting.REJECTED and provider.vetting == Vetting.APPROVED:
        raise Conflict(
            "an approved provider is deactivated, not rejected (its open work is released)",
            field="decision",
        )
    before = event_service.snapshot(provider)
    provider.vetting, provider.vetting_reason, provider.vetted_at = to, data.reason, utc_now()
    session.flush()
    event_id = event_service.record(
        session,
        actor=principal,
        action=f"provider.{to.value}",
        entity=provider,
        region_code=provider.home_region_code or "",
        before=before,
    )
    session.flush()
    outbox.enqueue(
        session,
        recipients=outbox.users_of(session, provider_id=provider.id),
        kind=f"provider.{to.value}",
        subject=_SUBJECT[to],
        body=data.reason,
        payload={"provider_id": provider.id, "vetting": to.value},
        region_code=provider.home_region_code or "",
        cause=f"event:{event_id}" if event_id is not None else f"provider:{provider.id}",
    )
    return provider
