"""The demo data loader: valid codes, the demo log-ins, determinism and idempotence.

Database tests run on SQLite and PostgreSQL (the ``db`` fixture); the generator and the data
files are checked without a database. Loads are small (30 enterprises, 20 providers) so the
module stays fast; the 10,000 + 10,000 timing is measured with ``python -m seed``.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.codes import (
    check_industry_code,
    check_region_code,
    check_region_prefix,
    normalise_uscc,
)
from app.common.credentials import hash_secret, verify_secret
from app.models import (
    Category,
    Enterprise,
    EnterpriseSize,
    HelpRequest,
    Policy,
    Provider,
    ProviderConflict,
    ProviderKind,
    RequestStatus,
    Role,
    Severity,
    Tier,
    User,
)
from seed import load as seed_load
from seed.catalog import load_catalog
from seed.enterprises import REQUEST_SLOTS, EnterpriseGenerator
from seed.generate import DemoData, generate_demo
from seed.load import DEMO_LOGINS, DEMO_PASSWORD, SeedReport, load_demo
from seed.pools import Pools

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
SMALL: dict[str, Any] = {"enterprises": 30, "providers": 20, "seed": 7, "now": NOW}
CATEGORY_KEYS = frozenset(load_catalog().requests)


@cache
def _demo_hash() -> str:
    return hash_secret(DEMO_PASSWORD)


@pytest.fixture(autouse=True)
def _hash_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 is slow on purpose; a real hash of the demo password, computed once per run."""
    monkeypatch.setattr(seed_load, "hash_secret", lambda _secret: _demo_hash())


@pytest.fixture
def loaded(db: Session) -> SeedReport:
    return load_demo(db, **SMALL)


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _severities() -> dict[str, Severity]:
    major = {"technology_rd", "digital_transformation", "supply_chain"}
    return {k: Severity.MAJOR if k in major else Severity.ORDINARY for k in CATEGORY_KEYS}


def _generate(seed: int = 7, enterprises: int = 30, providers: int = 20) -> DemoData:
    return generate_demo(
        seed=seed,
        enterprises=enterprises,
        providers=providers,
        requests_per_enterprise=1.5,
        severities=_severities(),
        now=NOW,
    )


# --- a small load on both backends -----------------------------------------------------------


def test_load_writes_what_it_reports(db: Session, loaded: SeedReport) -> None:
    assert loaded.loaded
    assert (loaded.enterprises, loaded.experts + loaded.platforms) == (30, 20)
    assert loaded.platforms == 3  # about 15 %
    assert db.query(Enterprise).count() == 30
    assert db.query(HelpRequest).count() == loaded.help_requests > 0
    assert db.query(Provider).count() == 20
    assert db.query(ProviderConflict).count() == loaded.conflicts >= 1
    assert db.query(Policy).count() == loaded.policies == len(load_catalog().policies)
    assert db.query(User).count() == loaded.users == len(DEMO_LOGINS)


def test_enterprise_and_request_codes_are_valid(db: Session, loaded: SeedReport) -> None:
    for ent in db.scalars(select(Enterprise)):
        assert normalise_uscc(ent.uscc) == ent.uscc
        assert ent.uscc[2:8] == ent.region_code  # the USCC embeds the registration region
        check_region_code(ent.region_code)
        check_industry_code(ent.industry_code)
        low, high = {"micro": (1, 19), "small": (20, 299), "medium": (300, 999)}[ent.size]
        assert ent.headcount is not None
        assert low <= ent.headcount <= high
    severity = dict(db.execute(select(Category.key, Category.default_severity)).all())
    for req in db.scalars(select(HelpRequest)):
        assert req.severity == severity[req.category]
        assert 1 <= req.urgency <= 5
        assert 2 <= len(req.title) <= 200
        assert req.status in (
            RequestStatus.SUBMITTED,
            RequestStatus.TRIAGED,
            RequestStatus.WITHDRAWN,
        )


def test_provider_profiles_are_valid(db: Session, loaded: SeedReport) -> None:
    categories = set(db.scalars(select(Category.key)))
    for provider in db.scalars(select(Provider)):
        assert provider.skills
        assert set(provider.skills) <= categories
        assert all(level in (1, 2, 3) for level in provider.skills.values())
        assert provider.home_region_code is not None
        check_region_code(provider.home_region_code)
        for prefix in provider.regions:
            check_region_prefix(prefix)
        for prefix in provider.industries:
            check_industry_code(prefix, prefix_ok=True)
        assert provider.regions or provider.remote_ok  # "anywhere" means remote help is fine
        low, high = (1, 5) if provider.kind == ProviderKind.EXPERT else (10, 50)
        assert low <= provider.capacity <= high
        assert provider.expertise
        assert provider.organisation


