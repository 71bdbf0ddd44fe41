"""The named peer of ``bench/load.py``: a bare FastAPI app doing one indexed query per request.

Same framework, same server, same database and the same engine settings as zhuqi, but
nothing of ours: no auth, no scoping, no transactions beyond the one read, no pagination.
Its throughput is the ceiling the real service is measured against.

    uvicorn --factory bench.bare_app:app_factory   (DATABASE_URL as for zhuqi)
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from app.db import make_engine


def app_factory() -> FastAPI:
    engine = make_engine(os.environ["DATABASE_URL"], pool_size=20)
    app = FastAPI()

    @app.get("/items/{item_id}")
    def read_item(item_id: int) -> dict[str, Any]:
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT id, name, region_code, industry_code FROM enterprises WHERE id = :id"),
                {"id": item_id},
            ).one_or_none()
        return dict(row._mapping) if row is not None else {}

    return app
