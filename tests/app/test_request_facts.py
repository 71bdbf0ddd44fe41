"""``request_facts`` (kept by SQLite's triggers) equals the facts computed from scratch after
writes; on PostgreSQL it stays empty through the same writes.

The history goes through every kind of write path that changes a fact: the API's use cases
(offer, accept, decline and the worker's re-match, follow-up, complete, feedback, withdraw,
unresolvable), a match run published in bulk, and set-based statements and ORM edits that
no use case makes today (an enterprise moving region or tier, a request's category, a
rating changed, a follow-up detached, an assignment and a request deleted). From scratch
means the offer facts as /stats on PostgreSQL still groups them from the offers
(``_per_request_offers``), with the request's own fields and its enterprise's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.models import (
    Assignment,
    AssignmentStatus,
    Enterprise,
    Feedback,
    FollowUp,
    HelpRequest,
    RequestFacts,
    Tier,
    User,
)
from app.stats.repository import _per_request_offers
from tests.app.test_match_runs_api import URL as RUNS
from tests.app.test_match_runs_api import (
    Scene,
    drafted,
    scene,  # noqa: F401 - the fixture, re-used here
)
from tests.app.test_stats_api import (
    History,
    history,  # noqa: F401 - the fixture, re-used here
)
from tests.factories import make_request, rematch_declined

FIELDS = (
    "region_code",
    "tier",
    "category",
    "status",
    "created_at",
    "resolved_at",
    "first_offered_at",
    "accepted",
    "followed_up",
    "answered_yes",
    "answered_no",
    "feedback",
    "rating_sum",
    "satisfied",
)


def from_scratch(session: Session) -> dict[int, tuple[Any, ...]]:
    """Every request's facts, computed from its rows and its offers now."""
    offers = _per_request_offers(tallies=True)
    rows = session.execute(
        select(
            HelpRequest.id,
            Enterprise.region_code,
            Enterprise.tier,
            HelpRequest.category,
            HelpRequest.status,
            HelpRequest.created_at,
            HelpRequest.resolved_at,
            offers.c.first_offered_at,
            offers.c.accepted,
            offers.c.followed_up,
            offers.c.yes,
            offers.c.no,
            offers.c.feedback,
            offers.c.rating_sum,
            offers.c.satisfied,
        )
        .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
        .outerjoin(offers, offers.c.request_id == HelpRequest.id)
    )
    return {row[0]: _normal(row[1:]) for row in rows}


def maintained(session: Session) -> dict[int, tuple[Any, ...]]:
    columns = [getattr(RequestFacts, name) for name in FIELDS]
    rows = session.execute(select(RequestFacts.request_id, *columns))
    return {row[0]: _normal(row[1:]) for row in rows}


def _normal(values: Any) -> tuple[Any, ...]:
    """Enums as their values, counts of a request without offers as 0."""
    head = tuple(str(v) for v in values[:4])
    return (*head, *values[4:7], *(int(v or 0) for v in values[7:]))


def keeps_facts(session: Session) -> bool:
    """Only SQLite keeps them (its triggers); PostgreSQL's /stats reads the sources."""
    return session.get_bind().dialect.name == "sqlite"


def assert_facts_hold(session: Session) -> dict[int, tuple[Any, ...]]:
    """SQLite: the maintained facts are the ones computed from scratch. PostgreSQL: none
    are kept, whatever was written (its writes pay for no trigger)."""
    session.expire_all()
    expected = from_scratch(session)
    assert maintained(session) == (expected if keeps_facts(session) else {})
    return expected


def _publish_and_decline(client: TestClient, db: Session, place: Scene) -> None:
    """A match run published in bulk, then a decline and the worker's re-match."""
    run = drafted(client, db, place)
    published = client.post(f"{RUNS}/{run['id']}/publish", headers=place.staff())
    assert published.status_code == 200, published.text
    offered = published.json()["offered"]
    first, user = db.execute(
        select(Assignment.id, User)
        .join(User, User.provider_id == Assignment.provider_id)
        .where(Assignment.id.in_(offered))
        .order_by(Assignment.id)
        .limit(1)
    ).one()
    r = client.post(
        f"/api/v1/assignments/{first}/decline",
        json={"reason_code": "no_capacity"},
        headers=place.cast.headers(user),
    )
    assert r.status_code == 200, r.text
    rematch_declined(db)


def _edits_no_use_case_makes(db: Session, story: History) -> None:
    """Set-based statements and ORM edits on every source of a fact, the facts checked
    after each (a later edit of the same request would hide a missed one)."""
    r1 = db.get_one(HelpRequest, story.r1)
    owner = db.get_one(Enterprise, r1.enterprise_id)
    moved = (
        update(Enterprise)
        .where(Enterprise.id == owner.id)
        .values(region_code="350102", tier=Tier.LITTLE_GIANT)
    )
    offered = select(Assignment.id).where(Assignment.request_id == story.r3).limit(1)
    steps: list[Any] = [
        moved,
        update(Feedback).values(rating=4, satisfied=True),
        delete(FollowUp).where(FollowUp.assignment_id.is_not(None)),
        delete(Assignment).where(Assignment.id.in_(offered.scalar_subquery())),
        update(Assignment)
        .where(Assignment.status == AssignmentStatus.OFFERED)
        .values(status=AssignmentStatus.EXPIRED, responded_at=None),
        delete(HelpRequest).where(HelpRequest.id == story.r2),
    ]
    for step in steps:
        db.execute(step)
        assert_facts_hold(db)
    r1 = db.get_one(HelpRequest, story.r1)
    r1.category = "management"
    late = make_request(db, owner, category="financing", status="triaged")
    late.created_at = utc_now() - timedelta(days=2)
    db.commit()


class TestMaintainedFacts:
    def test_facts_match_a_computation_from_scratch_after_every_kind_of_write(
        self,
        client: TestClient,
        db: Session,
        history: History,  # noqa: F811
        scene: Scene,  # noqa: F811
    ) -> None:
        facts = assert_facts_hold(db)
        # not vacuous: the history reached every fact
        assert sum(f[7] for f in facts.values()) >= 3  # accepted
        assert sum(f[8] for f in facts.values()) == 1  # followed up
        assert sum(f[11] for f in facts.values()) == 2  # feedback
        assert {f[3] for f in facts.values()} >= {"resolved", "withdrawn", "unresolvable"}
        _publish_and_decline(client, db, scene)
        assert_facts_hold(db)
        _edits_no_use_case_makes(db, history)
        facts = assert_facts_hold(db)
        assert history.r2 not in facts
        assert facts[history.r1][:3] == ("350102", "little_giant", "management")

    def test_a_fact_changed_by_hand_is_caught(
        self,
        db: Session,
        history: History,  # noqa: F811
    ) -> None:
        """The comparison can fail: facts no trigger wrote are told apart (on PostgreSQL, a
        row where none should be)."""
        if keeps_facts(db):
            db.execute(
                update(RequestFacts).where(RequestFacts.request_id == history.r1).values(accepted=0)
            )
        else:
            request = db.get_one(HelpRequest, history.r1)
            db.add(
                RequestFacts(
                    request_id=request.id,
                    region_code="35",
                    tier="none",
                    category=request.category,
                    status=request.status,
                    created_at=request.created_at,
                )
            )
            db.flush()
        with pytest.raises(AssertionError):
            assert_facts_hold(db)
