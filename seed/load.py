"""Load the demo data set into a database, fast: plain dicts and chunked bulk INSERTs.

The loader flushes but never commits: the caller owns the transaction, so a failed load leaves
nothing behind. Enterprises and providers get their ids before they are inserted (PostgreSQL
hands them out from the table's own sequence, SQLite continues after the current maximum under
its write lock), so requests, conflicts and users can refer to them without reading anything
back. Loading is idempotent: when the demo administrator exists, nothing is loaded; otherwise
rows whose natural key already exists (USCC, policy title, e-mail) are kept, not duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import DeclarativeBase, Session

from app.common.clock import utc_now
from app.common.credentials import hash_secret
from app.models import (
    Category,
    Enterprise,
    HelpRequest,
    Policy,
    Provider,
    ProviderConflict,
    Role,
    User,
)
from seed.catalog import load_catalog
from seed.generate import DemoData, generate_demo

Progress = Callable[[str, int, int], None]

DEMO_PASSWORD = "zhuqi-demo"
DEMO_ADMIN = "admin@zhuqi.demo"
# (e-mail, role, what the log-in shows); every one has the password DEMO_PASSWORD.
DEMO_LOGINS: list[tuple[str, str, str]] = [
    (DEMO_ADMIN, "admin", "taxonomy, policy catalogue, coordinators"),
    ("coord.fj@zhuqi.demo", "coordinator", "Fujian (region 35)"),
    ("coord.zz@zhuqi.demo", "coordinator", "Zhengzhou (region 4101)"),
    ("enterprise@zhuqi.demo", "enterprise", "first enterprise: Jinjiang (350582) shoe maker"),
    ("expert@zhuqi.demo", "expert", "first expert: Quanzhou SME service centre"),
    ("platform@zhuqi.demo", "platform", "first platform: Quanzhou SME service platform"),
]
CHUNK = 2000
KEY_CHUNK = 500  # values per IN (...) when looking up natural keys


@dataclass
class SeedReport:
    """What a load did. ``loaded`` is False when the demo data was already there."""

    seed: int
    loaded: bool = True
    message: str = ""
    enterprises: int = 0
    help_requests: int = 0
    experts: int = 0
    platforms: int = 0
    conflicts: int = 0
    policies: int = 0
    users: int = 0
    existing_kept: int = 0  # generated rows whose natural key was already in the database
    seconds: float = 0.0


def load_demo(
    session: Session,
    *,
    enterprises: int = 200,
    providers: int = 120,
    requests_per_enterprise: float = 1.5,
    seed: int = 20261125,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> SeedReport:
    """Generate the demo data for ``seed`` and insert it; ``now`` anchors every timestamp."""
    started = time.perf_counter()
    report = SeedReport(seed=seed)
    notify: Progress = progress or (lambda _stage, _done, _total: None)
    if session.scalar(select(User.id).where(User.email == DEMO_ADMIN)) is not None:
        report.loaded = False
        report.message = f"demo data already loaded ({DEMO_ADMIN} exists); nothing changed"
        return report
    anchor = now or utc_now()
    severities = dict(session.execute(select(Category.key, Category.default_severity)).all())
    data = generate_demo(
        seed=seed,
        enterprises=enterprises,
        providers=providers,
        requests_per_enterprise=requests_per_enterprise,
        severities=severities,
        now=anchor,
    )
    notify("generate", 1, 1)
    _Loader(session, data, report, notify, anchor).run()
    report.seconds = round(time.perf_counter() - started, 2)
    report.message = f"loaded demo data for seed {seed} in {report.seconds} s"
    return report


@dataclass
class _Loader:
    """One load: writes each table in turn and keeps the ids the later tables refer to."""

    session: Session
    data: DemoData
    report: SeedReport
    notify: Progress
    now: datetime
    enterprise_ids: list[int] = field(default_factory=list)
    new_enterprises: set[int] = field(default_factory=set)
    provider_ids: list[int] = field(default_factory=list)

    def run(self) -> None:
        self.enterprises()
        self.requests()
        self.providers()
        self.conflicts()
        self.policies()
        self.users()
        self.session.flush()

    def enterprises(self) -> None:
        """Reserve ids for new enterprises; one whose USCC exists keeps its row and id."""
        generated = self.data.enterprises
        existing = _existing(
            self.session, Enterprise.uscc, Enterprise.id, [row["uscc"] for row in generated]
        )
        new = [i for i, row in enumerate(generated) if row["uscc"] not in existing]
        fresh = iter(_reserve_ids(self.session, Enterprise, len(new)))
        self.new_enterprises = set(new)
        self.enterprise_ids = [
            next(fresh) if i in self.new_enterprises else existing[row["uscc"]]
            for i, row in enumerate(generated)
        ]
        rows = [generated[i] | {"id": self.enterprise_ids[i]} for i in new]
        self.insert(Enterprise, rows, "enterprises")
        self.report.enterprises = len(rows)
        self.report.existing_kept += len(generated) - len(rows)

    def requests(self) -> None:
        """Requests of an enterprise that was already there are not added a second time."""
        rows = [
            row | {"enterprise_id": self.enterprise_ids[i]}
            for i, row in self.data.requests
            if i in self.new_enterprises
        ]
        self.insert(HelpRequest, rows, "help requests")
        self.report.help_requests = len(rows)

    def providers(self) -> None:
        self.provider_ids = _reserve_ids(self.session, Provider, len(self.data.providers))
        rows = [
            row | {"id": id_}
            for row, id_ in zip(self.data.providers, self.provider_ids, strict=True)
        ]
        self.insert(Provider, rows, "providers")
        self.report.experts, self.report.platforms = self.data.experts, self.data.platforms

    def conflicts(self) -> None:
        rows = [
            {
                "provider_id": self.provider_ids[p],
                "enterprise_id": self.enterprise_ids[e],
                "reason": reason,
                "created_at": self.now,
            }
            for p, e, reason in self.data.conflicts
        ]
        self.insert(ProviderConflict, rows, "conflicts")
        self.report.conflicts = len(rows)

    def policies(self) -> None:
        """The catalogue of policies.json; a title already in the database is left as it is."""
        catalogue = load_catalog().policies
        existing = _existing(self.session, Policy.title, Policy.id, [p["title"] for p in catalogue])
        stamps = {"created_at": self.now, "updated_at": self.now, "version": 1}
        rows = [p | stamps for p in catalogue if p["title"] not in existing]
        self.insert(Policy, rows, "policies")
        self.report.policies = len(rows)

    def users(self) -> None:
        """The demo log-ins, one argon2 hash shared by all (hashing is deliberately slow)."""
        existing = _existing(
            self.session, User.email, User.id, [email for email, _, _ in DEMO_LOGINS]
        )
        shared = {
            "password_hash": hash_secret(DEMO_PASSWORD),
            "is_active": True,
            "created_at": self.now,
            "updated_at": self.now,
        }
        rows = [row | shared for row in self.user_rows() if row["email"] not in existing]
        self.insert(User, rows, "users")
        self.report.users = len(rows)

    def user_rows(self) -> list[dict[str, Any]]:
        """One row per demo log-in whose entity exists in this load."""
        data = self.data

        def user(email: str, role: Role, full_name: str, **link: Any) -> dict[str, Any]:
            return {
                "email": email,
                "role": role,
                "full_name": full_name[:100],
                "region_prefixes": [],
                "enterprise_id": None,
                "provider_id": None,
            } | link

        rows = [
            user(DEMO_ADMIN, Role.ADMIN, "演示管理员 Demo Admin"),
            user(
                "coord.fj@zhuqi.demo",
                Role.COORDINATOR,
                "福建省协调员 Fujian coordinator",
                region_prefixes=["35"],
            ),
            user(
                "coord.zz@zhuqi.demo",
                Role.COORDINATOR,
                "郑州市协调员 Zhengzhou coordinator",
                region_prefixes=["4101"],
            ),
        ]
        if data.enterprises:
            rows.append(
                user(
                    "enterprise@zhuqi.demo",
                    Role.ENTERPRISE,
                    data.enterprises[0]["contact_name"],
                    enterprise_id=self.enterprise_ids[0],
                )
            )
        for email, role, index in (
            ("expert@zhuqi.demo", Role.EXPERT, data.first_expert),
            ("platform@zhuqi.demo", Role.PLATFORM, data.first_platform),
        ):
            if index is not None:
                rows.append(
                    user(
                        email,
                        role,
                        data.providers[index]["name"],
                        provider_id=self.provider_ids[index],
                    )
                )
        return rows

    def insert(
        self, model: type[DeclarativeBase], rows: Sequence[dict[str, Any]], stage: str
    ) -> None:
        """Chunked executemany INSERTs, reporting progress after each chunk.

        The statement targets the Table, not the mapped class: the ORM's bulk path asks
        PostgreSQL for RETURNING per row here and was about 4x slower for the same rows.
        """
        total = len(rows)
        self.notify(stage, 0, total)
        table = model.__table__
        assert isinstance(table, Table)  # every model maps one table
        statement = insert(table)
        for start in range(0, total, CHUNK):
            self.session.execute(statement, list(rows[start : start + CHUNK]))
            self.notify(stage, min(start + CHUNK, total), total)


# --- database helpers ------------------------------------------------------------------------


def _reserve_ids(session: Session, model: type[Enterprise | Provider], count: int) -> list[int]:
    """``count`` primary keys no other row has or will get.

    PostgreSQL: drawn from the column's own sequence, so concurrent inserts never collide and
    no ``setval`` is needed afterwards. SQLite: after the current maximum; the transaction
    holds the database's write lock (``BEGIN IMMEDIATE``), and new rowids continue after ours.
    """
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        statement = text(
            "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
        )
        params = {"table": model.__tablename__, "n": count}
        return [int(v) for v in session.scalars(statement, params)]
    start = (session.scalar(select(func.max(model.id))) or 0) + 1
    return list(range(start, start + count))


def _existing(session: Session, key: Any, id_column: Any, values: Iterable[str]) -> dict[str, int]:
    """Map the natural keys among ``values`` that are already stored to their row ids."""
    wanted = list(dict.fromkeys(values))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), KEY_CHUNK):
        chunk = wanted[start : start + KEY_CHUNK]
        found.update(session.execute(select(key, id_column).where(key.in_(chunk))).all())
    return found
