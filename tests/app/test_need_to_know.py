"""Need to know, proven over the route table (issue 8, items 1 and 10).

Every operation of the OpenAPI document is called by every role, with each path parameter
filled by own and foreign objects of one seeded world, and every response body (nested
objects, explanations and problem bodies included) is walked: any id of an enterprise,
request, provider, assignment, plan, follow-up, milestone, match run, exclusion or user, and
any region code, outside what the caller's job needs is a leak. Writes run inside a savepoint
that is rolled back, so every probe sees the same world. One world per backend.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.models import (
    Assignment,
    AssignmentStatus,
    Base,
    Event,
    Exclusion,
    FollowUp,
    FollowUpKind,
    HelpRequest,
    MatchRun,
    MatchRunStatus,
    Milestone,
    Notification,
    Plan,
    PlanStatus,
    Role,
    User,
)
from app.settings import Settings
from tests.factories import (
    app_of,
    auth_headers,
    make_enterprise,
    make_provider,
    make_request,
    make_user,
)

Ids = dict[str, set[int]]
ALL = "*"

#: Keys naming an id of an entity type (``id`` itself is typed by where it appears).
ID_KEYS = {
    "enterprise_id": "enterprise",
    "request_id": "request",
    "provider_id": "provider",
    "assignment_id": "assignment",
    "plan_id": "plan",
    "match_run_id": "match_run",
    "run_id": "match_run",
    "superseded_by_run_id": "match_run",
    "milestone_id": "milestone",
    "exclusion_id": "exclusion",
    "author_id": "user",
    "actor_id": "user",
    "created_by_id": "user",
    "recipient_user_id": "user",
    "user_id": "user",
}
ID_LIST_KEYS = {
    "scope_request_ids": "request",
    "request_ids": "request",
    "superseded_run_ids": "match_run",
    "taken_by": "provider",
}
#: Which entity type the ``id`` of an object under this key (or route segment) names.
CONTAINERS = {
    "enterprise": "enterprise",
    "enterprises": "enterprise",
    "requests": "request",
    "providers": "provider",
    "assignments": "assignment",
    "plans": "plan",
    "follow-ups": "follow_up",
    "follow_ups": "follow_up",
    "milestones": "milestone",
    "match-runs": "match_run",
    "exclusions": "exclusion",
    "users": "user",
    "runners_up": "provider",
}
REGION_KEYS = ("region_code", "home_region_code", "scope_region")
ENTITY_TABLES = {
    "enterprises": "enterprise",
    "help_requests": "request",
    "providers": "provider",
    "assignments": "assignment",
    "plans": "plan",
    "match_runs": "match_run",
    "follow_ups": "follow_up",
    "milestones": "milestone",
    "exclusions": "exclusion",
    "users": "user",
}
PARAM_TYPES = {
    "enterprise_id": "enterprise",
    "request_id": "request",
    "provider_id": "provider",
    "assignment_id": "assignment",
    "plan_id": "plan",
    "run_id": "match_run",
    "milestone_id": "milestone",
    "exclusion_id": "exclusion",
    "user_id": "user",
}


@dataclass
class Need:
    """What one caller may learn: ids per entity type (``ALL`` for a whole type) and the
    region codes (a value passes if it starts with one of ``regions``, or is a prefix of one)."""

    ids: dict[str, set[int] | str] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    known_max: dict[str, int] = field(default_factory=dict)

    def allows(self, kind: str, value: int) -> bool:
        """Ids above the world's are objects the probe itself just created: the caller's own."""
        allowed = self.ids.get(kind, ALL)
        return allowed == ALL or value in allowed or value > self.known_max.get(kind, value)

    def allows_region(self, code: str) -> bool:
        if not code or self.regions == (ALL,):
            return True
        return any(code.startswith(r) or r.startswith(code) for r in self.regions)


@dataclass
class World:
    objects: Ids
    users: dict[str, User]
    needs: dict[str, Need]
    own: dict[str, Ids]
    probes: int = 0


B = TypeVar("B", bound=Base)


def _add(session: Session, row: B) -> B:
    session.add(row)
    session.flush()
    return row


def _assignment(
    session: Session, request: HelpRequest, provider_id: int, status: AssignmentStatus, **kw: Any
) -> Assignment:
    now = utc_now()
    row = Assignment(
        request_id=request.id,
        provider_id=provider_id,
        origin="match_run",
        status=status,
        score=0.7,
        offered_at=now,
        offer_expires_at=now + timedelta(days=2),
        **kw,
    )
    return _add(session, row)


def _breakdown(runner_up: int) -> dict[str, Any]:
    return {
        "features": {"skill": 1.0, "text": 0.4, "industry": 1.0, "region": 1.0, "rating": 0.5},
        "contributions": {"skill": 0.4, "text": 0.1},
        "priority": 1.2,
        "slot_multiplier": 1.0,
        "reason_zh": "技能匹配",
        "reason_en": "skill fit",
        "runners_up": [{"provider_id": runner_up, "score": 0.6}],
    }


def build_world(db: Session) -> World:
    """Fujian: enterprise A (two requests served by X and Y, one untriaged), its plan with
    follow-ups of each and a milestone, a run and an exclusion. Henan: enterprise B served
    by Z, its plan and run. Each provider's explanation names another as runner-up."""
    ent_a = make_enterprise(db, region_code="350582")
    ent_b = make_enterprise(db, region_code="410105", name="郑州测试机械有限公司")
    px = make_provider(db, home_region_code="350582")
    py = make_provider(db, home_region_code="350583")
    pz = make_provider(db, home_region_code="410105", regions=["41"])
    plan_a = _add(db, Plan(enterprise_id=ent_a.id, status=PlanStatus.ACTIVE, summary="A"))
    plan_b = _add(db, Plan(enterprise_id=ent_b.id, status=PlanStatus.ACTIVE, summary="B"))
    ask = {"category": "financing", "title": "流动资金贷款"}
    ra1 = make_request(db, ent_a, status="in_progress", plan_id=plan_a.id, **ask)
    ra2 = make_request(db, ent_a, status="matched", plan_id=plan_a.id, **ask)
    ra3 = make_request(db, ent_a, status="submitted", plan_id=plan_a.id, **ask)
    rb1 = make_request(db, ent_b, status="in_progress", plan_id=plan_b.id, **ask)
    run_a = _add(db, MatchRun(scope_region="35", status=MatchRunStatus.PUBLISHED, stats={}))
    run_b = _add(db, MatchRun(scope_region="41", status=MatchRunStatus.PUBLISHED, stats={}))
    aa1 = _assignment(
        db, ra1, px.id, AssignmentStatus.ACTIVE, breakdown=_breakdown(py.id), match_run_id=run_a.id
    )
    aa2 = _assignment(
        db, ra2, py.id, AssignmentStatus.OFFERED, breakdown=_breakdown(px.id), match_run_id=run_a.id
    )
    ab1 = _assignment(
        db, rb1, pz.id, AssignmentStatus.ACTIVE, breakdown=_breakdown(px.id), match_run_id=run_b.id
    )
    users = {
        "admin": make_user(db, Role.ADMIN),
        "coordinator": make_user(db, Role.COORDINATOR, region_prefixes=["35"]),
        "other_coordinator": make_user(db, Role.COORDINATOR, region_prefixes=["41"]),
        "enterprise": make_user(db, Role.ENTERPRISE, enterprise_id=ent_a.id),
        "other_enterprise": make_user(db, Role.ENTERPRISE, enterprise_id=ent_b.id),
        "expert": make_user(db, Role.EXPERT, provider_id=px.id),
        "second_expert": make_user(db, Role.EXPERT, provider_id=py.id),
        "far_expert": make_user(db, Role.EXPERT, provider_id=pz.id),
    }
    now = utc_now()
    note = {"kind": FollowUpKind.NOTE, "occurred_at": now, "created_at": now}
    fa1 = _add(
        db, FollowUp(plan_id=plan_a.id, assignment_id=aa1.id, author_id=users["expert"].id, **note)
    )
    fa2 = _add(
        db,
        FollowUp(
            plan_id=plan_a.id, assignment_id=aa2.id, author_id=users["coordinator"].id, **note
        ),
    )
    fa3 = _add(db, FollowUp(plan_id=plan_a.id, author_id=users["coordinator"].id, **note))
    fb1 = _add(
        db,
        FollowUp(plan_id=plan_b.id, assignment_id=ab1.id, author_id=users["far_expert"].id, **note),
    )
    ma = _add(db, Milestone(plan_id=plan_a.id, title="首贷落地"))
    mb = _add(db, Milestone(plan_id=plan_b.id, title="设备更新"))
    ex_a = _add(db, Exclusion(provider_id=pz.id, request_id=ra2.id, reason="far", created_at=now))
    ex_b = _add(db, Exclusion(provider_id=px.id, request_id=rb1.id, reason="far", created_at=now))
    for user in users.values():
        _add(
            db,
            Notification(
                recipient_user_id=user.id,
                kind="test",
                subject="s",
                payload={},
                dedupe_key=f"nt:{user.id}",
                created_at=now,
            ),
        )
    for entity, region in ((aa1, "350582"), (ab1, "410105"), (ent_a, "350582"), (ent_b, "410105")):
        _add(
            db,
            Event(
                actor_label="system",
                action="test.seeded",
                entity_type=type(entity).__tablename__,
                entity_id=entity.id,
                region_code=region,
                after={"id": entity.id},
                created_at=now,
            ),
        )
    db.commit()
    u = {k: v.id for k, v in users.items()}
    objects: Ids = {
        "enterprise": {ent_a.id, ent_b.id},
        "request": {ra1.id, ra2.id, ra3.id, rb1.id},
        "provider": {px.id, py.id, pz.id},
        "assignment": {aa1.id, aa2.id, ab1.id},
        "plan": {plan_a.id, plan_b.id},
        "follow_up": {fa1.id, fa2.id, fa3.id, fb1.id},
        "milestone": {ma.id, mb.id},
        "match_run": {run_a.id, run_b.id},
        "exclusion": {ex_a.id, ex_b.id},
        "user": set(u.values()),
    }
    staff_users = {u["admin"], u["coordinator"], u["other_coordinator"]}

    def party(**ids: set[int]) -> Need:
        base: dict[str, set[int] | str] = {k: set() for k in objects}
        base.update(ids)
        return Need(base, ())

    fujian = {
        "enterprise": {ent_a.id},
        "request": {ra1.id, ra2.id, ra3.id},
        "assignment": {aa1.id, aa2.id},
        "plan": {plan_a.id},
        "follow_up": {fa1.id, fa2.id, fa3.id},
        "milestone": {ma.id},
        "match_run": {run_a.id},
        "exclusion": {ex_a.id},
    }
    henan = {
        "enterprise": {ent_b.id},
        "request": {rb1.id},
        "assignment": {ab1.id},
        "plan": {plan_b.id},
        "follow_up": {fb1.id},
        "milestone": {mb.id},
        "match_run": {run_b.id},
        "exclusion": {ex_b.id},
    }
    needs = {
        "admin": Need({}, (ALL,)),
        # The provider directory is shared by all coordinators (a remote expert may help).
        "coordinator": Need({**fujian, "provider": ALL, "user": ALL}, ("35", "41")),
        "other_coordinator": Need({**henan, "provider": ALL, "user": ALL}, ("41", "35")),
        "enterprise": party(
            enterprise={ent_a.id},
            request={ra1.id, ra2.id, ra3.id},
            provider={px.id, py.id},
            assignment={aa1.id, aa2.id},
            plan={plan_a.id},
            follow_up={fa1.id, fa2.id, fa3.id},
            milestone={ma.id},
            user={u["enterprise"], u["expert"], *staff_users},
        ),
        "other_enterprise": party(
            enterprise={ent_b.id},
            request={rb1.id},
            provider={pz.id},
            assignment={ab1.id},
            plan={plan_b.id},
            follow_up={fb1.id},
            milestone={mb.id},
            user={u["other_enterprise"], u["far_expert"], *staff_users},
        ),
        "expert": party(
            enterprise={ent_a.id},
            request={ra1.id},
            provider={px.id},
            assignment={aa1.id},
            plan={plan_a.id},
            follow_up={fa1.id},
            user={u["expert"]},
        ),
        "second_expert": party(
            enterprise={ent_a.id},
            request={ra2.id},
            provider={py.id},
            assignment={aa2.id},
            plan={plan_a.id},
            follow_up={fa2.id},
            user={u["second_expert"], u["coordinator"]},
        ),
        "far_expert": party(
            enterprise={ent_b.id},
            request={rb1.id},
            provider={pz.id},
            assignment={ab1.id},
            plan={plan_b.id},
            follow_up={fb1.id},
            user={u["far_expert"]},
        ),
    }
    # Regions a party may learn: its own, those of whom it works with.
    needs["enterprise"].regions = ("350582", "350583")
    needs["other_enterprise"].regions = ("410105", "41")
    needs["expert"].regions = ("350582", "35")
    needs["second_expert"].regions = ("350583", "350582", "35")
    needs["far_expert"].regions = ("410105", "41")
    for need in needs.values():
        need.known_max = {kind: max(ids) for kind, ids in objects.items()}
    return World(objects, users, needs, {})


