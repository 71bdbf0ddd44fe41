"""Who is asking: the role and the scope every query and action is checked against.

In app.common, not app.auth: the request plumbing and every domain package read it, and
auth itself depends on several of them (its service records events, reads enterprises)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from app.models import Role


class Account(Protocol):
    """What a principal is made of, and whether the account may still act: a ``User``, or a
    row of its columns of these names."""

    @property
    def id(self) -> int: ...
    @property
    def email(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def enterprise_id(self) -> int | None: ...
    @property
    def provider_id(self) -> int | None: ...
    @property
    def region_prefixes(self) -> list[str] | None: ...
    @property
    def is_active(self) -> bool: ...


@dataclass(frozen=True)
class Principal:
    user_id: int
    email: str
    role: Role
    enterprise_id: int | None = None
    provider_id: int | None = None
    region_prefixes: tuple[str, ...] = ()
    via_api_key: bool = False  # integrations act as their user, but cannot mint more keys

    @classmethod
    def of(cls, user: Account, *, via_api_key: bool = False) -> Principal:
        return cls(
            user_id=user.id,
            email=user.email,
            role=user.role,
            enterprise_id=user.enterprise_id,
            provider_id=user.provider_id,
            region_prefixes=tuple(user.region_prefixes or ()),
            via_api_key=via_api_key,
        )

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_coordinator(self) -> bool:
        return self.role == Role.COORDINATOR

    @property
    def is_provider(self) -> bool:
        return self.role in (Role.EXPERT, Role.PLATFORM)

    @property
    def is_enterprise(self) -> bool:
        return self.role == Role.ENTERPRISE

    def covers_region(self, region_code: str) -> bool:
        """Admins cover everything; coordinators the codes under one of their prefixes."""
        if self.is_admin:
            return True
        return self.is_coordinator and any(region_code.startswith(p) for p in self.region_prefixes)

    @property
    def scope_shape(self) -> tuple[Role, int, bool, bool]:
        """What every ``visible_to`` branches on (role, how many region prefixes, which ids
        are set): two callers of one shape are scoped by the same statement with
        different values (``app.common.shapes``), given by :meth:`scope_params`."""
        return (
            self.role,
            len(self.region_prefixes),
            self.enterprise_id is None,
            self.provider_id is None,
        )

    def scope_params(self) -> dict[str, Any]:
        """The values of a scope built with bound parameters, under the names the
        ``visible_to`` functions give them."""
        params: dict[str, Any] = {
            "scope_enterprise_id": self.enterprise_id,
            "scope_provider_id": self.provider_id,
        }
        for i, prefix in enumerate(self.region_prefixes):
            params[f"scope_region_{i}"] = prefix
        return params
