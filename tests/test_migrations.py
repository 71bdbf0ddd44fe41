"""Alembic is the only source of the schema: it must round-trip and agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import make_engine
from app.migrate import downgrade, upgrade
from app.models import Base


def test_upgrade_downgrade_upgrade_and_no_drift(database_url: str) -> None:
    # database_url is a fresh, empty database of each backend (see conftest)
    engine = make_engine(database_url)
    try:
        upgrade(url=database_url)
        downgrade(url=database_url, revision="base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(url=database_url)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "render_as_batch": True}
            )
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
