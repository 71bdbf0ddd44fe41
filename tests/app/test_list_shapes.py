"""Lists built once per shape (``paginate_shaped``): callers of one shape share a statement
and still each get their own rows, since every value of theirs is bound per request."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.common import pagination
from app.models import Assignment, AssignmentOrigin, AssignmentStatus, User
from tests.app.conftest import Cast
from tests.factories import make_request


def _ids(client: TestClient, cast: Cast, user: User, path: str, **params: Any) -> set[int]:
    r = client.get(f"/api/v1/{path}", params=params, headers=cast.headers(user))
    assert r.status_code == 200, r.text
    return {item["id"] for item in r.json()["items"]}


def _offer(db: Session, request_id: int, provider_id: int) -> int:
    assignment = Assignment(
        request_id=request_id,
        provider_id=provider_id,
        origin=AssignmentOrigin.MANUAL,
        status=AssignmentStatus.OFFERED,
    )
    db.add(assignment)
    db.flush()
    return assignment.id


def test_coordinators_of_one_shape_see_their_own_regions(
    client: TestClient, cast: Cast, db: Session
) -> None:
    fujian = make_request(db, cast.ent, status="submitted")
    henan = make_request(db, cast.other_ent, status="submitted")
    fujian_offer = _offer(db, fujian.id, cast.expert.id)
    henan_offer = _offer(db, henan.id, cast.expert.id)
    db.commit()
    for user, request, enterprise, offer in (
        (cast.coordinator, fujian, cast.ent, fujian_offer),
        (cast.other_coordinator, henan, cast.other_ent, henan_offer),
        (cast.coordinator, fujian, cast.ent, fujian_offer),
    ):
        assert _ids(client, cast, user, "requests") == {request.id}
        assert _ids(client, cast, user, "requests", status="submitted") == {request.id}
        assert _ids(client, cast, user, "enterprises") == {enterprise.id}
        assert _ids(client, cast, user, "assignments") == {offer}


def test_filter_values_are_bound_per_request(client: TestClient, cast: Cast, db: Session) -> None:
    legal = make_request(db, cast.ent, category="legal_ip", status="submitted")
    digital = make_request(db, cast.ent, category="digital_transformation", status="submitted")
    db.commit()
    admin = cast.admin
    assert _ids(client, cast, admin, "requests", category="legal_ip") == {legal.id}
    assert _ids(client, cast, admin, "requests", category="digital_transformation") == {digital.id}
    assert _ids(client, cast, admin, "requests", region="41") == set()
    assert _ids(client, cast, admin, "requests", region="35") == {legal.id, digital.id}


def test_enterprises_see_the_providers_serving_them_alone(
    client: TestClient, cast: Cast, db: Session
) -> None:
    _offer(db, make_request(db, cast.ent, status="submitted").id, cast.expert.id)
    _offer(db, make_request(db, cast.other_ent, status="submitted").id, cast.platform.id)
    db.commit()
    for _ in range(2):
        assert _ids(client, cast, cast.ent_user, "providers") == {cast.expert.id}
        assert _ids(client, cast, cast.other_ent_user, "providers") == {cast.platform.id}


def test_a_shape_is_built_once(client: TestClient, cast: Cast, db: Session) -> None:
    headers = cast.headers(cast.coordinator)
    client.get("/api/v1/requests", params={"category": "legal_ip"}, headers=headers)
    built = pagination._SHAPED.snapshot()
    for category in ("financing", "legal_ip"):
        r = client.get("/api/v1/requests", params={"category": category}, headers=headers)
        assert r.status_code == 200
    assert built == pagination._SHAPED.snapshot()


def _read_by_callers_of_one_shape(
    client: TestClient, cast: Cast, path: str, fujian: int, henan: int
) -> None:
    """Each caller of a scope shape reads what it may of ``fujian`` (visible to the Fujian
    side and to the expert offered there) and ``henan``, and gets 404 for the rest, whoever
    of that shape read first; twice, so the second round runs on statements built once."""
    seen = {
        cast.coordinator: {fujian},
        cast.other_coordinator: {henan},
        cast.ent_user: {fujian},
        cast.other_ent_user: {henan},
        cast.expert_user: {fujian},
        cast.platform_user: set(),
        cast.admin: {fujian, henan},
    }
    for _ in range(2):
        for user, visible in seen.items():
            for resource in (fujian, henan):
                r = client.get(f"/api/v1/{path}/{resource}", headers=cast.headers(user))
                expected = 200 if resource in visible else 404
                assert r.status_code == expected, (user.email, path, resource, r.text)
                if expected == 200:
                    assert r.json()["id"] == resource


def test_a_request_read_by_callers_of_one_shape(
    client: TestClient, cast: Cast, db: Session
) -> None:
    """GET /requests/{id} is built once per scope shape too."""
    fujian = make_request(db, cast.ent, status="submitted")
    henan = make_request(db, cast.other_ent, status="submitted")
    _offer(db, fujian.id, cast.expert.id)
    db.commit()
    _read_by_callers_of_one_shape(client, cast, "requests", fujian.id, henan.id)


def test_an_enterprise_read_by_callers_of_one_shape(
    client: TestClient, cast: Cast, db: Session
) -> None:
    """GET /enterprises/{id} is built once per scope shape too."""
    _offer(db, make_request(db, cast.ent, status="submitted").id, cast.expert.id)
    db.commit()
    _read_by_callers_of_one_shape(client, cast, "enterprises", cast.ent.id, cast.other_ent.id)
