"""How long work only a worker does has waited: what shows a deployment running without one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.models import MatchRun, MatchRunStatus, Plan, PlanStatus
from app.observability.backlog import backlog
from app.settings import Settings
from tests.app.conftest import Cast
from tests.app.test_observability_metrics import METRICS_TOKEN, scrape
from tests.conftest import TEST_SECRET
from tests.factories import make_request

STALL = 300.0


def test_empty_queues_have_waited_nothing(db: Session) -> None:
    found = backlog(db, stall_seconds=STALL)
    assert found.oldest_seconds == {"rematch": 0.0, "runs": 0.0, "plans": 0.0}
    assert found.warning is None


def test_an_old_decline_waiting_for_its_rematch_warns(db: Session, cast: Cast) -> None:
    now = utc_now()
    make_request(db, cast.ent, rematch_requested_at=now - timedelta(minutes=12))
    make_request(db, cast.ent, rematch_requested_at=now - timedelta(minutes=1))
    db.flush()
    found = backlog(db, stall_seconds=STALL, now=now)
    assert found.oldest_seconds["rematch"] == pytest.approx(12 * 60, abs=1)
    assert found.warning is not None
    assert "re-match" in found.warning
    assert "12 min" in found.warning
    assert "zhuqi worker" in found.warning
    # Under the threshold: the age is reported, nothing is wrong yet.
    assert backlog(db, stall_seconds=13 * 60, now=now).warning is None


def test_a_retry_due_later_is_not_waiting(db: Session, cast: Cast) -> None:
    now = utc_now()
    make_request(db, cast.ent, rematch_requested_at=now + timedelta(minutes=5))
    db.flush()
    found = backlog(db, stall_seconds=STALL, now=now)
    assert found.oldest_seconds["rematch"] == 0.0
    assert found.warning is None


def test_queued_runs_and_plans_to_prepare_count_from_when_they_became_due(
    db: Session, cast: Cast
) -> None:
    now = utc_now()
    queued = MatchRun(scope_region="35", status=MatchRunStatus.QUEUED)
    queued.created_at = now - timedelta(hours=2)
    # Handed back when its lease ran out ten minutes ago: waiting since then, not since creation.
    handed_back = MatchRun(
        scope_region="41",
        status=MatchRunStatus.QUEUED,
        lease_expires_at=now - timedelta(minutes=10),
    )
    handed_back.created_at = now - timedelta(hours=5)
    published = MatchRun(
        scope_region="35", status=MatchRunStatus.SUCCEEDED, published_at=now - timedelta(minutes=7)
    )
    db.add_all([queued, handed_back, published])
    db.flush()
    db.add(
        Plan(enterprise_id=cast.ent.id, status=PlanStatus.ACTIVE, preparation_run_id=published.id)
    )
    db.flush()
    found = backlog(db, stall_seconds=STALL, now=now)
    assert found.oldest_seconds["runs"] == pytest.approx(2 * 3600, abs=1)
    assert found.oldest_seconds["plans"] == pytest.approx(7 * 60, abs=1)
    assert found.warning is not None
    assert "queued match runs for 120 min" in found.warning
    assert "published plans waiting for preparation for 7 min" in found.warning


def test_readyz_reports_the_backlog(client: TestClient) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    background = ready.json()["background"]
    assert set(background["oldest_wait_seconds"]) == {"rematch", "runs", "plans"}
    assert background["warning"] is None or "worker" in background["warning"]


@pytest.fixture
def settings() -> Settings:
    """The suite's settings, with the scrape token ``scrape`` sends."""
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        database_url="sqlite://",
        metrics_token=METRICS_TOKEN,
        stats_cache_seconds=0,
        board_cache_seconds=0,
    )


def test_metrics_export_the_oldest_wait_by_queue(
    client: TestClient, db: Session, cast: Cast
) -> None:
    key = 'zhuqi_background_oldest_wait_seconds{queue="rematch"}'
    assert scrape(client)[key] == 0
    make_request(db, cast.ent, rematch_requested_at=utc_now() - timedelta(minutes=3))
    db.commit()
    assert scrape(client)[key] == pytest.approx(180, abs=30)
