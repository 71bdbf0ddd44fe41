"""Publishing moves thousands of requests in one ``UPDATE``: no index of ``help_requests``
covers a column that update changes, so on PostgreSQL each row's new version is a heap-only
tuple on its own page (migration ``requests_heap_only_updates``), and a plan's requests are
still found through their enterprise."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from app.bundling import repository
from app.common.principal import Principal
from app.match_runs import publishing
from app.models import HelpRequest, MatchRun, Plan, RequestStatus
from tests.app.test_match_runs_api import Scene, drafted, scene
from tests.factories import fetch

__all__ = ["scene"]  # the fixture, re-used from the match-run tests

CHANGED = {"status", "plan_id", "version", "updated_at"}  # what publish sets on a request


def test_publish_updates_no_indexed_request_column(
    client: TestClient, db: Session, scene: Scene
) -> None:
    indexes = inspect(db.get_bind()).get_indexes("help_requests")
    assert {c for index in indexes for c in index["column_names"]} & CHANGED == set()
    run = drafted(client, db, scene)
    before = _request_updates(db)
    published = publishing.publish(
        db, principal=Principal.of(scene.cast.coordinator), run=fetch(db, MatchRun, run["id"])
    )
    db.flush()
    moved = db.scalars(select(HelpRequest.id).where(HelpRequest.status == RequestStatus.MATCHED))
    assert len(moved.all()) == len(published.offered) >= 2
    if before is not None and (after := _request_updates(db)) is not None:
        updated, heap_only = after[0] - before[0], after[1] - before[1]
        assert updated >= len(published.offered)
        assert heap_only == updated


def _request_updates(db: Session) -> tuple[int, int] | None:
    """Rows of ``help_requests`` this transaction updated, and how many of those in place
    (heap-only), on PostgreSQL; None on SQLite, which has no such thing."""
    if db.get_bind().dialect.name != "postgresql":
        return None
    updated, heap_only = db.execute(
        text(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
            " WHERE relname = 'help_requests'"
        )
    ).one()
    return int(updated), int(heap_only)


def test_a_plans_requests_are_found_through_its_enterprise(
    client: TestClient, db: Session, scene: Scene
) -> None:
    run = drafted(client, db, scene)
    published = publishing.publish(
        db, principal=Principal.of(scene.cast.coordinator), run=fetch(db, MatchRun, run["id"])
    )
    db.commit()
    for plan_id in published.plan_ids:
        plan = fetch(db, Plan, plan_id)
        linked = set(db.scalars(select(HelpRequest.id).where(HelpRequest.plan_id == plan_id)))
        assert set(db.scalars(select(HelpRequest.id).where(repository.of_plan(plan)))) == linked
        found = select(HelpRequest.id).where(
            repository.request_of_plans(db, {plan_id: plan.enterprise_id})
        )
        assert set(db.scalars(found)) == linked
        assert linked
