"""``Idempotency-Key`` for creates: a retried POST replays the first response instead of
creating a duplicate. Stored in the same transaction as the create itself.

Same key and same body replays; same key and another body is 422; keys expire after
``KEY_LIFETIME`` and are purged set-based (a caller's own on each store, everyone's by the
sweep). The dependency touches the database only when the endpoint calls ``replay``, so an
endpoint may hash a password before its transaction begins. The dependencies that build one
per request (``IdempotencyDep``, ``IdempotencyApart``) live with the rest of the request
plumbing in app.deps, which sits above app.common.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.common.clock import as_utc, utc_now
from app.db import rows_matched
from app.errors import InvalidInput
from app.models import IdempotencyKey

KEY_LIFETIME = timedelta(hours=24)


def purge_expired(session: Session, *, now: datetime | None = None) -> int:
    """Delete every key older than ``KEY_LIFETIME`` in one statement; returns how many."""
    cutoff = (now or utc_now()) - KEY_LIFETIME
    return rows_matched(session, delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))


@dataclass
class Idempotency:
    session: Session
    user_id: int
    key: str | None
    method: str
    path: str

    def _hash(self, payload: BaseModel) -> str:
        return hashlib.sha256(payload.model_dump_json().encode()).hexdigest()

    def replay(self, payload: BaseModel) -> JSONResponse | None:
        if self.key is None:
            return None
        stored = self.session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.user_id == self.user_id, IdempotencyKey.key == self.key
            )
        )
        if stored is None:
            return None
        if as_utc(stored.created_at) < utc_now() - KEY_LIFETIME:
            self.session.delete(stored)  # expired: this request is a new one
            self.session.flush()
            return None
        if stored.request_hash != self._hash(payload) or stored.path != self.path:
            raise InvalidInput(
                "this Idempotency-Key was already used with a different request",
                field="Idempotency-Key",
            )
        return JSONResponse(stored.body, status_code=stored.status_code)

    def store(self, payload: BaseModel, result: BaseModel, status_code: int = 201) -> Any:
        if self.key is not None:
            self.session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.user_id == self.user_id,
                    IdempotencyKey.created_at < utc_now() - KEY_LIFETIME,
                )
            )
            self.session.add(
                IdempotencyKey(
                    user_id=self.user_id,
                    key=self.key,
                    method=self.method,
                    path=self.path,
                    request_hash=self._hash(payload),
                    status_code=status_code,
                    body=result.model_dump(mode="json"),
                    created_at=utc_now(),
                )
            )
            self.session.flush()
        return result