def test_policies_are_valid(db: Session, loaded: SeedReport) -> None:
    categories = set(db.scalars(select(Category.key)))
    for policy in db.scalars(select(Policy)):
        assert set(policy.tiers) <= {t.value for t in Tier}
        assert set(policy.sizes) <= {s.value for s in EnterpriseSize}
        assert policy.categories
        assert set(policy.categories) <= categories
        for prefix in policy.region_prefixes:
            check_region_prefix(prefix)
        for prefix in policy.industry_prefixes:
            check_industry_code(prefix, prefix_ok=True)
        if policy.valid_from_date and policy.valid_until_date:
            assert policy.valid_from_date <= policy.valid_until_date


def test_demo_logins_exist_with_role_binding_and_password(db: Session, loaded: SeedReport) -> None:
    users = {u.email: u for u in db.scalars(select(User))}
    for email, role, _ in DEMO_LOGINS:
        assert users[email].role == Role(role)
        assert users[email].is_active
    assert users["coord.fj@zhuqi.demo"].region_prefixes == ["35"]
    assert users["coord.zz@zhuqi.demo"].region_prefixes == ["4101"]
    first = db.scalars(select(Enterprise).order_by(Enterprise.id)).first()
    assert first is not None
    assert first.region_code == "350582"
    assert users["enterprise@zhuqi.demo"].enterprise_id == first.id
    providers = db.scalars(select(Provider).order_by(Provider.id)).all()
    first_expert = next(p for p in providers if p.kind == ProviderKind.EXPERT)
    first_platform = next(p for p in providers if p.kind == ProviderKind.PLATFORM)
    assert users["expert@zhuqi.demo"].provider_id == first_expert.id
    assert users["platform@zhuqi.demo"].provider_id == first_platform.id
    hashes = {u.password_hash for u in users.values()}
    assert len(hashes) == 1  # hashed once, shared
    assert verify_secret(DEMO_PASSWORD, hashes.pop())


def test_second_load_is_a_no_op(db: Session, loaded: SeedReport) -> None:
    again = load_demo(db, **SMALL)
    assert not again.loaded
    assert "already" in again.message
    assert db.query(Enterprise).count() == 30
    assert db.query(User).count() == len(DEMO_LOGINS)


def test_existing_uscc_is_kept_not_duplicated(db: Session) -> None:
    first = _generate().enterprises[0]
    existing = Enterprise(**(first | {"name": "已登记企业有限公司"}))
    db.add(existing)
    db.flush()
    report = load_demo(db, **SMALL)
    assert report.existing_kept == 1
    assert report.enterprises == 29
    assert db.query(Enterprise).count() == 30
    user = db.scalars(select(User).where(User.email == "enterprise@zhuqi.demo")).one()
    assert user.enterprise_id == existing.id
    assert db.query(HelpRequest).filter_by(enterprise_id=existing.id).count() == 0


def _snapshot(db: Session) -> dict[str, list[Any]]:
    """The content of a load without ids or wall-clock timestamps."""
    uscc = dict(db.execute(select(Enterprise.id, Enterprise.uscc)).all())
    name = dict(db.execute(select(Provider.id, Provider.name)).all())
    return {
        "enterprises": sorted(
            tuple(row) for row in db.execute(select(Enterprise.uscc, Enterprise.name))
        ),
        "requests": sorted(
            (uscc[r.enterprise_id], r.category, r.title, r.urgency, r.status)
            for r in db.scalars(select(HelpRequest))
        ),
        "providers": sorted(
            (p.kind, p.name, p.organisation, sorted(p.skills.items()), p.regions, p.capacity)
            for p in db.scalars(select(Provider))
        ),
        "conflicts": sorted(
            (name[c.provider_id], uscc[c.enterprise_id])
            for c in db.scalars(select(ProviderConflict))
        ),
    }


@pytest.fixture
def savepoint_load(db: Session) -> Callable[[int], dict[str, list[Any]]]:
    """Load inside a savepoint and roll it back, so one test can compare two fresh loads."""

    def load(seed: int) -> dict[str, list[Any]]:
        nested = db.begin_nested()
        try:
            load_demo(db, **(SMALL | {"seed": seed}))
            return _snapshot(db)
        finally:
            nested.rollback()

    return load


def test_same_seed_same_rows(savepoint_load: Callable[[int], dict[str, list[Any]]]) -> None:
    first, second = savepoint_load(7), savepoint_load(7)
    assert first == second
    assert savepoint_load(8)["enterprises"] != first["enterprises"]


def test_progress_reports_every_stage_to_completion(db: Session) -> None:
    seen: dict[str, tuple[int, int]] = {}
    load_demo(db, **SMALL, progress=lambda stage, done, total: seen.update({stage: (done, total)}))
    assert {"enterprises", "help requests", "providers", "policies", "users"} <= set(seen)
    assert all(done == total for done, total in seen.values())


