"""notification preferences

Revision ID: notification_preferences
Revises: run_request_id
Create Date: 2026-11-29 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notification_preferences"
down_revision: str | None = "run_request_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("language", sa.String(length=8), nullable=False, server_default="zh")
        )
        batch_op.add_column(
            sa.Column("notify_channels", sa.JSON(), nullable=False, server_default='["log"]')
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("notify_channels")
        batch_op.drop_column("language")
