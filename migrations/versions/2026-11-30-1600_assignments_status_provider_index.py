"""assignments' status index also holds the provider: open assignments per provider from it

Revision ID: assignments_status_provider
Revises: rematch_failures
Create Date: 2026-11-30 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "assignments_status_provider"
down_revision: str | None = "rematch_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_index("ix_assignments_status")
        batch.create_index("ix_assignments_status_provider_id", ["status", "provider_id"])


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_index("ix_assignments_status_provider_id")
        batch.create_index("ix_assignments_status", ["status"])
