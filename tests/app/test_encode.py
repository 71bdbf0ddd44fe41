"""The encoder: database rows → the engine's problem, with the current load of every provider."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy.orm import Session

import matching
from app.assignments.encode import Scope, snapshot
from app.common.clock import today, utc_now
from app.models import Assignment, AssignmentOrigin, AssignmentStatus, Exclusion, ProviderKind
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


def test_snapshot_reads_every_provider_and_request_column_as_stored(db: Session) -> None:
    """The snapshot reads plain columns (JSON ones as text, decoded together): each value must
    land on its own provider and field, whatever the row order."""
    ent = make_enterprise(db, region_code="350582", industry_code="C1711", tier="specialised")
    on = today()
    first = make_provider(
        db,
        kind=ProviderKind.PLATFORM,
        expertise="跨境电商 export",
        skills={"export": 3, "financing": 1},
        industries=["C17", "C18"],
        regions=[],
        remote_ok=True,
        capacity=7,
        rating=4.5,
    )
    second = make_provider(
        db,
        skills={"legal_ip": 2},
        industries=[],
        regions=["3505", "3506"],
        paused_from_date=on - timedelta(days=1),
        paused_until_date=on + timedelta(days=1),
    )
    third = make_provider(db, active=False, rating=None)
    request = make_request(
        db, ent, category="export", extra_categories=["financing", "legal_ip"], urgency=5
    )

    snap = snapshot(db, Scope(region="35"))

    rows = {
        pid: i for i, pid in enumerate(snap.problem.providers.id) if pid in (first.id, second.id)
    }
    table = snap.problem.providers
    one, two = rows[first.id], rows[second.id]
    assert (table.kind[one], table.kind[two]) == ("platform", "expert")
    assert (dict(table.skills[one]), dict(table.skills[two])) == (
        {"export": 3, "financing": 1},
        {"legal_ip": 2},
    )
    assert (table.industries[one], table.industries[two]) == (("C17", "C18"), ())
    assert (table.regions[one], table.regions[two]) == ((), ("3505", "3506"))
    assert (bool(table.remote[one]), bool(table.remote[two])) == (True, False)
    assert (int(table.capacity[one]), int(table.capacity[two])) == (7, 3)
    assert (bool(table.paused[one]), bool(table.paused[two])) == (False, True)
    assert table.rating[one] == 4.5
    assert np.isnan(table.rating[two])
    assert table.expertise[one] == "跨境电商 export"
    inactive = list(table.id).index(third.id)
    assert [bool(table.active[i]) for i in (one, two, inactive)] == [True, True, False]
    requests = snap.problem.requests
    assert list(requests.id) == [request.id]
    assert requests.extra[0] == ("financing", "legal_ip")
    assert (requests.industry[0], requests.region[0], requests.tier[0]) == (
        "C1711",
        "350582",
        "specialised",
    )
    assert int(requests.urgency[0]) == 5
    assert requests.text[0] == f"{request.title}\n{request.description}"


def test_snapshot_reads_only_the_exclusions_that_can_touch_its_requests(db: Session) -> None:
    """A re-match of one request must not read the province's whole history of declines;
    exclusions of requests and enterprises outside the problem would be ignored anyway."""
    ent = make_enterprise(db, region_code="350582")
    other_ent = make_enterprise(db, region_code="350582")
    banker = make_provider(db, skills={"financing": 3}, capacity=4)
    lawyer = make_provider(db, skills={"legal_ip": 3}, capacity=4)
    mine = make_request(db, ent, category="financing", status="triaged")
    theirs = make_request(db, other_ent, category="financing", status="triaged")
    now = utc_now()
    db.add_all(
        [
            Exclusion(provider_id=banker.id, request_id=mine.id, created_at=now),
            Exclusion(provider_id=lawyer.id, enterprise_id=ent.id, created_at=now),
            Exclusion(provider_id=banker.id, request_id=theirs.id, created_at=now),
            Exclusion(provider_id=lawyer.id, enterprise_id=other_ent.id, created_at=now),
        ]
    )
    db.flush()

    one = snapshot(db, Scope(request_ids=(mine.id,)))
    assert one.problem.exclusions == (
        matching.Exclusion(provider=banker.id, request=mine.id),
        matching.Exclusion(provider=lawyer.id, enterprise=ent.id),
    )
    both = snapshot(db, Scope(region="35"))
    assert len(both.problem.exclusions) == 4
