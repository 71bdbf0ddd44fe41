"""vetting of providers and verification of an enterprise's claimed tier

Existing providers (the demo data and everything staff created) stay approved: the column's
server default fills them in. Existing enterprises keep their tier as verified.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIERS = ("none", "innovative", "specialised", "little_giant", "champion")


def upgrade() -> None:
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "vetting",
                sa.Enum(
                    "pending",
                    "approved",
                    "rejected",
                    name="vetting",
                    native_enum=False,
                    length=10,
                ),
                server_default="approved",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("vetting_reason", sa.String(length=500), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("vetted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_providers_vetting"), ["vetting"], unique=False)

    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "claimed_tier",
                sa.Enum(*_TIERS, name="tier", native_enum=False, length=20),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("tier_reason", sa.String(length=500), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("tier_verified_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.drop_column("tier_verified_at")
        batch_op.drop_column("tier_reason")
        batch_op.drop_column("claimed_tier")

    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_providers_vetting"))
        batch_op.drop_column("vetted_at")
        batch_op.drop_column("vetting_reason")
        batch_op.drop_column("vetting")
