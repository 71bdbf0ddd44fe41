"""A cast with one user per role, and enterprises/providers in and out of each scope."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from app.models import Enterprise, Provider, ProviderKind, Role, User
from app.settings import Settings
from tests.app.webhook_receiver import Receiver, serving
from tests.factories import auth_headers, make_enterprise, make_provider, make_user


@dataclass
class Cast:
    """``ent`` is in Jinjiang (350582, Fujian); ``other_ent`` in Zhengzhou (410105, Henan)."""

    settings: Settings
    ent: Enterprise
    other_ent: Enterprise
    expert: Provider
    platform: Provider
    admin: User
    coordinator: User  # regions ["35"]
    other_coordinator: User  # regions ["41"]
    ent_user: User
    other_ent_user: User
    expert_user: User
    platform_user: User

    def headers(self, user: User) -> dict[str, str]:
        return auth_headers(user, self.settings.secret_key)

    def by_role(self) -> dict[str, User]:
        return {
            "admin": self.admin,
            "coordinator": self.coordinator,
            "other_coordinator": self.other_coordinator,
            "enterprise": self.ent_user,
            "other_enterprise": self.other_ent_user,
            "expert": self.expert_user,
            "platform": self.platform_user,
        }


@pytest.fixture
def cast(db: Session, settings: Settings) -> Cast:
    ent = make_enterprise(db, region_code="350582")
    other_ent = make_enterprise(db, region_code="410105", name="郑州测试机械有限公司")
    expert = make_provider(db)
    platform = make_provider(
        db,
        kind=ProviderKind.PLATFORM,
        name="泉州工业互联网平台",
        capacity=20,
        home_region_code="350500",
    )
    cast = Cast(
        settings=settings,
        ent=ent,
        other_ent=other_ent,
        expert=expert,
        platform=platform,
        admin=make_user(db, Role.ADMIN),
        coordinator=make_user(db, Role.COORDINATOR, region_prefixes=["35"]),
        other_coordinator=make_user(db, Role.COORDINATOR, region_prefixes=["41"]),
        ent_user=make_user(db, Role.ENTERPRISE, enterprise_id=ent.id),
        other_ent_user=make_user(db, Role.ENTERPRISE, enterprise_id=other_ent.id),
        expert_user=make_user(db, Role.EXPERT, provider_id=expert.id),
        platform_user=make_user(db, Role.PLATFORM, provider_id=platform.id),
    )
    db.commit()
    return cast


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real Standard Webhooks receiver on loopback, verifying every signature."""
    with serving() as state:
        yield state
