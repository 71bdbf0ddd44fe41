"""personal notification webhooks: a subscription owned by a user

Revision ID: personal_webhooks
Revises: text_unmatched_reasons
Create Date: 2026-11-30 01:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "personal_webhooks"
down_revision: str | None = "text_unmatched_reasons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
        batch.add_column(sa.Column("owner_user_id", id_type, nullable=True))
        batch.create_unique_constraint(
            op.f("uq_webhook_subscriptions_owner_user_id"), ["owner_user_id"]
        )
        batch.create_foreign_key(
            op.f("fk_webhook_subscriptions_owner_user_id_users"),
            "users",
            ["owner_user_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_constraint(
            op.f("fk_webhook_subscriptions_owner_user_id_users"), type_="foreignkey"
        )
        batch.drop_constraint(op.f("uq_webhook_subscriptions_owner_user_id"), type_="unique")
        batch.drop_column("owner_user_id")
