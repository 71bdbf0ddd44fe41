"""Alembic is the only source of the schema: it must round-trip and agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, inspect
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.db import make_engine
from app.migrate import downgrade, upgrade
from app.models import (
    Assignment,
    AssignmentOrigin,
    AssignmentStatus,
    Base,
    Enterprise,
    Feedback,
    FollowUp,
    FollowUpKind,
    HelpRequest,
    Plan,
    Provider,
)
from tests.app.test_request_facts import from_scratch, keeps_facts, maintained
from tests.factories import make_enterprise, make_provider, make_request


def test_upgrade_downgrade_upgrade_and_no_drift(database_url: str) -> None:
    # database_url is a fresh, empty database of each backend (see conftest)
    engine = make_engine(database_url)
    try:
        upgrade(url=database_url)
        downgrade(url=database_url, revision="base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(url=database_url)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "render_as_batch": True}
            )
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_request_facts_are_backfilled_in_batches_from_existing_rows(database_url: str) -> None:
    """Requests and offers written before the facts table existed get their facts on upgrade
    (SQLite), ids far enough apart that the backfill takes several batches (5,000 ids each)."""
    engine = make_engine(database_url)
    try:
        downgrade(url=database_url, revision="base")
        upgrade(url=database_url, revision="assignments_status_provider")
        with Session(engine) as session:
            _history_before_the_facts(session)
            session.commit()
        upgrade(url=database_url)
        with Session(engine) as session:
            facts = from_scratch(session)
            assert len(facts) == 3
            # SQLite keeps the facts (triggers); PostgreSQL's /stats reads the sources instead.
            assert maintained(session) == (facts if keeps_facts(session) else {})
            assert [f[7:] for f in facts.values()].count((0,) * 7) == 1
            for model in (FollowUp, Feedback, Assignment, Plan, HelpRequest, Provider, Enterprise):
                session.execute(delete(model))  # as it came: what the migrations seed only
            session.commit()
    finally:
        engine.dispose()


def _history_before_the_facts(session: Session) -> None:
    """Three requests (ids 1, 7,000 and 12,345): one never offered, one declined then
    accepted and rated, one accepted with a follow-up."""
    enterprise = make_enterprise(session)
    provider = make_provider(session)
    plan = Plan(enterprise_id=enterprise.id)
    session.add(plan)
    now = utc_now()
    requests = [make_request(session, enterprise, id=n) for n in (1, 7000, 12345)]
    declined, accepted, followed = (
        Assignment(
            request_id=request.id,
            provider_id=provider.id,
            origin=AssignmentOrigin.MANUAL,
            status=status,
            offered_at=now,
            responded_at=now,
        )
        for request, status in (
            (requests[1], AssignmentStatus.DECLINED),
            (requests[1], AssignmentStatus.COMPLETED),
            (requests[2], AssignmentStatus.ACCEPTED),
        )
    )
    session.add_all([declined, accepted, followed])
    session.flush()
    session.add(Feedback(assignment_id=accepted.id, rating=4, satisfied=True, created_at=now))
    session.add(
        FollowUp(
            plan_id=plan.id,
            assignment_id=followed.id,
            kind=FollowUpKind.VISIT,
            occurred_at=now,
            created_at=now,
        )
    )
