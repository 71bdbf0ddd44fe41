"""Who sees which notifications: the one place that scopes them by role."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select

from app.common.principal import Principal
from app.common.regions import region_clause
from app.models import Notification


def notifications_visible_to(principal: Principal) -> Select[Any]:
    """Your own; coordinators also those of their regions; admins all."""
    statement = select(Notification)
    mine = Notification.recipient_user_id == principal.user_id
    if principal.is_coordinator:
        return statement.where(
            or_(mine, region_clause(Notification.region_code, principal.region_prefixes))
        )
    if principal.is_admin:
        return statement
    return statement.where(mine)