@dataclass
class Leak:
    role: str
    route: str
    where: str
    what: str


def _walk(
    body: Any, kind: str | None, need: Need, where: str, events: bool = False
) -> Iterator[tuple[str, str]]:
    """Yield (where, what) for every id or region in ``body`` the caller may not know."""
    if isinstance(body, list):
        for i, item in enumerate(body):
            yield from _walk(item, kind, need, f"{where}[{i}]", events)
        return
    if not isinstance(body, dict):
        return
    entity = ENTITY_TABLES.get(str(body.get("entity_type", "")))
    for key, value in body.items():
        here = f"{where}.{key}"
        if key == "id" and kind and isinstance(value, int) and not need.allows(kind, value):
            yield here, f"{kind} {value}"
        elif key == "entity_id" and entity and isinstance(value, int):
            if not need.allows(entity, value):
                yield here, f"{entity} {value}"
        elif key in ID_KEYS and isinstance(value, int) and not need.allows(ID_KEYS[key], value):
            yield here, f"{ID_KEYS[key]} {value}"
        elif key in ID_LIST_KEYS and isinstance(value, list):
            for v in value:
                if isinstance(v, int) and not need.allows(ID_LIST_KEYS[key], v):
                    yield here, f"{ID_LIST_KEYS[key]} {v}"
        elif key in REGION_KEYS and isinstance(value, str) and not need.allows_region(value):
            yield here, f"region {value}"
        elif isinstance(value, dict | list):
            yield from _walk(
                value, CONTAINERS.get(key, None if key != "items" else kind), need, here
            )


