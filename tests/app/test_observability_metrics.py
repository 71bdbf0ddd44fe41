"""``/metrics``: who may read it, and that each family moves when the thing it counts does."""

from __future__ import annotations

import urllib.request

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from app.common.clock import today, utc_now
from app.common.workdays import calendar_outlook
from app.match_runs import runner
from app.models import Notification, NotificationStatus, Plan, PlanStatus
from app.observability.metrics import REGISTRY, instrument_pool, start_exporter
from app.settings import Settings
from tests.app.conftest import Cast
from tests.conftest import TEST_SECRET
from tests.factories import sessions_of_test

METRICS_TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        database_url="sqlite://",
        metrics_token=METRICS_TOKEN,
    )


def scrape(client: TestClient) -> dict[str, float]:
    """Every sample of a scrape as ``name{label="v",...}`` -> value."""
    r = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


class TestAccess:
    def test_anonymous_is_refused(self, client: TestClient) -> None:
        assert client.get("/metrics").status_code == 401

    def test_a_wrong_token_is_refused(self, client: TestClient) -> None:
        r = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert r.status_code == 401

    @pytest.mark.parametrize("role", ["coordinator", "enterprise", "expert", "platform"])
    def test_other_roles_are_forbidden(self, client: TestClient, cast: Cast, role: str) -> None:
        r = client.get("/metrics", headers=cast.headers(cast.by_role()[role]))
        assert r.status_code == 403

    def test_an_admin_may_read(self, client: TestClient, cast: Cast) -> None:
        r = client.get("/metrics", headers=cast.headers(cast.admin))
        assert r.status_code == 200
        assert "zhuqi_http_requests_total" in r.text

    def test_the_scraper_token_may_read(self, client: TestClient) -> None:
        assert (
            "zhuqi_process_info"
            in client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        )


class TestFamilies:
    def test_requests_by_route_template_method_and_status(
        self, client: TestClient, cast: Cast
    ) -> None:
        key = (
            'zhuqi_http_requests_total{method="GET",'
            'route="/api/v1/enterprises/{enterprise_id}",status="404"}'
        )
        before = scrape(client).get(key, 0.0)
        r = client.get("/api/v1/enterprises/999999", headers=cast.headers(cast.admin))
        assert r.status_code == 404
        after = scrape(client)
        assert after[key] == before + 1
        latency = (
            'zhuqi_http_request_duration_seconds_count{method="GET",'
            'route="/api/v1/enterprises/{enterprise_id}"}'
        )
        assert after[latency] >= 1

    def test_queue_depth_runs_and_stage_seconds(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        succeeded = 'zhuqi_match_runs_processed_total{outcome="succeeded"}'
        snapshot = 'zhuqi_match_run_stage_seconds_count{stage="snapshot"}'
        before = scrape(client)
        assert before["zhuqi_match_run_queue_depth{}"] == 0
        r = client.post(
            "/api/v1/match-runs", json={"scope_region": "35"}, headers=cast.headers(cast.admin)
        )
        assert r.status_code == 202
        queued = scrape(client)
        assert queued["zhuqi_match_run_queue_depth{}"] == 1
        assert queued['zhuqi_match_runs{status="queued"}'] == 1
        processed = runner.process_next(sessions_of_test(db), "metrics-worker")
        assert processed is not None
        assert processed.outcome == "succeeded"
        after = scrape(client)
        assert after["zhuqi_match_run_queue_depth{}"] == 0
        assert after['zhuqi_match_runs{status="succeeded"}'] == 1
        assert after[succeeded] == before.get(succeeded, 0.0) + 1
        assert after[snapshot] == before.get(snapshot, 0.0) + 1

    def test_outbox_backlog_and_dead_letters_by_channel(
        self, client: TestClient, cast: Cast, db: Session
    ) -> None:
        for i, (channel, status) in enumerate(
            [
                ("email", NotificationStatus.PENDING),
                ("email", NotificationStatus.PENDING),
                ("log", NotificationStatus.PENDING),
                ("email", NotificationStatus.FAILED),
                ("log", NotificationStatus.SENT),
            ]
        ):
            db.add(
                Notification(
                    recipient_user_id=cast.admin.id,
                    channel=channel,
                    kind="test",
                    subject="s",
                    dedupe_key=f"metrics-{i}",
                    status=status,
                    created_at=utc_now(),
                )
            )
        db.commit()
        samples = scrape(client)
        assert samples['zhuqi_outbox_backlog{channel="email"}'] == 2
        assert samples['zhuqi_outbox_backlog{channel="log"}'] == 1
        assert samples['zhuqi_outbox_dead_letters{channel="email"}'] == 1

    def test_plans_awaiting_preparation(self, client: TestClient, cast: Cast, db: Session) -> None:
        assert scrape(client)["zhuqi_plans_awaiting_preparation{}"] == 0
        for ent in (cast.ent, cast.other_ent):
            db.add(Plan(enterprise_id=ent.id, status=PlanStatus.ACTIVE, preparation_run_id=9))
        db.commit()
        assert scrape(client)["zhuqi_plans_awaiting_preparation{}"] == 2

    def test_open_assignments_by_status(self, client: TestClient) -> None:
        samples = scrape(client)
        for status in ("proposed", "offered", "accepted", "active"):
            assert samples[f'zhuqi_assignments_open{{status="{status}"}}'] == 0


class TestAdmission:
    def test_the_admission_queue_is_exported(self, client: TestClient, settings: Settings) -> None:
        first = scrape(client)
        second = scrape(client)
        assert first["zhuqi_admission_limit{}"] == settings.inflight_limit
        assert first["zhuqi_admission_inflight{}"] == 1  # the scrape itself
        assert first["zhuqi_admission_waiting{}"] == 0
        assert (
            second["zhuqi_admission_admitted_total{}"]
            == first["zhuqi_admission_admitted_total{}"] + 1
        )
        assert second["zhuqi_admission_rejected_total{}"] == 0


class TestHolidayCalendar:
    def test_the_days_the_clocks_can_still_count_are_exported(
        self, client: TestClient, settings: Settings
    ) -> None:
        expected = calendar_outlook(today(), settings.holiday_file).days_left
        assert scrape(client)["zhuqi_holiday_calendar_days_left{}"] == expected


class TestPool:
    def test_checkouts_are_timed_and_give_ups_counted(self, database_url: str) -> None:
        tiny = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.05)
        try:
            instrument_pool(tiny)
            instrument_pool(tiny)  # idempotent: one wrapper, one observation per checkout
            count = "zhuqi_db_pool_checkout_seconds_count"
            before = REGISTRY.get_sample_value(count) or 0.0
            timeouts = REGISTRY.get_sample_value("zhuqi_db_pool_timeouts_total") or 0.0
            with tiny.connect():
                assert REGISTRY.get_sample_value("zhuqi_db_pool_checked_out") == 1
                with pytest.raises(PoolTimeout):
                    tiny.connect()
            assert REGISTRY.get_sample_value(count) == before + 2
            assert REGISTRY.get_sample_value("zhuqi_db_pool_timeouts_total") == timeouts + 1
            assert REGISTRY.get_sample_value("zhuqi_db_pool_checked_out") == 0
        finally:
            tiny.dispose()


def test_a_worker_serves_its_metrics_on_a_separate_bind() -> None:
    server = start_exporter(0, "127.0.0.1")
    try:
        port = server.server_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            body = r.read().decode()
        assert "zhuqi_match_runs_processed_total" in body
    finally:
        server.shutdown()
        server.server_close()
