"""request category source and extra categories

Revision ID: intake_category_source
Revises: 0003_contract
Create Date: 2026-11-29 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "intake_category_source"
down_revision: str | None = "0003_contract"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("help_requests") as batch:
        batch.add_column(
            sa.Column(
                "category_source",
                sa.Enum(
                    "given",
                    "suggested",
                    "confirmed",
                    name="categorysource",
                    native_enum=False,
                    length=10,
                ),
                server_default="given",
                nullable=False,
            )
        )
        batch.add_column(
            sa.Column("extra_categories", sa.JSON(), server_default="[]", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("help_requests") as batch:
        batch.drop_column("extra_categories")
        batch.drop_column("category_source")
