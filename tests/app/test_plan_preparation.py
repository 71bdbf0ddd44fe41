"""A large publish leaves its plans' preparation to the worker, which does exactly what an
inline publish does, in short batches, once, from the state it finds.

The inline maximum is lowered through settings so the small scene defers; the same draft
published inline (then rolled back) is the reference the worker's result must equal.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from app.bundling import attach, preparation
from app.common.principal import Principal
from app.db import make_engine, make_session_factory
from app.match_runs import publishing
from app.match_runs.claims import Sessions
from app.models import (
    Assignment,
    Enterprise,
    Event,
    HelpRequest,
    MatchRun,
    Milestone,
    Plan,
    PlanStatus,
)
from app.settings import Settings
from app.worker.loop import Worker
from tests.app.test_match_runs_api import URL, Scene, drafted, scene
from tests.factories import fetch, make_enterprise, make_request, sessions_of_test
from tests.live import own_database, settings_for

__all__ = ["scene"]  # the fixture, re-used from the match-run tests

INLINE_MAX = 1  # the scene publishes to two enterprises: one more than this


@pytest.fixture
def settings() -> Settings:
    return settings_for(
        "sqlite://",
        embedded_worker=True,
        stats_cache_seconds=0,
        plan_preparation_inline_max=INLINE_MAX,
    )


def transactions(db: Session) -> Any:
    """The worker's short transactions, as savepoints of the test's own."""

    @contextmanager
    def transaction() -> Iterator[Session]:
        yield db
        db.commit()

    return transaction


def drain(db: Session) -> int:
    return preparation.prepare_pending(transactions(db), batch=1)  # several batches


def state(db: Session, enterprise_ids: set[int]) -> tuple[list[Any], list[Any]]:
    """What preparation decides, keyed by enterprise (plan ids differ between databases)."""
    plans = db.execute(
        select(
            Plan.enterprise_id,
            Plan.status,
            Plan.summary,
            Plan.summary_en,
            Plan.recommended_policies,
            Plan.preparation_run_id,
        )
        .where(Plan.enterprise_id.in_(enterprise_ids))
        .order_by(Plan.enterprise_id)
    ).all()
    steps = db.execute(
        select(
            Plan.enterprise_id,
            Milestone.request_id,
            Milestone.position,
            Milestone.title,
            Milestone.title_en,
            Milestone.owner_role,
            Milestone.owner_provider_id,
            Milestone.owner,
            Milestone.due_date,
            Milestone.done,
        )
        .join(Plan, Plan.id == Milestone.plan_id)
        .where(Plan.enterprise_id.in_(enterprise_ids))
        .order_by(Milestone.request_id, Milestone.position)
    ).all()
    return [tuple(p) for p in plans], [tuple(s) for s in steps]


def enterprises_of(scene: Scene) -> set[int]:
    return {scene.cast.ent.id, scene.ent2.id}


def publish(client: TestClient, scene: Scene, run_id: int) -> dict[str, Any]:
    r = client.post(f"{URL}/{run_id}/publish", headers=scene.staff())
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


class TestDeferred:
    def test_the_worker_prepares_what_an_inline_publish_would(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        principal = Principal.of(scene.cast.coordinator)
        # The reference: the same draft published inline, then rolled back.
        inline = publishing.publish(
            db, principal=principal, run=fetch(db, MatchRun, run["id"]), inline_max=10
        )
        db.flush()
        expected = state(db, enterprises_of(scene))
        assert len(inline.plan_ids) == 2
        assert expected[1], "the scene's requests have template milestones"
        db.rollback()
        db.expire_all()

        body = publish(client, scene, run["id"])
        plans, steps = state(db, enterprises_of(scene))
        assert steps == []  # nothing prepared in the publish itself
        assert {p[5] for p in plans} == {run["id"]}
        assert all(p[2] == "" for p in plans)
        assert fetch(db, MatchRun, run["id"]).stats["plans_to_prepare"] == 2

        assert drain(db) == 2
        prepared = state(db, enterprises_of(scene))
        assert prepared == expected  # preparation_run_id is None in both
        assert sorted(body["plan_ids"]) == sorted(
            db.scalars(select(Plan.id).where(Plan.enterprise_id.in_(enterprises_of(scene))))
        )

    def test_up_to_the_inline_maximum_a_publish_prepares_at_once(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        client.app.state.settings = client.app.state.settings.model_copy(  # type: ignore[attr-defined]
            update={"plan_preparation_inline_max": 2}
        )
        run = drafted(client, db, scene)
        publish(client, scene, run["id"])
        plans, steps = state(db, enterprises_of(scene))
        assert steps
        assert all(p[2] for p in plans)
        assert {p[5] for p in plans} == {None}
        assert "plans_to_prepare" not in fetch(db, MatchRun, run["id"]).stats
        assert drain(db) == 0

    def test_preparing_again_adds_nothing_twice(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        publish(client, scene, run["id"])
        assert drain(db) == 2
        once = state(db, enterprises_of(scene))
        # As if a batch were taken again (a second publish's mark, a rerun after a crash).
        db.execute(
            update(Plan)
            .where(Plan.enterprise_id.in_(enterprises_of(scene)))
            .values(preparation_run_id=run["id"])
        )
        db.commit()
        assert drain(db) == 2
        assert state(db, enterprises_of(scene)) == once
        assert drain(db) == 0

    def test_a_revert_before_preparation_leaves_plans_that_say_so(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        publish(client, scene, run["id"])
        r = client.post(f"{URL}/{run['id']}/revert", headers=scene.staff())
        assert r.status_code == 200, r.text
        assert drain(db) == 2
        plans, steps = state(db, enterprises_of(scene))
        assert steps == []  # nobody holds an offer any more: no provider's steps
        assert {p[5] for p in plans} == {None}
        assert all("not matched yet" in p[3] for p in plans)
        requests = db.scalars(
            select(HelpRequest).where(HelpRequest.enterprise_id.in_(enterprises_of(scene)))
        )
        assert {q.plan_id is not None for q in requests} == {True}

    def test_the_worker_drains_on_its_own_poll(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        publish(client, scene, run["id"])
        factory = sessions_of_test(db)
        worker = Worker(Sessions(factory, factory), sweep_every=None)
        worker.drain()
        plans, steps = state(db, enterprises_of(scene))
        assert steps
        assert {p[5] for p in plans} == {None}
        prepared = Counter(
            db.scalars(
                select(Event.entity_id).where(
                    Event.action == "plan.updated",
                    Event.entity_id.in_(
                        db.scalars(select(Plan.id).where(Plan.preparation_run_id.is_(None)))
                    ),
                    Event.actor_id.is_(None),
                )
            )
        )
        assert len(prepared) == 2

    def test_a_deferred_publish_marks_every_plan_and_records_each_offer_and_new_plan(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        """The new plans are marked as they are inserted and their events, like the offers',
        are selected from the rows themselves: what one ``Change`` per row recorded."""
        cast = scene.cast
        db.add(Plan(enterprise_id=cast.ent.id, status=PlanStatus.FOLLOW_UP))
        db.commit()
        old = db.execute(select(Plan.id, Plan.version).filter_by(enterprise_id=cast.ent.id)).one()
        run = drafted(client, db, scene)
        body = publish(client, scene, run["id"])
        new = db.scalar(select(Plan.id).filter_by(enterprise_id=scene.ent2.id))
        assert sorted(body["plan_ids"]) == sorted([old.id, new])
        marked = db.execute(
            select(Plan.id, Plan.status, Plan.version, Plan.preparation_run_id).order_by(Plan.id)
        ).all()
        assert sorted(marked) == sorted(
            [(old.id, PlanStatus.ACTIVE, old.version + 1, run["id"]), (new, "active", 1, run["id"])]
        )
        offers = db.execute(
            select(Assignment.id, Enterprise.region_code)
            .join(HelpRequest, HelpRequest.id == Assignment.request_id)
            .join(Enterprise, Enterprise.id == HelpRequest.enterprise_id)
            .where(Assignment.id.in_(body["offered"]))
            .order_by(Assignment.request_id, Assignment.id)
        ).all()
        assert len(offers) == len(body["offered"]) == 3
        expected: list[tuple[Any, ...]] = [
            ("assignment.offered", "assignments", a, region, None, {"status": "offered"})
            for a, region in offers
        ]
        created = {"id": new, "enterprise_id": scene.ent2.id}
        expected.append(("plan.created", "plans", new, "350583", None, created))
        recorded = db.execute(
            select(
                Event.action,
                Event.entity_type,
                Event.entity_id,
                Event.region_code,
                Event.before,
                Event.after,
                Event.actor_id,
                Event.actor_label,
            )
            .where(Event.action.in_(("assignment.offered", "plan.created")))
            .order_by(Event.id)
        ).all()
        by = (cast.coordinator.id, cast.coordinator.email)
        assert [tuple(e) for e in recorded] == [(*e, *by) for e in expected]
        # The very JSON text record_many writes (json.dumps), not just an equal value.
        texts = db.execute(
            text("SELECT after FROM events WHERE action = 'plan.created'")
        ).scalar_one()
        assert (json.loads(texts) if isinstance(texts, str) else texts) == created
        assert db.execute(
            text("SELECT CAST(after AS TEXT) FROM events WHERE action = 'plan.created'")
        ).scalar_one() == json.dumps(created)


class TestProgress:
    def test_the_run_counts_the_plans_it_still_waits_for(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        assert run["plans_awaiting_preparation"] == 0
        body = publish(client, scene, run["id"])
        assert body["run"]["stats"]["plans_to_prepare"] == 2
        assert body["run"]["plans_awaiting_preparation"] == 2
        shown = client.get(f"{URL}/{run['id']}", headers=scene.staff()).json()
        assert shown["stats"]["plans_to_prepare"] == 2
        assert shown["plans_awaiting_preparation"] == 2
        listed = client.get(URL, headers=scene.staff()).json()["items"]
        assert [r["plans_awaiting_preparation"] for r in listed if r["id"] == run["id"]] == [2]
        assert preparation.prepare_batch(db, batch=1) == 1
        db.commit()
        shown = client.get(f"{URL}/{run['id']}", headers=scene.staff()).json()
        assert shown["plans_awaiting_preparation"] == 1
        drain(db)
        shown = client.get(f"{URL}/{run['id']}", headers=scene.staff()).json()
        assert shown["plans_awaiting_preparation"] == 0
        assert shown["stats"]["plans_to_prepare"] == 2

    def test_a_plan_awaiting_preparation_says_so_to_whoever_may_read_it(
        self, client: TestClient, db: Session, scene: Scene
    ) -> None:
        run = drafted(client, db, scene)
        body = publish(client, scene, run["id"])
        cast = scene.cast
        mine = fetch(db, Plan, db.scalar(select(Plan.id).where(Plan.enterprise_id == cast.ent.id)))
        assert mine.id in body["plan_ids"]
        readers = {
            "coordinator": cast.coordinator,
            "enterprise": cast.ent_user,
            "provider": scene.wide_user,
        }

        def seen(user: Any) -> tuple[int, Any]:
            r = client.get(f"/api/v1/plans/{mine.id}", headers=cast.headers(user))
            return r.status_code, r.json().get("preparing")

        assert {role: seen(user) for role, user in readers.items()} == dict.fromkeys(
            readers, (200, True)
        )
        listed = client.get("/api/v1/plans", headers=cast.headers(cast.coordinator)).json()
        assert {p["preparing"] for p in listed["items"] if p["id"] in body["plan_ids"]} == {True}
        # Those who could not read the plan before still cannot.
        for outsider in (cast.other_coordinator, cast.other_ent_user, cast.platform_user):
            r = client.get(f"/api/v1/plans/{mine.id}", headers=cast.headers(outsider))
            assert r.status_code == 404, (outsider.role, r.text)
        drain(db)
        assert {role: seen(user) for role, user in readers.items()} == dict.fromkeys(
            readers, (200, False)
        )


def test_two_drainers_never_take_the_same_plans(tmp_path: Path) -> None:
    """On PostgreSQL the second worker skips the first one's locked batch instead of
    waiting for it or preparing it again (a lock wait would fail fast, not hang)."""
    with own_database("postgresql", tmp_path) as url:
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        try:
            with sessions() as setup, setup.begin():
                ents = [make_enterprise(setup) for _ in range(4)]
                for ent in ents:
                    make_request(setup, ent, status="triaged")
                setup.flush()
                attach.attach_and_move(
                    setup,
                    enterprise_ids=[e.id for e in ents],
                    actor=None,
                    defer=attach.Deferral(run_id=7, inline_max=0),
                )
            first, second = sessions(), sessions()
            with first.begin(), second.begin():
                second.execute(text("SET LOCAL lock_timeout = '2s'"))
                assert preparation.prepare_batch(first, batch=2) == 2
                assert preparation.prepare_batch(second, batch=10) == 2  # the other two
                assert preparation.prepare_batch(second, batch=10) == 0
            first.close()
            second.close()
            with sessions() as check:
                assert preparation.awaiting(check) == 0
                updated = Counter(
                    check.scalars(select(Event.entity_id).where(Event.action == "plan.updated"))
                )
                assert len(updated) == 4
                assert set(updated.values()) == {1}
                assert check.scalar(select(func.count()).select_from(Plan)) == 4
        finally:
            engine.dispose()