def _operations(app: FastAPI) -> list[tuple[str, str]]:
    ops = []
    for path, methods in app.openapi()["paths"].items():
        for method in methods:
            ops.append((method.upper(), path))
    return sorted(ops)


BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/assignments/{assignment_id}/decline"): {"reason_code": "other"},
    ("POST", "/api/v1/assignments/{assignment_id}/lock"): {"locked": True},
    ("POST", "/api/v1/assignments/{assignment_id}/reassign"): {"reason": "test"},
    ("POST", "/api/v1/plans/{plan_id}/follow-ups"): {"kind": "note", "notes": "x"},
    ("POST", "/api/v1/plans/{plan_id}/milestones"): {"title": "x"},
    ("PATCH", "/api/v1/plans/{plan_id}"): {"summary": "x"},
    ("POST", "/api/v1/requests/{request_id}/triage"): {},
    ("POST", "/api/v1/match-runs"): {"scope_region": "35"},
}
PARAM = re.compile(r"\{(\w+)\}")


def _fillings(path: str, world: World, write: bool) -> Iterator[str]:
    """The path with each parameter filled by every object of its type (writes: at most two,
    so own and foreign objects are both tried without multiplying the probes)."""
    names = PARAM.findall(path)
    if not names:
        yield path
        return
    choices: list[list[tuple[str, str]]] = []
    for name in names:
        kind = PARAM_TYPES.get(name)
        values = sorted(world.objects[kind]) if kind else ["financing"]
        if name == "enterprise_id" and "conflicts" in path:
            values = sorted(world.objects["enterprise"])
        choices.append([(name, str(v)) for v in (values[:1] + values[-1:] if write else values)])
    combos: list[dict[str, str]] = [{}]
    for options in choices:
        combos = [c | {n: v} for c in combos for n, v in dict.fromkeys(options)]
    for combo in combos:
        yield PARAM.sub(partial(_fill, combo), path)


