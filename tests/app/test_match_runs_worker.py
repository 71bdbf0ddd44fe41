"""Match-run workers against real, separately committed transactions.

These tests cannot use the rolled-back ``db`` session: claims, leases and crashes are about
several connections seeing each other's commits. They commit through ``engine`` and delete
what they created afterwards. They run on both databases; the races matter on PostgreSQL,
where workers really run side by side (SQLite serialises them).
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import matching
from app import cli as cli_module
from app.db import make_session_factory
from app.main import create_app
from app.match_runs import claims, runner
from app.match_runs import service as match_run_service
from app.match_runs.schemas import MatchRunCreate
from app.models import (
    Assignment,
    Enterprise,
    Event,
    HelpRequest,
    MatchRun,
    MatchRunStatus,
    Provider,
)
from app.settings import Settings
from app.worker.loop import Worker
from tests.conftest import TEST_SECRET
from tests.factories import make_enterprise, make_provider, make_request

LEASE = timedelta(seconds=1)


@dataclass
class World:
    """Committed rows of one test, deleted at its end."""

    factory: sessionmaker[Session]
    region: str
    enterprise_ids: list[int] = field(default_factory=list)
    provider_ids: list[int] = field(default_factory=list)
    request_ids: list[int] = field(default_factory=list)

    def queue(self) -> int:
        with self.factory() as session, session.begin():
            data = MatchRunCreate(scope_region=self.region)
            return match_run_service.create(session, principal=None, data=data).id

    def run(self, run_id: int) -> MatchRun:
        with self.factory() as session:
            run = session.get(MatchRun, run_id)
            assert run is not None
            return run

    def proposals(self, run_id: int) -> list[Assignment]:
        with self.factory() as session:
            statement = select(Assignment).where(Assignment.match_run_id == run_id)
            return list(session.scalars(statement))

    def succeeded_events(self, run_id: int) -> int:
        with self.factory() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(Event)
                    .where(
                        Event.entity_type == "match_runs",
                        Event.entity_id == run_id,
                        Event.action == "match_run.succeeded",
                    )
                )
                or 0
            )

    def clean(self) -> None:
        with self.factory() as session, session.begin():
            runs = select(MatchRun.id).where(MatchRun.scope_region == self.region)
            session.execute(
                delete(Event).where(Event.entity_type == "match_runs", Event.entity_id.in_(runs))
            )
            session.execute(delete(Assignment).where(Assignment.request_id.in_(self.request_ids)))
            session.execute(delete(MatchRun).where(MatchRun.scope_region == self.region))
            session.execute(delete(HelpRequest).where(HelpRequest.id.in_(self.request_ids)))
            session.execute(delete(Provider).where(Provider.id.in_(self.provider_ids)))
            session.execute(delete(Enterprise).where(Enterprise.id.in_(self.enterprise_ids)))


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    """Three requests in Jinjiang, two experts; a scope no other test uses."""
    factory = make_session_factory(engine)
    w = World(factory, region="350582")
    with factory() as session, session.begin():
        enterprise = make_enterprise(session, region_code=w.region)
        experts = [make_provider(session, capacity=2) for _ in range(2)]
        requests = [make_request(session, enterprise, status="triaged") for _ in range(3)]
        w.enterprise_ids = [enterprise.id]
        w.provider_ids = [p.id for p in experts]
        w.request_ids = [r.id for r in requests]
    try:
        yield w
    finally:
        w.clean()


class TestCrashedWorker:
    def test_a_run_whose_worker_died_is_retaken_and_finishes_exactly_once(
        self, engine: Engine, world: World
    ) -> None:
        run_id = world.queue()
        sessions = claims.sessions_of(engine)
        # worker A claims, reads and computes, then dies before writing
        a = claims.claim(sessions, "worker-A", lease=LEASE)
        assert a is not None
        assert (a.run_id, a.attempt) == (run_id, 1)
        assert runner.process_next(engine, "worker-B", lease=LEASE) is None  # A's lease holds
        inputs = runner.read_inputs(sessions, a)
        computed = runner.compute(inputs, sessions, a)
        time.sleep(LEASE.total_seconds() + 0.2)
        # worker B takes the run over after the lease expired and finishes it
        b = runner.process_next(engine, "worker-B", lease=LEASE)
        assert b == runner.Processed(run_id, "succeeded")
        # A wakes up: its late write and its progress reports are refused
        with pytest.raises(claims.LeaseLost):
            runner.write_result(sessions, a, inputs, computed)
        with pytest.raises(claims.LeaseLost):
            claims.report(sessions, a, "write", {})
        run = world.run(run_id)
        assert run.status == MatchRunStatus.SUCCEEDED
        assert run.attempts == 2
        assert run.claimed_by == "worker-B"
        rows = world.proposals(run_id)
        assert len(rows) == run.stats["proposals"] == len(computed.result.assignments) == 3
        assert len({a.request_id for a in rows}) == len(rows)
        assert world.succeeded_events(run_id) == 1

    def test_a_run_killing_its_workers_is_failed_after_the_last_attempt(
        self, engine: Engine, world: World
    ) -> None:
        run_id = world.queue()
        sessions = claims.sessions_of(engine)
        for attempt in range(1, 4):
            claimed = claims.claim(sessions, f"doomed-{attempt}", lease=LEASE)
            assert claimed is not None
            assert claimed.attempt == attempt
            time.sleep(LEASE.total_seconds() + 0.1)
        assert runner.process_next(engine, "survivor", lease=LEASE) is None
        run = world.run(run_id)
        assert run.status == MatchRunStatus.FAILED
        assert "abandoned" in run.error
        assert world.proposals(run_id) == []


class TestConcurrentWorkers:
    def test_many_workers_one_queued_run_exactly_one_writes(
        self, engine: Engine, world: World
    ) -> None:
        run_id = world.queue()
        start = threading.Barrier(8)
        results: list[runner.Processed | None] = []
        errors: list[BaseException] = []

        def poll(name: str) -> None:
            try:
                start.wait()
                results.append(runner.process_next(engine, name))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=poll, args=(f"w{i}",)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        done = [r for r in results if r is not None]
        assert done == [runner.Processed(run_id, "succeeded")]
        run = world.run(run_id)
        assert run.attempts == 1
        assert len(world.proposals(run_id)) == run.stats["proposals"] == 3
        assert world.succeeded_events(run_id) == 1


class TestCollector:
    def test_the_engine_solves_with_the_collector_paused_and_it_resumes_after(
        self, engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Why: its passes were 10-20 % of a fresh worker's solve (runner.compute)."""
        seen: list[bool] = []
        solve = matching.match

        def observed(*args: Any, **kwargs: Any) -> matching.MatchResult:
            seen.append(gc.isenabled())
            return solve(*args, **kwargs)

        monkeypatch.setattr(matching, "match", observed)
        gc.enable()
        run_id = world.queue()
        processed = runner.process_next(engine, "collector", lease=LEASE, run_id=run_id)
        assert processed == runner.Processed(run_id, "succeeded")
        assert seen == [False]
        assert gc.isenabled()


