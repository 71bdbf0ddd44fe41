"""The encoder: database rows → the engine's problem, with the current load of every provider."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.assignments.encode import Scope, snapshot
from app.models import Assignment, AssignmentOrigin, AssignmentStatus
from tests.factories import make_enterprise, make_provider, make_request


def test_snapshot_carries_load_conflicts_and_scope(db: Session) -> None:
    ent = make_enterprise(db, region_code="350582")
    far = make_enterprise(db, region_code="410105")
    lawyer = make_provider(db, skills={"legal_ip": 3}, capacity=2)
    banker = make_provider(db, skills={"financing": 3}, capacity=4)
    inside = make_request(db, ent, category="financing", status="triaged")
    make_request(db, far, category="financing", status="triaged")
    other = make_request(db, ent, category="financing", status="in_progress")
    db.add(
        Assignment(
            request_id=other.id,
            provider_id=banker.id,
            origin=AssignmentOrigin.MANUAL,
            status=AssignmentStatus.ACCEPTED,
        )
    )
    db.flush()

    snap = snapshot(db, Scope(region="35"))
    assert list(snap.problem.requests.id) == [inside.id]
    providers = dict(zip(snap.problem.providers.id, snap.problem.providers.load, strict=True))
    assert providers[banker.id] == 1
    assert providers[lawyer.id] == 0

    skilled = snapshot(db, Scope(request_ids=(inside.id,)), skilled_only=True)
    assert list(skilled.problem.providers.id) == [banker.id]