def _fill(values: dict[str, str], match: re.Match[str]) -> str:
    return values[match.group(1)]


ACTIONS = {
    "accept", "decline", "complete", "lock", "reassign", "triage", "withdraw", "unresolvable",
    "vetting", "tier-verification", "close", "publish", "revert",
}  # fmt: skip


def _kind_of(path: str) -> str | None:
    """The entity type a route's top-level ``id`` names: the collection it lists, the item it
    reads, or the resource an action answers with."""
    segments = [s for s in path.split("/")[3:] if s]
    if not segments:
        return None
    last = segments[-1]
    if last in CONTAINERS:
        return CONTAINERS[last]
    if last.startswith("{") and len(segments) > 1:
        return CONTAINERS.get(segments[-2])
    if last in ACTIONS and len(segments) > 2:
        return CONTAINERS.get(segments[-3])
    return None


def probe(client: TestClient, conn: Connection, world: World, settings: Settings) -> list[Leak]:
    leaks: list[Leak] = []
    world.probes = 0
    app = app_of(client)
    for method, path in _operations(app):
        write = method != "GET"
        kind = _kind_of(path)
        for url in _fillings(path, world, write):
            for role, user in world.users.items():
                headers = auth_headers(user, settings.secret_key)
                world.probes += 1
                savepoint = conn.begin_nested() if write else None
                try:
                    r = client.request(
                        method,
                        url,
                        headers=headers,
                        json=BODIES.get((method, path), {}) if write else None,
                    )
                finally:
                    if savepoint is not None:
                        savepoint.rollback()
                if r.status_code >= 500:
                    leaks.append(Leak(role, f"{method} {url}", "status", str(r.status_code)))
                if not r.content or "json" not in r.headers.get("content-type", ""):
                    continue
                for where, what in _walk(r.json(), kind, world.needs[role], "$"):
                    leaks.append(Leak(role, f"{method} {url}", where, what))
    return leaks


