from __future__ import annotations

from datetime import datetime
from typing import Any

from app.common.schemas import Schema


class EventRead(Schema):
    id: int
    actor_id: int | None
    actor_label: str
    action: str
    entity_type: str
    entity_id: int | None
    region_code: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime
