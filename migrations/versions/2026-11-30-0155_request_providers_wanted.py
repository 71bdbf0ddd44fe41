"""help requests may ask for a team: providers_wanted (1-5)

Revision ID: team_providers_wanted
Revises: notification_leases
Create Date: 2026-11-30 01:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "team_providers_wanted"
down_revision: str | None = "notification_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("help_requests") as batch:
        batch.add_column(
            sa.Column("providers_wanted", sa.Integer(), server_default="1", nullable=False)
        )
        batch.create_check_constraint(
            op.f("ck_help_requests_providers_wanted_range"), "providers_wanted BETWEEN 1 AND 5"
        )


def downgrade() -> None:
    with op.batch_alter_table("help_requests") as batch:
        batch.drop_constraint(op.f("ck_help_requests_providers_wanted_range"), type_="check")
        batch.drop_column("providers_wanted")
