"""The sweep takes back late offers a batch at a time in a fixed number of statements (issue
7.3): the same audit events, exclusions, reopened requests and webhook deliveries as the
row-by-row moves wrote, and an offer answered meanwhile is left alone."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.common.pagination import PageParams
from app.models import (
    Assignment,
    AssignmentStatus,
    Event,
    Exclusion,
    HelpRequest,
    RequestStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from app.supervision import clocks
from app.supervision import service as supervision_service
from app.supervision.clocks import Overdue
from tests.app.conftest import Cast
from tests.app.test_supervision_api import offered
from tests.factories import fetch, make_request, statements


def _late(db: Session, cast: Cast, n: int) -> list[Assignment]:
    """``n`` offers to the expert, each on its own matched request, two days past due."""
    return [offered(db, make_request(db, cast.ent), cast.expert.id, days_ago=4) for _ in range(n)]


def _overdue(db: Session) -> list[Overdue]:
    return clocks.offers_page(db, utc_now(), None, PageParams(100, None), count=False).items


def test_a_batch_costs_the_same_statements_whatever_its_size(db: Session, cast: Cast) -> None:
    db.add(WebhookSubscription(url="https://hooks.example.com/x", events=["*"], secret="s"))
    counts = []
    for size in (1, 2, 7):  # the first also reads the webhook subscriptions (once a session)
        _late(db, cast, size)
        items = _overdue(db)
        assert len(items) == size
        with statements(db) as seen:
            reopened = supervision_service.expire_offers(db, items)
        assert len(reopened) == size
        counts.append(len(seen))
    assert counts[1] == counts[2], counts


def test_expiry_writes_what_a_move_did_and_spares_an_answered_offer(
    db: Session, cast: Cast
) -> None:
    db.add(
        WebhookSubscription(url="https://hooks.example.com/x", events=["assignment.*"], secret="s")
    )
    late = _late(db, cast, 3)
    items = _overdue(db)  # read before the provider answers one of them
    answered = late[1]
    answered.status = AssignmentStatus.ACCEPTED
    db.flush()
    versions = {a.id: a.version for a in late}

    reopened = supervision_service.expire_offers(db, items)

    expired = [late[0], late[2]]
    assert reopened == [a.request_id for a in expired]
    assert fetch(db, Assignment, answered.id).status == AssignmentStatus.ACCEPTED
    events = db.scalars(
        select(Event).where(Event.action == "assignment.expired").order_by(Event.entity_id)
    ).all()
    assert [e.entity_id for e in events] == [a.id for a in expired]
    for e, a in zip(events, expired, strict=True):
        assert e.entity_type == "assignments"
        assert e.region_code == cast.ent.region_code
        assert e.actor_label == "system"
        assert e.before is not None
        assert e.after is not None
        assert (e.before["status"], e.after["status"]) == ("offered", "expired")
        assert (e.before["version"], e.after["version"]) == (versions[a.id], versions[a.id] + 1)
        assert set(e.after) == {"status", "version", "updated_at"}
        assert fetch(db, Assignment, a.id).version == versions[a.id] + 1
        assert fetch(db, HelpRequest, a.request_id).status == RequestStatus.TRIAGED
    excluded = db.execute(select(Exclusion.request_id, Exclusion.provider_id)).all()
    assert sorted(excluded) == sorted((a.request_id, a.provider_id) for a in expired)
    deliveries = db.scalars(select(WebhookDelivery.payload)).all()
    assert sorted(p["data"]["event_id"] for p in deliveries) == [e.id for e in events]
    assert {p["type"] for p in deliveries} == {"assignment.expired"}


def test_expiring_twice_changes_nothing_the_second_time(db: Session, cast: Cast) -> None:
    _late(db, cast, 2)
    items = _overdue(db)
    assert len(supervision_service.expire_offers(db, items)) == 2
    assert supervision_service.expire_offers(db, items) == []
    assert db.scalar(select(func.count()).select_from(Exclusion)) == 2
    expired = select(func.count()).where(Event.action == "assignment.expired")
    assert db.scalar(expired) == 2


def test_a_loaded_offer_and_request_see_the_expiry(db: Session, cast: Cast) -> None:
    """Objects the caller holds take the new status and version: a later edit of them in the
    same transaction passes its version check."""
    (offer,) = _late(db, cast, 1)
    request = fetch(db, HelpRequest, offer.request_id)
    supervision_service.expire_offers(db, _overdue(db))
    assert offer.status == AssignmentStatus.EXPIRED
    assert request.status == RequestStatus.TRIAGED
    request.title = "edited after the sweep"
    db.flush()  # raises StaleDataError if the version in memory were stale
