"""Structured logs: request ids in and out, one access line per request, no secrets."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from structlog.contextvars import bind_contextvars, reset_contextvars

from app.match_runs import runner
from app.models import MatchRun
from app.observability.logs import (
    HANDLER_NAME,
    configure_logging,
    direct_line,
    get_logger,
    log_info,
)
from tests.app.conftest import Cast
from tests.factories import PASSWORD, sessions_of_test

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """Everything logged during the test, parsed from the JSON lines our handler writes."""
    buffer = io.StringIO()
    configure_logging("DEBUG", json=True, stream=buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line]
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def access_lines(lines: Lines) -> list[dict[str, Any]]:
    return [line for line in lines() if line["logger"] == "zhuqi.access"]


class TestRequestId:
    def test_minted_returned_and_on_the_access_line(
        self, client: TestClient, cast: Cast, log_lines: Lines
    ) -> None:
        r = client.get(f"/api/v1/enterprises/{cast.ent.id}", headers=cast.headers(cast.admin))
        assert r.status_code == 200
        request_id = r.headers["X-Request-ID"]
        assert len(request_id) == 32
        [line] = access_lines(log_lines)
        assert line["request_id"] == request_id
        assert line["route"] == "/api/v1/enterprises/{enterprise_id}"
        assert line["method"] == "GET"
        assert line["status"] == 200
        assert line["duration_ms"] >= 0
        assert line["level"] == "info"

    def test_a_callers_id_is_kept(self, client: TestClient, log_lines: Lines) -> None:
        r = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a:42"})
        assert r.headers["X-Request-ID"] == "lb-7f3a:42"
        assert access_lines(log_lines)[0]["request_id"] == "lb-7f3a:42"

    @pytest.mark.parametrize("bad", ["x" * 129, "two words", "semi;colon", ""])
    def test_a_malformed_id_is_replaced(self, client: TestClient, bad: str) -> None:
        r = client.get("/healthz", headers={"X-Request-ID": bad})
        assert r.headers["X-Request-ID"] != bad
        assert len(r.headers["X-Request-ID"]) == 32

    def test_each_request_gets_its_own(self, client: TestClient) -> None:
        ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
        assert len(ids) == 3

    def test_unknown_routes_log_no_path(self, client: TestClient, log_lines: Lines) -> None:
        assert client.get("/api/v1/nothing/here/123?token=abc").status_code == 404
        [line] = access_lines(log_lines)
        assert line["route"] == "<unmatched>"
        assert line["status"] == 404
        assert "abc" not in json.dumps(line)

    def test_lines_logged_inside_a_sync_endpoint_carry_it(
        self, app: FastAPI, log_lines: Lines
    ) -> None:
        """``def`` endpoints run in the threadpool: the id must cross into the thread."""

        @app.get("/probe")
        def probe() -> dict[str, str]:
            logging.getLogger("zhuqi.probe").info("inside the endpoint")
            return {"thread": threading.current_thread().name}

        with TestClient(app) as client:
            r = client.get("/probe")
        assert r.json()["thread"] != threading.current_thread().name
        [inside] = [line for line in log_lines() if line["logger"] == "zhuqi.probe"]
        assert inside["request_id"] == r.headers["X-Request-ID"]


class TestRunsCarryTheRequestId:
    def test_queued_run_keeps_the_id_and_the_worker_logs_it(
        self, client: TestClient, cast: Cast, db: Session, log_lines: Lines
    ) -> None:
        r = client.post(
            "/api/v1/match-runs",
            json={"scope_region": "35"},
            headers=cast.headers(cast.coordinator) | {"X-Request-ID": "trace-run-1"},
        )
        assert r.status_code == 202, r.text
        run = db.get(MatchRun, r.json()["id"])
        assert run is not None
        assert run.request_id == "trace-run-1"
        processed = runner.process_next(sessions_of_test(db), "test-worker")
        assert processed is not None
        worker_lines = [line for line in log_lines() if line.get("run_id") == run.id]
        assert worker_lines
        assert {line["request_id"] for line in worker_lines} == {"trace-run-1"}


class TestNoSecrets:
    def test_password_and_token_never_reach_a_line(
        self, client: TestClient, cast: Cast, log_lines: Lines
    ) -> None:
        r = client.post(
            "/api/v1/auth/token",
            data={"username": cast.admin.email, "password": PASSWORD},
        )
        assert r.status_code == 200
        token = r.json()["access_token"]
        client.get("/api/v1/enterprises", headers={"Authorization": f"Bearer {token}"})
        text = json.dumps(log_lines())
        assert PASSWORD not in text
        assert token not in text

    def test_secret_fields_and_credentials_in_text_are_redacted(self, log_lines: Lines) -> None:
        get_logger("zhuqi.test").warning(
            "connecting to postgresql://app:hunter2-db@db:5432/zhuqi with Bearer abc.def.ghi",
            password="hunter2",
            api_key="zq_0123456789ab_SECRETSECRET",
            headers={"Authorization": "Bearer xyz", "Accept": "json"},
            webhook_secret="whsec_c2VjcmV0",
        )
        logging.getLogger("zhuqi.stdlib").error("key zq_0123456789ab_OTHERSECRET rejected")
        text = json.dumps(log_lines())
        for secret in ("hunter2", "SECRETSECRET", "OTHERSECRET", "xyz", "abc.def", "c2VjcmV0"):
            assert secret not in text
        first = log_lines()[0]
        assert first["password"] == "[redacted]"
        assert first["headers"]["Accept"] == "json"


@contextmanager
def ours_alone() -> Iterator[None]:
    """The root logger with our handler only, as a served process has it (pytest adds its
    capture handlers to the root for every test); restored afterwards."""
    root = logging.getLogger()
    others = [h for h in root.handlers if h.get_name() != HANDLER_NAME]
    for handler in others:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in others:
            root.addHandler(handler)


class TestDirectAccessLine:
    """``log_info`` writes straight to our handler when nothing else would see the line."""

    FIELDS: ClassVar[dict[str, Any]] = {
        "method": "GET",
        "route": "/api/v1/requests/{request_id}",
        "status": 200,
        "duration_ms": 1.25,
        "client": "127.0.0.1",
        "note": "connecting to postgresql://app:hunter2@db/zhuqi",
    }

    def test_the_same_line_as_through_stdlib(self, log_lines: Lines) -> None:
        logger = logging.getLogger("zhuqi.access.test")
        bind_contextvars(request_id="direct-1")
        try:
            with ours_alone():
                direct = direct_line()
                assert direct is not None
                assert direct.serves(logger)
                log_info(logger, "request", **self.FIELDS)
                logging.getLogger().addHandler(extra := logging.NullHandler())
                try:
                    assert not direct.serves(logger)
                    log_info(logger, "request", **self.FIELDS)  # the stdlib way
                finally:
                    logging.getLogger().removeHandler(extra)
        finally:
            reset_contextvars()
        first, second = log_lines()
        assert first.pop("timestamp") <= second.pop("timestamp")
        assert list(first.items()) == list(second.items())  # same keys, same order
        assert first["request_id"] == "direct-1"
        assert "hunter2" not in first["note"]

    def test_pytest_capture_still_gets_the_line(
        self, log_lines: Lines, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO):
            log_info(logging.getLogger("zhuqi.access.test"), "request", **self.FIELDS)
        assert [r.name for r in caplog.records] == ["zhuqi.access.test"]
        assert [line["event"] for line in log_lines()] == ["request"]

    def test_a_filter_on_our_handler_is_honoured(self, log_lines: Lines) -> None:
        [ours] = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
        refuse = logging.Filter("somewhere.else")  # passes only that logger's records
        ours.addFilter(refuse)
        try:
            with ours_alone():
                log_info(logging.getLogger("zhuqi.access.test"), "request", **self.FIELDS)
        finally:
            ours.removeFilter(refuse)
        assert log_lines() == []

    def test_a_logger_that_does_not_propagate_writes_nothing_of_ours(
        self, log_lines: Lines
    ) -> None:
        logger = logging.getLogger("zhuqi.access.quiet")
        logger.propagate = False
        try:
            with ours_alone():
                log_info(logger, "request", **self.FIELDS)
        finally:
            logger.propagate = True
        assert log_lines() == []

    def test_a_failing_stream_is_reported_not_raised(
        self, log_lines: Lines, capsys: pytest.CaptureFixture[str]
    ) -> None:
        class Broken(io.StringIO):
            def write(self, text: str) -> int:
                raise OSError("disk full")

        configure_logging("DEBUG", json=True, stream=Broken())
        with ours_alone():
            log_info(logging.getLogger("zhuqi.access.test"), "request", **self.FIELDS)
        reported = capsys.readouterr().err
        assert "--- Logging error ---" in reported
        assert "disk full" in reported
        assert reported.count("--- Logging error ---") == 1  # written once, not retried