# --- the generator and the data files, without a database ------------------------------------


def test_generator_is_a_pure_function_of_its_arguments() -> None:
    assert _generate() == _generate()
    assert _generate(seed=8).enterprises != _generate().enterprises
    # Separate streams: more providers do not change the enterprises.
    assert _generate(providers=50).enterprises == _generate().enterprises


_DIGEST = """
import hashlib, json, sys
from tests.app.test_seed import _generate
data = _generate(enterprises=200)
print(hashlib.sha256(json.dumps([data.enterprises, data.requests], default=str).encode()).hexdigest())
"""


def test_the_same_seed_gives_the_same_data_in_another_process() -> None:
    """Not only twice in one process: a stream seeded from anything hashed by address (as
    ``None`` is on Python 3.11) would differ between processes, and the demo with it."""
    data = _generate(enterprises=200)
    digest = hashlib.sha256(
        json.dumps([data.enterprises, data.requests], default=str).encode()
    ).hexdigest()
    root = Path(__file__).resolve().parents[2]
    for _ in range(2):
        other = subprocess.run(
            [sys.executable, "-c", _DIGEST], cwd=root, capture_output=True, text=True, check=True
        )
        assert other.stdout.strip() == digest


def test_generated_mix_looks_like_a_provincial_programme() -> None:
    data = _generate(enterprises=3000, providers=400)
    sizes = Counter(e["size"] for e in data.enterprises)
    tiers = Counter(e["tier"] for e in data.enterprises)
    n = len(data.enterprises)
    assert sizes[EnterpriseSize.MEDIUM] < sizes[EnterpriseSize.SMALL] < sizes[EnterpriseSize.MICRO]
    assert (tiers[Tier.NONE] + tiers[Tier.INNOVATIVE]) / n > 0.6
    assert tiers[Tier.CHAMPION] < tiers[Tier.LITTLE_GIANT] < tiers[Tier.SPECIALISED]
    assert tiers[Tier.CHAMPION] / n < 0.03
    assert len({e["uscc"] for e in data.enterprises}) == n
    assert len({e["name"] for e in data.enterprises}) == n
    fujian = sum(e["region_code"].startswith("35") for e in data.enterprises)
    assert fujian / n > 0.4
    english = sum(r["title"].isascii() for _, r in data.requests) / len(data.requests)
    assert 0.1 < english < 0.3
    assert 0.8 < data.experts / (data.experts + data.platforms) < 0.9
    # A few open requests of a major category want a team of two; no other does.
    severities = _severities()
    teams = [r for _, r in data.requests if r["providers_wanted"] == 2]
    major = [r for _, r in data.requests if severities[r["category"]] == Severity.MAJOR]
    assert 0.02 < len(teams) / len(major) < 0.1
    assert {r["providers_wanted"] for _, r in data.requests} == {1, 2}
    assert all(severities[r["category"]] == Severity.MAJOR for r in teams)
    assert all(r["status"] != RequestStatus.WITHDRAWN for r in teams)


def test_data_files_hold_real_looking_codes() -> None:
    catalog = load_catalog()
    for county in catalog.counties:
        check_region_code(county.code)
        assert county.city_code in catalog.cities
        assert county.province_code in catalog.provinces
        assert set(county.industries) <= set(catalog.industries)
    assert len({c.code for c in catalog.counties}) == len(catalog.counties) >= 60
    for code in catalog.industries:
        check_industry_code(code)
    assert set(catalog.universities) <= set(catalog.provinces)


def test_templates_cover_every_category_and_use_known_slots(db: Session) -> None:
    categories = set(db.scalars(select(Category.key)))
    catalog = load_catalog()
    assert set(catalog.requests) == set(catalog.expertise) == categories
    firms = EnterpriseGenerator(catalog, Pools.build(1, size=10), random.Random(1), NOW)
    firms.enterprises(1)
    assert set(firms.request_slots(firms.drafts[0], "en")) == REQUEST_SLOTS
    for by_lang in catalog.requests.values():
        assert by_lang["zh"]
        assert by_lang["en"]
        for template in by_lang["zh"] + by_lang["en"]:
            assert _fields(template.title) | _fields(template.description) <= REQUEST_SLOTS
    for sentences in catalog.expertise.values():
        assert all(_fields(t) <= {"industries", "years"} for t in sentences["zh"] + sentences["en"])
    for org in catalog.organisations:
        assert set(org.skills) <= categories
    for platform in catalog.platforms:
        assert set(platform.skills) <= categories
        assert platform.scope in ("city", "province", "multi", "national")
