from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from app.common.schemas import Schema
from app.models import WebhookDeliveryStatus

EventName = Annotated[
    str, Field(min_length=1, max_length=60, pattern=r"^(\*|[a-z_]+\.(\*|[a-z_]+))$")
]


class WebhookCreate(Schema):
    url: str = Field(min_length=8, max_length=2000, examples=["https://erp.example.com/hooks"])
    events: list[EventName] = Field(
        min_length=1,
        max_length=50,
        description="Event types (`match_run.succeeded`), a family (`assignment.*`) or `*`",
    )
    description: str = Field(default="", max_length=300)


class WebhookUpdate(Schema):
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    events: list[EventName] | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=300)
    paused: bool | None = None


class WebhookRead(Schema):
    id: int
    url: str
    events: list[str]
    description: str
    paused: bool
    version: int
    created_at: datetime


class WebhookWithSecret(WebhookRead):
    secret: str = Field(description="`whsec_…`: shown once; verify signatures with it")


class WebhookDeliveryRead(Schema):
    id: int
    subscription_id: int
    event_type: str
    message_id: str
    status: WebhookDeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class NotificationWebhookCreate(Schema):
    """Your own endpoint for your notices (the ``webhook`` notification channel)."""

    url: str = Field(min_length=8, max_length=2000, examples=["https://im.example.com/hooks/me"])


class NotificationWebhookUpdate(Schema):
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    paused: bool | None = None


class NotificationWebhookRead(Schema):
    id: int
    url: str
    paused: bool
    version: int
    created_at: datetime


class NotificationWebhookWithSecret(NotificationWebhookRead):
    secret: str = Field(description="`whsec_…`: shown once; verify signatures with it")
