"""plan preparation: a large publish marks its plans, the worker prepares them afterwards

Revision ID: plan_preparation
Revises: notification_backoff
Create Date: 2026-11-30 08:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "plan_preparation"
down_revision: str | None = "notification_backoff"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "preparation_run_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.add_column(
            sa.Column(
                "preparation_run_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch.create_index(
            "ix_plans_preparation_run_id",
            ["preparation_run_id"],
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.drop_index(
            "ix_plans_preparation_run_id",
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )
        batch.drop_column("preparation_run_id")
