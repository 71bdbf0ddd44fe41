from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response, status

from app.common.concurrency import set_etag
from app.common.pagination import PageInQuery
from app.common.schemas import Page, problem_responses
from app.deps import CurrentPrincipal, DbSession, IdempotencyDep, OneHopRoute, SettingsDep
from app.models import WebhookSubscription
from app.notifications import service as notification_service
from app.notifications.channels import available_channels
from app.notifications.schemas import NotificationSettings, NotificationSettingsRead
from app.webhooks import personal
from app.webhooks.schemas import (
    NotificationWebhookCreate,
    NotificationWebhookRead,
    NotificationWebhookUpdate,
    NotificationWebhookWithSecret,
    WebhookDeliveryRead,
)

router = APIRouter(route_class=OneHopRoute, tags=["notifications"])
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
    """Choose the channels (``log``; ``webhook`` once you have a notification webhook;
    ``email`` when an SMTP relay is configured) and the language (``zh`` or ``en``) your
    reminders and escalations come in."""
    return notification_service.update(
        session, principal=principal, data=data, available=available_channels(settings)
    )


HOOK = "/users/me/notification-webhook"


def get_own_webhook(session: DbSession, principal: CurrentPrincipal) -> WebhookSubscription:
    return personal.get(session, principal.user_id)


OwnWebhook = Annotated[WebhookSubscription, Depends(get_own_webhook)]


@router.post(
    HOOK,
    response_model=NotificationWebhookWithSecret,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 409, 422),
)
def create_webhook(
    data: NotificationWebhookCreate,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> object:
    """Your own endpoint for your notices, signed per Standard Webhooks. The answer holds
    the signing secret, shown only now; then choose the ``webhook`` channel."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    created = personal.create(session, user_id=principal.user_id, data=data, settings=settings)
    return idem.store(data, created)


@router.get(HOOK, response_model=NotificationWebhookRead, responses=problem_responses(401, 404))
def read_webhook(
    session: DbSession, principal: CurrentPrincipal, response: Response
) -> WebhookSubscription:
    # Loaded here, not through ``OwnWebhook``: a synchronous dependency is a worker-thread hop
    # of its own, and a read needs only the endpoint's (``OneHopRoute``).
    webhook = personal.get(session, principal.user_id)
    set_etag(response, webhook.version)
    return webhook


@router.patch(
    HOOK,
    response_model=NotificationWebhookRead,
    responses=problem_responses(401, 404, 412, 422, 428),
)
def update_webhook(
    data: NotificationWebhookUpdate,
    webhook: OwnWebhook,
    session: DbSession,
    settings: SettingsDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> WebhookSubscription:
    """A new URL, or ``{"paused": true}``: notices wait in the delivery log until resumed."""
    updated = personal.update(
        session, endpoint=webhook, data=data, if_match=if_match, settings=settings
    )
    set_etag(response, updated.version)
    return updated


@router.delete(HOOK, status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 404))
def delete_webhook(webhook: OwnWebhook, session: DbSession, principal: CurrentPrincipal) -> None:
    """Removes the endpoint and the ``webhook`` channel from your choice."""
    notification_service.remove_webhook(session, principal=principal, endpoint=webhook)


@router.post(
    f"{HOOK}/rotate-secret",
    response_model=NotificationWebhookWithSecret,
    responses=problem_responses(401, 404),
)
def rotate_webhook_secret(webhook: OwnWebhook, session: DbSession) -> NotificationWebhookWithSecret:
    """A new signing secret, shown only now; the old one stops working at once."""
    return personal.rotate_secret(session, endpoint=webhook)


@router.get(
    f"{HOOK}/deliveries",
    response_model=Page[WebhookDeliveryRead],
    responses=problem_responses(401, 404),
)
def list_webhook_deliveries(
    webhook: OwnWebhook, session: DbSession, page_query: PageInQuery, request: Request
) -> Page[WebhookDeliveryRead]:
    """What was sent to your endpoint: status, attempts, last answer, oldest first."""
    page = page_query.page(request)
    return personal.deliveries(session, endpoint=webhook, page=page)
