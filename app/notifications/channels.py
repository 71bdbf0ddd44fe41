"""Which channels this deployment can send on, from the settings."""

from __future__ import annotations

from typing import Final

from app.settings import Settings

LOG: Final = "log"
EMAIL: Final = "email"
WEBHOOK: Final = "webhook"


def available_channels(settings: Settings) -> frozenset[str]:
    """The log and each user's own webhook always; e-mail once an SMTP relay is configured."""
    return frozenset({LOG, WEBHOOK, EMAIL} if settings.smtp_host else {LOG, WEBHOOK})
