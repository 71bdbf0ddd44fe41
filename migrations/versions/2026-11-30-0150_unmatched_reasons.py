"""unmatched reasons per request: latest run and latest re-match

Revision ID: text_unmatched_reasons
Revises: plan_milestone_templates
Create Date: 2026-11-30 01:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "text_unmatched_reasons"
down_revision: str | None = "plan_milestone_templates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unmatched_reasons",
        sa.Column("request_id", _ID, nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("match_run_id", _ID, nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=False),
        sa.Column("taken_by", sa.JSON(), nullable=False),
        sa.Column("message_zh", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["help_requests.id"],
            name=op.f("fk_unmatched_reasons_request_id_help_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["match_run_id"],
            ["match_runs.id"],
            name=op.f("fk_unmatched_reasons_match_run_id_match_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("request_id", "source", name=op.f("pk_unmatched_reasons")),
    )
    with op.batch_alter_table("unmatched_reasons") as batch:
        batch.create_index(
            batch.f("ix_unmatched_reasons_match_run_id"), ["match_run_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("unmatched_reasons") as batch:
        batch.drop_index(batch.f("ix_unmatched_reasons_match_run_id"))
    op.drop_table("unmatched_reasons")
