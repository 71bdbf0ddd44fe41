"""``Idempotency-Key`` for creates: a retried POST replays the first response instead of
creating a duplicate. Stored in the same transaction as the create itself."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.common.clock import utc_now
from app.deps import CurrentPrincipal, DbSession
from app.errors import Conflict
from app.models import IdempotencyKey


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
        if stored.request_hash != self._hash(payload) or stored.path != self.path:
            raise Conflict(
                "this Idempotency-Key was already used with a different request",
                field="Idempotency-Key",
            )
        return JSONResponse(stored.body, status_code=stored.status_code)

    def store(self, payload: BaseModel, result: BaseModel, status_code: int = 201) -> Any:
        if self.key is not None:
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


def get_idempotency(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Idempotency:
    return Idempotency(
        session=session,
        user_id=principal.user_id,
        key=idempotency_key,
        method=request.method,
        path=request.url.path,
    )


IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
