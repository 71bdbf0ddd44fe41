"""Who may call what, in one table: every registry action × every role.

Outside your scope is 404 (you cannot learn it exists); inside it but not allowed is 403.
Each row builds a fresh world, so one role's success never changes another's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.models import ProviderConflict
from tests.app.conftest import Cast
from tests.factories import make_policy, make_request

ROLES = (
    "admin",
    "coordinator",
    "other_coordinator",
    "enterprise",
    "other_enterprise",
    "expert",
    "platform",
)


@dataclass(frozen=True)
class Action:
    name: str
    method: str
    path: Callable[[dict[str, Any]], str]
    expected: dict[str, int]
    body: dict[str, Any] | None = None


def world(db: Session, cast: Cast) -> dict[str, Any]:
    request = make_request(db, cast.ent, status="triaged")
    policy = make_policy(db)
    db.add(
        ProviderConflict(
            provider_id=cast.expert.id, enterprise_id=cast.other_ent.id, created_at=utc_now()
        )
    )
    db.commit()
    return {
        "request": request.id,
        "policy": policy.id,
        "ent": cast.ent.id,
        "expert": cast.expert.id,
        "other_ent": cast.other_ent.id,
        "coordinator_user": cast.coordinator.id,
    }


ACTIONS = [
    Action(
        "withdraw request",
        "POST",
        lambda w: f"/api/v1/requests/{w['request']}/withdraw",
        {
            "admin": 200,
            "coordinator": 200,
            "other_coordinator": 404,
            "enterprise": 200,
            "other_enterprise": 404,
            "expert": 404,
            "platform": 404,
        },
    ),
    Action(
        "declare request unresolvable",
        "POST",
        lambda w: f"/api/v1/requests/{w['request']}/unresolvable",
        {
            "admin": 200,
            "coordinator": 200,
            "other_coordinator": 404,
            "enterprise": 403,
            "other_enterprise": 404,
            "expert": 404,
            "platform": 404,
        },
    ),
    Action(
        "edit a policy",
        "PATCH",
        lambda w: f"/api/v1/policies/{w['policy']}",
        {
            "admin": 200,
            "coordinator": 403,
            "other_coordinator": 403,
            "enterprise": 403,
            "other_enterprise": 403,
            "expert": 403,
            "platform": 403,
        },
        {"summary": "更新"},
    ),
    Action(
        "change a coordinator's regions",
        "PATCH",
        lambda w: f"/api/v1/users/{w['coordinator_user']}",
        {
            "admin": 200,
            "coordinator": 403,
            "other_coordinator": 403,
            "enterprise": 403,
            "other_enterprise": 403,
            "expert": 403,
            "platform": 403,
        },
        {"region_prefixes": ["3505"]},
    ),
    Action(
        "withdraw a provider's conflict",
        "DELETE",
        lambda w: f"/api/v1/providers/{w['expert']}/conflicts/{w['other_ent']}",
        {
            "admin": 204,
            "coordinator": 204,
            "other_coordinator": 403,
            "enterprise": 404,
            "other_enterprise": 404,
            "expert": 204,
            "platform": 404,
        },
    ),
    Action(
        "edit a milestone template",
        "PATCH",
        lambda w: "/api/v1/milestone-templates/financing",
        {
            "admin": 200,
            "coordinator": 403,
            "other_coordinator": 403,
            "enterprise": 403,
            "other_enterprise": 403,
            "expert": 403,
            "platform": 403,
        },
        {"steps": [{"title_zh": "诊断", "title_en": "Diagnosis"}]},
    ),
    Action(
        "list milestone templates",
        "GET",
        lambda w: "/api/v1/milestone-templates",
        dict.fromkeys(ROLES, 200),
    ),
    Action("read my account", "GET", lambda w: "/api/v1/users/me", dict.fromkeys(ROLES, 200)),
    Action("list categories", "GET", lambda w: "/api/v1/categories", dict.fromkeys(ROLES, 200)),
    Action("list plans", "GET", lambda w: "/api/v1/plans", dict.fromkeys(ROLES, 200)),
    Action("list assignments", "GET", lambda w: "/api/v1/assignments", dict.fromkeys(ROLES, 200)),
    Action(
        "read the audit log",
        "GET",
        lambda w: "/api/v1/events",
        {
            "admin": 200,
            "coordinator": 200,
            "other_coordinator": 200,
            "enterprise": 403,
            "other_enterprise": 403,
            "expert": 403,
            "platform": 403,
        },
    ),
    Action(
        "list exclusions",
        "GET",
        lambda w: "/api/v1/exclusions",
        {
            "admin": 200,
            "coordinator": 200,
            "other_coordinator": 200,
            "enterprise": 403,
            "other_enterprise": 403,
            "expert": 403,
            "platform": 403,
        },
    ),
    Action(
        "list glossary entries",
        "GET",
        lambda w: "/api/v1/glossary",
        {
            "admin": 200,
            "coordinator": 200,
            "other_coordinator": 200,
            "enterprise": 403,
            "other_enterprise": 403,
            "expert": 403,
            "platform": 403,
        },
    ),
    Action(
        "extend the glossary",
        "POST",
        lambda w: "/api/v1/glossary",
        {
            "admin": 201,
            "coordinator": 403,
            "other_coordinator": 403,
            "enterprise": 403,
            "other_enterprise": 403,
            "expert": 403,
            "platform": 403,
        },
        body={"concept": "late_payment", "zh": ["压款"]},
    ),
    Action(
        "list match runs",
        "GET",
        lambda w: "/api/v1/match-runs",
        {
            "admin": 200,
            "coordinator": 200,
            "other_coordinator": 200,
            "enterprise": 403,
            "other_enterprise": 403,
            "expert": 403,
            "platform": 403,
        },
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_role_may_or_may_not(
    client: TestClient, cast: Cast, db: Session, action: Action, role: str
) -> None:
    w = world(db, cast)
    response = client.request(
        action.method,
        action.path(w),
        json=action.body,
        # Every PATCH needs If-Match (428 otherwise); "*" edits whatever version is current.
        headers=cast.headers(cast.by_role()[role])
        | ({"If-Match": "*"} if action.method == "PATCH" else {}),
    )
    assert response.status_code == action.expected[role], response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a.name)
def test_anonymous_is_401(client: TestClient, cast: Cast, db: Session, action: Action) -> None:
    response = client.request(action.method, action.path(world(db, cast)), json=action.body)
    assert response.status_code == 401
