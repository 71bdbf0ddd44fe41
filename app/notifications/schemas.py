from __future__ import annotations

from pydantic import Field

from app.common.schemas import Schema
from app.notifications.templates import Language


class NotificationSettings(Schema):
    """How a user wants to hear from us: the channels (at least one) and the language."""

    channels: list[str] = Field(min_length=1, max_length=5, examples=[["log", "email"]])
    language: Language = "zh"


class NotificationSettingsRead(NotificationSettings):
    available_channels: list[str]