@pytest.mark.long
def test_no_response_carries_what_the_caller_need_not_know(
    client: TestClient, db: Session, settings: Settings
) -> None:
    world = build_world(db)
    conn = db.get_bind()
    assert isinstance(conn, Connection)
    leaks = probe(client, conn, world, settings)
    by_route: dict[str, list[str]] = defaultdict(list)
    for leak in leaks:
        by_route[leak.route].append(f"{leak.role}: {leak.where} = {leak.what}")
    assert not by_route, "\n".join(f"{k}: {v[:3]}" for k, v in sorted(by_route.items()))
    assert world.probes > 500  # every operation × role × object was really tried


def test_the_walker_sees_what_staff_may_read_and_a_provider_may_not(
    client: TestClient, db: Session, settings: Settings
) -> None:
    """The check can fail: the staff view of a plan, read against a provider's need, leaks
    other providers' assignments, follow-ups and runners-up."""
    world = build_world(db)
    plan_id = min(world.objects["plan"])
    r = client.get(
        f"/api/v1/plans/{plan_id}", headers=auth_headers(world.users["admin"], settings.secret_key)
    )
    assert r.status_code == 200
    found = {what for _, what in _walk(r.json(), "plan", world.needs["expert"], "$")}
    provider_y = sorted(world.objects["provider"])[1]
    assert f"provider {provider_y}" in found  # the other expert's assignment and runner-up
    assert any(w.startswith("assignment ") for w in found)
    assert any(w.startswith("follow_up ") for w in found)
    assert any(w.startswith("request ") for w in found)
