from __future__ import annotations

from fastapi import APIRouter

from app.common.schemas import problem_responses
from app.deps import CurrentPrincipal, DbSession, SettingsDep
from app.notifications import service as notification_service
from app.notifications.channels import available_channels
from app.notifications.schemas import NotificationSettings, NotificationSettingsRead

router = APIRouter(tags=["notifications"])
PATH = "/users/me/notification-settings"


@router.get(PATH, response_model=NotificationSettingsRead, responses=problem_responses(401))
def read_settings(
    session: DbSession, principal: CurrentPrincipal, settings: SettingsDep
) -> NotificationSettingsRead:
    return notification_service.read(
        session, principal=principal, available=available_channels(settings)
    )


@router.put(PATH, response_model=NotificationSettingsRead, responses=problem_responses(401, 422))
def replace_settings(
    data: NotificationSettings,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> NotificationSettingsRead:
    """Choose the channels (``log``, ``email`` when an SMTP relay is configured) and the
    language (``zh`` or ``en``) your reminders and escalations come in."""
    return notification_service.update(
        session, principal=principal, data=data, available=available_channels(settings)
    )