class TestWorkerLoop:
    def test_drain_processes_what_is_queued_and_returns(self, engine: Engine, world: World) -> None:
        run_id = world.queue()
        worker = Worker(claims.sessions_of(engine), worker_id="drainer", lease=LEASE)
        assert worker.drain() == [runner.Processed(run_id, "succeeded")]
        assert worker.drain() == []

    def test_the_embedded_worker_runs_queued_runs_while_the_service_is_up(
        self, database_url: str, world: World
    ) -> None:
        run_id = world.queue()
        settings = Settings(environment="test", secret_key=TEST_SECRET, database_url=database_url)
        app = create_app(settings)
        with TestClient(app):
            worker = app.state.match_worker
            deadline = time.monotonic() + 30
            while world.run(run_id).status != MatchRunStatus.SUCCEEDED:
                assert time.monotonic() < deadline, world.run(run_id).error
                time.sleep(0.2)
        assert worker.stopping.is_set()
        assert world.run(run_id).claimed_by.startswith("embedded@")

    def test_no_embedded_worker_when_switched_off(self, database_url: str) -> None:
        settings = Settings(
            environment="test",
            secret_key=TEST_SECRET,
            database_url=database_url,
            embedded_worker=False,
        )
        app = create_app(settings)
        with TestClient(app):
            assert not hasattr(app.state, "match_worker")


class TestCommandLine:
    def test_match_executes_a_run_and_prints_its_statistics(
        self, database_url: str, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        settings = Settings(environment="test", secret_key=TEST_SECRET, database_url=database_url)
        monkeypatch.setattr(cli_module, "get_settings", lambda: settings)
        result = CliRunner().invoke(
            cli_module.cli, ["match", "--region", world.region, "--category", "financing"]
        )
        assert result.exit_code == 0, result.output
        assert "candidate pairs" in result.output
        with world.factory() as session:
            run = session.scalars(select(MatchRun).where(MatchRun.scope_region == world.region))
            (only,) = run.all()
        assert only.status == MatchRunStatus.SUCCEEDED
        assert only.claimed_by.startswith("cli@")

    def test_bad_weights_exit_2(self, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        settings = Settings(environment="test", secret_key=TEST_SECRET, database_url=database_url)
        monkeypatch.setattr(cli_module, "get_settings", lambda: settings)
        result = CliRunner().invoke(
            cli_module.cli, ["match", "--region", "35", "--weights", '{"top_k": 0}']
        )
        assert result.exit_code == 2
        assert "top_k" in result.output

    def test_worker_once_drains_the_queue(
        self, database_url: str, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        run_id = world.queue()
        settings = Settings(environment="test", secret_key=TEST_SECRET, database_url=database_url)
        monkeypatch.setattr(cli_module, "get_settings", lambda: settings)
        result = CliRunner().invoke(cli_module.cli, ["worker", "--once"])
        assert result.exit_code == 0, result.output
        assert world.run(run_id).status == MatchRunStatus.SUCCEEDED

    @pytest.mark.long
    def test_worker_stops_cleanly_on_sigterm(self, database_url: str, engine: Engine) -> None:
        env = os.environ | {
            "ZHUQI_DATABASE_URL": database_url,
            "ZHUQI_ENVIRONMENT": "test",
            "ZHUQI_SECRET_KEY": TEST_SECRET,
        }
        code = "from app.cli import main; main()"
        process = subprocess.Popen(
            [sys.executable, "-c", code, "worker", "--poll", "0.2"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stderr is not None
            started = process.stderr.readline()
            assert "worker" in started
            assert "started" in started
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
