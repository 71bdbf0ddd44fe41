"""SIGTERM mid-run: ``zhuqi serve`` (embedded worker) and ``zhuqi worker`` exit promptly and
hand the run back, so another worker takes it over at once — and nothing is half-written.

The container's PID 1 (tini) forwards SIGTERM to exactly these processes, so testing them
here covers ``docker stop`` without a Docker engine. The engine is replaced, in the child
process only, by one that never returns: the run is provably mid-compute when the signal
arrives, with no sleeping or timing in the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_session_factory
from app.match_runs import runner
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
from tests.conftest import TEST_SECRET
from tests.factories import make_enterprise, make_provider, make_request
from tests.live import free_port

REGION = "350524"  # Anxi: a scope no other test uses, since these rows are really committed
STUCK_ENGINE = """
import sys, threading
import matching
from app.cli import main

def never_returns(*args, **kwargs):
    print("computing", flush=True)
    threading.Event().wait()

matching.match = never_returns
sys.argv = ["zhuqi", *sys.argv[1:]]
main()
"""


@dataclass
class Queued:
    factory: sessionmaker[Session]
    run_id: int

    def run(self) -> MatchRun:
        with self.factory() as session:
            run = session.get(MatchRun, self.run_id)
            assert run is not None
            return run

    def proposals(self) -> int:
        with self.factory() as session:
            statement = select(Assignment.id).where(Assignment.match_run_id == self.run_id)
            return len(session.scalars(statement).all())


@pytest.fixture
def queued(engine: Engine) -> Iterator[Queued]:
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        enterprise = make_enterprise(session, region_code=REGION)
        providers = [make_provider(session, capacity=2) for _ in range(2)]
        requests = [make_request(session, enterprise, status="triaged") for _ in range(2)]
        run = match_run_service.create(
            session, principal=None, data=MatchRunCreate(scope_region=REGION)
        )
        ids = (enterprise.id, [p.id for p in providers], [r.id for r in requests], run.id)
    try:
        yield Queued(factory, ids[3])
    finally:
        with factory() as session, session.begin():
            runs = select(MatchRun.id).where(MatchRun.scope_region == REGION)
            session.execute(
                delete(Event).where(Event.entity_type == "match_runs", Event.entity_id.in_(runs))
            )
            session.execute(delete(Assignment).where(Assignment.request_id.in_(ids[2])))
            session.execute(delete(MatchRun).where(MatchRun.scope_region == REGION))
            session.execute(delete(HelpRequest).where(HelpRequest.id.in_(ids[2])))
            session.execute(delete(Provider).where(Provider.id.in_(ids[1])))
            session.execute(delete(Enterprise).where(Enterprise.id == ids[0]))


def start(database_url: str, *args: str) -> subprocess.Popen[str]:
    env = os.environ | {
        "ZHUQI_DATABASE_URL": database_url,
        "ZHUQI_ENVIRONMENT": "test",
        "ZHUQI_SECRET_KEY": TEST_SECRET,
        "ZHUQI_LOG_JSON": "true",
        "ZHUQI_SHUTDOWN_GRACE_SECONDS": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-c", STUCK_ENGINE, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_mid_run(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait until the run is inside the engine, SIGTERM, and return (exit code, stderr)."""
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "computing", line
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        return process.returncode, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def assert_handed_back_and_taken_over(queued: Queued, engine: Engine) -> None:
    run = queued.run()
    assert run.status == MatchRunStatus.QUEUED
    assert run.claimed_by == ""
    assert run.lease_expires_at is None
    assert queued.proposals() == 0  # nothing half-written
    # Another worker takes it at once: the lease (60 s) has not had to expire.
    processed = runner.process_next(engine, "successor", run_id=queued.run_id)
    assert processed is not None
    assert processed.outcome == "succeeded"
    assert queued.run().status == MatchRunStatus.SUCCEEDED
    assert queued.proposals() > 0


@pytest.mark.long
def test_worker_hands_back_its_run_on_sigterm(
    database_url: str, engine: Engine, queued: Queued
) -> None:
    code, stderr = stop_mid_run(start(database_url, "worker", "--poll", "0.2"))
    assert code == 0, stderr
    assert "released" in stderr
    assert_handed_back_and_taken_over(queued, engine)


@pytest.mark.long
def test_serve_hands_back_the_embedded_workers_run_on_sigterm(
    database_url: str, engine: Engine, queued: Queued
) -> None:
    process = start(database_url, "serve", "--port", str(free_port()))
    code, stderr = stop_mid_run(process)
    # uvicorn shuts down cleanly, then re-raises the signal so its parent sees why it ended.
    assert code in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    assert "released" in stderr
    assert_handed_back_and_taken_over(queued, engine)
