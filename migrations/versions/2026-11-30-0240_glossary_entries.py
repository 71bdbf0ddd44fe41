"""glossary entries admins add to the shipped bilingual glossary

Revision ID: text_glossary_entries
Revises: team_providers_wanted
Create Date: 2026-11-30 02:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "text_glossary_entries"
down_revision: str | None = "team_providers_wanted"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "glossary_entries",
        sa.Column("concept", sa.String(length=60), nullable=False),
        sa.Column("zh", sa.JSON(), nullable=False),
        sa.Column("en", sa.JSON(), nullable=False),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_glossary_entries")),
        sa.UniqueConstraint("concept", name=op.f("uq_glossary_entries_concept")),
    )


def downgrade() -> None:
    op.drop_table("glossary_entries")
