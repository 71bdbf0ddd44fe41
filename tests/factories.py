"""Plain factory functions: build a valid row with sensible defaults, override what matters."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session

from app.common.codes import make_uscc
from app.common.credentials import create_access_token, hash_secret
from app.match_runs.claims import Sessions
from app.models import (
    Enterprise,
    EnterpriseSize,
    HelpRequest,
    Policy,
    Provider,
    ProviderKind,
    RequestStatus,
    Role,
    Severity,
    Tier,
    User,
)
from app.worker.loop import Worker

M = TypeVar("M")

PASSWORD = "correct horse battery"
_serial = itertools.count(1)


@cache
def password_hash() -> str:
    return hash_secret(PASSWORD)


def make_enterprise(session: Session, **overrides: Any) -> Enterprise:
    n = next(_serial)
    region = overrides.get("region_code", "350582")
    values: dict[str, Any] = {
        "name": f"晋江市测试纺织有限公司{n}",
        "uscc": make_uscc(region, 100000 + n),
        "region_code": region,
        "industry_code": "C17",
        "size": EnterpriseSize.SMALL,
        "tier": Tier.SPECIALISED,
        "headcount": 120,
    } | overrides
    enterprise = Enterprise(**values)
    session.add(enterprise)
    session.flush()
    return enterprise


def make_provider(session: Session, **overrides: Any) -> Provider:
    n = next(_serial)
    values: dict[str, Any] = {
        "kind": ProviderKind.EXPERT,
        "name": f"专家{n}",
        "organisation": "福建省中小企业服务中心",
        "expertise": "纺织 数字化 ERP 融资",
        "skills": {"financing": 3, "digital_transformation": 2},
        "industries": ["C17"],
        "regions": ["35"],
        "home_region_code": "350582",
        "capacity": 3,
    } | overrides
    provider = Provider(**values)
    session.add(provider)
    session.flush()
    return provider


def make_request(session: Session, enterprise: Enterprise, **overrides: Any) -> HelpRequest:
    values: dict[str, Any] = {
        "enterprise_id": enterprise.id,
        "category": "financing",
        "title": "流动资金紧张,需要贷款支持",
        "description": "原材料涨价,回款慢",
        "urgency": 4,
        "severity": Severity.ORDINARY,
        "status": RequestStatus.TRIAGED,
    } | overrides
    request = HelpRequest(**values)
    session.add(request)
    session.flush()
    return request


def make_policy(session: Session, **overrides: Any) -> Policy:
    values: dict[str, Any] = {
        "title": "专精特新中小企业贷款贴息",
        "summary": "对专精特新企业的流动资金贷款给予贴息",
        "issuer": "福建省工业和信息化厅",
        "tiers": ["specialised", "little_giant"],
    } | overrides
    policy = Policy(**values)
    session.add(policy)
    session.flush()
    return policy


def make_user(session: Session, role: Role, **overrides: Any) -> User:
    n = next(_serial)
    values: dict[str, Any] = {
        "email": f"{role.value}{n}@example.cn",
        "password_hash": password_hash(),
        "full_name": f"{role.value} {n}",
        "role": role,
        "region_prefixes": [],
    } | overrides
    user = User(**values)
    session.add(user)
    session.flush()
    return user


def auth_headers(user: User, secret_key: str) -> dict[str, str]:
    token, _ = create_access_token(
        user.id, token_version=user.token_version, secret_key=secret_key, minutes=5
    )
    return {"Authorization": f"Bearer {token}"}


def sessions_of_test(db: Session) -> Callable[[], Session]:
    """Hand code that opens its own transactions (the match runner, the worker) the test's
    session: what it commits becomes a savepoint of ``db``, rolled back after the test."""

    def factory() -> Session:
        db.commit()
        return db

    return factory


def fetch(session: Session, model: type[M], ident: Any) -> M:
    """``session.get`` of a row the test knows is there: a typed row, or the test fails."""
    row = session.get(model, ident)
    assert row is not None, f"{model.__name__} {ident!r} is not there"
    return row


def app_of(client: TestClient) -> FastAPI:
    """The application behind a test client (typed as any ASGI app), to read its state."""
    assert isinstance(client.app, FastAPI)
    return client.app


@contextmanager
def statements(target: Session | Connection | Engine) -> Iterator[list[str]]:
    """The SQL statements run meanwhile (an executemany counts once): for tests that prove
    a use case's statement count does not grow with its rows. A session is watched on its
    connection (the transaction's), an engine on every connection."""
    watched = target.connection() if isinstance(target, Session) else target
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(watched, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(watched, "before_cursor_execute", count)


def rematch_declined(db: Session) -> int:
    """Run the worker's re-match of declined (reopened) requests now, the very call its poll
    makes, in the test's transaction: where a test expects the runner-up's offer."""
    factory = sessions_of_test(db)
    worker = Worker(Sessions(factory, factory), worker_id="test", sweep_every=None)
    return worker.rematch_declined()


def query_plan(db: Session, statement: Any) -> str:
    """The database's plan for ``statement`` (EXPLAIN on PostgreSQL, EXPLAIN QUERY PLAN on
    SQLite), with sequential scans ruled out on PostgreSQL: a test's tables are small, and a
    small table rightly gets a scan where the index under test is what a large one needs."""
    sql = str(statement.compile(db.get_bind(), compile_kwargs={"literal_binds": True}))
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(db.scalars(text(f"EXPLAIN {sql}")))
    return "\n".join(row[-1] for row in db.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
