"""re-match queue: a decline marks its request, the worker re-matches marked ones in batches

Revision ID: rematch_queue
Revises: plan_preparation
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "rematch_queue"
down_revision: str | None = "plan_preparation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "rematch_requested_at IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("help_requests") as batch:
        batch.add_column(
            sa.Column("rematch_requested_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.create_index(
            "ix_help_requests_rematch_requested_at",
            ["rematch_requested_at"],
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )


def downgrade() -> None:
    with op.batch_alter_table("help_requests") as batch:
        batch.drop_index(
            "ix_help_requests_rematch_requested_at",
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )
        batch.drop_column("rematch_requested_at")
