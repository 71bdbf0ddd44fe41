"""A re-match's offers are written in one batch (issue 7.3): a fixed number of statements
whatever their number, the per-pair rules applied in order, the same audit events."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assignments import bulk_offers
from app.assignments.bulk_offers import Choice
from app.models import (
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    Event,
    Exclusion,
    HelpRequest,
    Provider,
    RequestStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from app.models.base import utc_now
from tests.app.conftest import Cast
from tests.factories import fetch, make_provider, make_request, statements


def _choices(db: Session, cast: Cast, provider: Provider, n: int) -> list[Choice]:
    requests = [make_request(db, cast.ent, status="triaged") for _ in range(n)]
    return [Choice(r.id, provider.id, 0.5, {"total": 0.5}) for r in requests]


def test_a_group_costs_the_same_statements_whatever_its_size(db: Session, cast: Cast) -> None:
    db.add(WebhookSubscription(url="https://hooks.example.com/x", events=["*"], secret="s"))
    provider = make_provider(db, capacity=50)
    counts = []
    for size in (1, 2, 7):  # the first also reads the webhook subscriptions (once a session)
        choices = _choices(db, cast, provider, size)
        with statements(db) as seen:
            made = bulk_offers.write_offers(db, choices, actor=None, planned_apart=True).made
        assert len(made) == size
        counts.append(len(seen))
    assert counts[1] == counts[2], counts


def test_offers_and_events_are_those_one_offer_at_a_time_made(db: Session, cast: Cast) -> None:
    db.add(WebhookSubscription(url="https://hooks.example.com/x", events=["*"], secret="s"))
    provider = make_provider(db, capacity=50)
    choices = _choices(db, cast, provider, 3)
    loaded = fetch(db, HelpRequest, choices[0].request_id)

    made = bulk_offers.write_offers(db, choices, actor=None, planned_apart=False).made

    assert [a.request_id for a in made] == [c.request_id for c in choices]
    for offer in made:
        assert offer.status == AssignmentStatus.OFFERED
        assert offer.origin == AssignmentOrigin.REMATCH
        assert offer.breakdown == {"total": 0.5}
        assert offer.offer_expires_at is not None
        assert fetch(db, HelpRequest, offer.request_id).status == RequestStatus.MATCHED
    assert loaded.status == RequestStatus.MATCHED  # the caller's copy follows
    loaded.title = "edited after the re-match"
    db.flush()  # a stale version in memory would raise StaleDataError
    events = db.scalars(select(Event).where(Event.action == "assignment.offered")).all()
    assert sorted(e.entity_id or 0 for e in events) == [a.id for a in made]
    for e in events:
        assert e.after is not None
        assert e.after["status"] == "offered"
        assert e.after["id"] == e.entity_id
        assert e.region_code == cast.ent.region_code
    deliveries = db.scalars(select(WebhookDelivery.payload)).all()
    assert sorted(p["data"]["event_id"] for p in deliveries) == sorted(e.id for e in events)


def test_capacity_counts_the_offers_made_earlier_in_the_group(db: Session, cast: Cast) -> None:
    """The two offers past the provider's capacity are refused, and their requests handed
    back: they still want a provider."""
    provider = make_provider(db, capacity=2)
    choices = _choices(db, cast, provider, 4)
    written = bulk_offers.write_offers(db, choices, actor=None, planned_apart=False)
    assert [a.request_id for a in written.made] == [c.request_id for c in choices[:2]]
    assert written.refused == tuple(c.request_id for c in choices[2:])


def test_a_stale_plan_skips_what_changed_since(db: Session, cast: Cast) -> None:
    """Planned apart: a request offered meanwhile, a pair or enterprise excluded since, and
    an unavailable provider are each skipped; the rest is offered."""
    provider = make_provider(db, capacity=50)
    offered, excluded, fine = _choices(db, cast, provider, 3)
    db.add(
        Assignment(
            request_id=offered.request_id,
            provider_id=cast.platform.id,
            origin=AssignmentOrigin.MANUAL,
            status=AssignmentStatus.OFFERED,
        )
    )
    db.add(Exclusion(request_id=excluded.request_id, provider_id=provider.id, created_at=utc_now()))
    paused = make_provider(db, capacity=50, active=False)
    gone = Choice(make_request(db, cast.ent, status="triaged").id, paused.id, 0.5, {})
    written = bulk_offers.write_offers(
        db, [offered, excluded, fine, gone], actor=None, planned_apart=True
    )
    assert [a.request_id for a in written.made] == [fine.request_id]
    # the request offered meanwhile wants nobody more; the others still want a provider
    assert written.refused == tuple(sorted((excluded.request_id, gone.request_id)))


def test_an_enterprise_wide_exclusion_blocks_a_stale_plan(db: Session, cast: Cast) -> None:
    provider = make_provider(db, capacity=50)
    choices = _choices(db, cast, provider, 2)
    db.add(Exclusion(enterprise_id=cast.ent.id, provider_id=provider.id, created_at=utc_now()))
    written = bulk_offers.write_offers(db, choices, actor=None, planned_apart=True)
    assert written.made == []
    assert written.refused == tuple(c.request_id for c in choices)


def test_a_request_closed_since_its_plan_gets_no_offer_and_stays_closed(
    db: Session, cast: Cast
) -> None:
    """Withdrawn, resolved or unresolvable between the plan and the write: no offer, and its
    status is not set back to ``matched``; it wants nobody, so it is not handed back."""
    provider = make_provider(db, capacity=50)
    choices = _choices(db, cast, provider, 4)
    closed = (RequestStatus.WITHDRAWN, RequestStatus.RESOLVED, RequestStatus.UNRESOLVABLE)
    for choice, status in zip(choices, closed, strict=False):
        fetch(db, HelpRequest, choice.request_id).status = status
    db.flush()
    written = bulk_offers.write_offers(db, choices, actor=None, planned_apart=True)
    assert [a.request_id for a in written.made] == [choices[3].request_id]
    assert written.refused == ()
    for choice, status in zip(choices, closed, strict=False):
        db.expire_all()
        assert fetch(db, HelpRequest, choice.request_id).status == status
