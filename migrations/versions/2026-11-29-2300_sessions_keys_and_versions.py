"""sessions, keys and versions: token versions, API-key digests, versions on users and categories

API keys were argon2 hashes, which cannot be turned into the new keyed SHA-256 digests: keys
issued before this revision are revoked here and must be re-issued (README, "API keys").

Revision ID: 0003_contract
Revises: webhooks
Create Date: 2026-11-29 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003_contract"
down_revision: str | None = "webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(
            sa.Column("token_version", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("categories") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    api_keys = sa.table("api_keys", sa.column("revoked_at", sa.DateTime(timezone=True)))
    op.execute(
        api_keys.update()
        .where(api_keys.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("key_digest", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(batch.f("uq_api_keys_key_digest"), ["key_digest"])
        batch.drop_column("key_hash")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.create_index(batch.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_index(batch.f("ix_idempotency_keys_created_at"))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("key_hash", sa.String(length=255), nullable=False, server_default="!")
        )
        batch.drop_constraint(batch.f("uq_api_keys_key_digest"), type_="unique")
        batch.drop_column("key_digest")
    with op.batch_alter_table("categories") as batch:
        batch.drop_column("version")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_version")
        batch.drop_column("version")
