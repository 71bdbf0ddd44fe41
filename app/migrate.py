"""Run Alembic from code, so an installed service needs no alembic.ini or working directory."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

import migrations


def alembic_config(*, url: str | None = None, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option(
        "file_template",
        "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s",
    )
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(
    *, url: str | None = None, connection: Connection | None = None, revision: str = "head"
) -> None:
    command.upgrade(alembic_config(url=url, connection=connection), revision)


def downgrade(
    *, url: str | None = None, connection: Connection | None = None, revision: str = "base"
) -> None:
    command.downgrade(alembic_config(url=url, connection=connection), revision)
