from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response, status
from pydantic import BaseModel

from app.common.concurrency import set_etag
from app.common.pagination import PageInQuery
from app.common.schemas import Page, problem_responses
from app.common.types import PathId
from app.deps import AdminOnly, DbSession, IdempotencyDep, OneHopRoute, SettingsDep
from app.models import WebhookSubscription
from app.webhooks import service as webhook_service
from app.webhooks.schemas import (
    WebhookCreate,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)

router = APIRouter(route_class=OneHopRoute, prefix="/webhooks", tags=["webhooks"])


def get_subscription(
    webhook_id: PathId, session: DbSession, _admin: AdminOnly
) -> WebhookSubscription:
    return webhook_service.get(session, webhook_id)


CurrentWebhook = Annotated[WebhookSubscription, Depends(get_subscription)]


@router.post(
    "",
    response_model=WebhookWithSecret,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422),
)
def create_webhook(
    data: WebhookCreate,
    session: DbSession,
    admin: AdminOnly,
    settings: SettingsDep,
    idem: IdempotencyDep,
) -> object:
    """Subscribe a URL to event types. The answer holds the signing secret, shown only now."""
    if (replayed := idem.replay(data)) is not None:
        return replayed
    created = webhook_service.create(session, principal=admin, data=data, settings=settings)
    return idem.store(data, created)


@router.get("", response_model=Page[WebhookRead], responses=problem_responses(401, 403))
def list_webhooks(
    session: DbSession, _admin: AdminOnly, page_query: PageInQuery, request: Request
) -> Page[WebhookRead]:
    page = page_query.page(request)
    return webhook_service.list_(session, page=page)


@router.get("/{webhook_id}", response_model=WebhookRead, responses=problem_responses(401, 403, 404))
def read_webhook(
    webhook_id: PathId, session: DbSession, _admin: AdminOnly, response: Response
) -> WebhookSubscription:
    # Loaded here, not through ``CurrentWebhook``: a synchronous dependency is a worker-thread hop
    # of its own, and a read needs only the endpoint's (``OneHopRoute``).
    webhook = webhook_service.get(session, webhook_id)
    set_etag(response, webhook.version)
    return webhook


@router.patch(
    "/{webhook_id}",
    response_model=WebhookRead,
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
def update_webhook(
    data: WebhookUpdate,
    webhook: CurrentWebhook,
    session: DbSession,
    settings: SettingsDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> WebhookSubscription:
    """Change the URL or events; ``{"paused": true}`` holds deliveries until resumed."""
    updated = webhook_service.update(
        session, subscription=webhook, data=data, if_match=if_match, settings=settings
    )
    set_etag(response, updated.version)
    return updated


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    responses=problem_responses(401, 403, 404),
)
def rotate_secret(webhook: CurrentWebhook, session: DbSession) -> WebhookWithSecret:
    """A new signing secret, shown only now; the old one stops working at once."""
    return webhook_service.rotate_secret(session, subscription=webhook)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[WebhookDeliveryRead],
    responses=problem_responses(401, 403, 404),
)
def list_deliveries(
    webhook: CurrentWebhook, session: DbSession, page_query: PageInQuery, request: Request
) -> Page[WebhookDeliveryRead]:
    """The delivery log: status, attempts, last answer and the next attempt, oldest first."""
    page = page_query.page(request)
    return webhook_service.deliveries(session, subscription=webhook, page=page)


class _NoBody(BaseModel):
    """What an action without a body hashes as, for its Idempotency-Key."""


NO_BODY = _NoBody()


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/replay",
    response_model=WebhookDeliveryRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 404),
)
def replay_delivery(
    webhook: CurrentWebhook, delivery_id: PathId, session: DbSession, idem: IdempotencyDep
) -> object:
    """Queue a delivery again, now (same ``webhook-id``); a retried call with the same
    ``Idempotency-Key`` queues it once."""
    if (replayed := idem.replay(NO_BODY)) is not None:
        return replayed
    delivery = webhook_service.replay(session, subscription=webhook, delivery_id=delivery_id)
    return idem.store(NO_BODY, WebhookDeliveryRead.model_validate(delivery), status_code=202)
