"""re-match failures: a request whose re-match fails is retried with back-off, then given up

Revision ID: rematch_failures
Revises: rematch_queue
Create Date: 2026-11-30 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "rematch_failures"
down_revision: str | None = "rematch_queue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("help_requests") as batch:
        batch.add_column(
            sa.Column("rematch_failures", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("help_requests") as batch:
        batch.drop_column("rematch_failures")
