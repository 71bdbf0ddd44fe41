"""the audit log keeps its actor's id as recorded: no foreign key to users

Why: the audit log is append-only, and ``ON DELETE SET NULL`` was the one way a row of it
could change after the fact. Its ``actor_label`` always named the actor; the id now stays too.
The key also cost every audited write a check of the users row under a ``FOR KEY SHARE`` lock:
on PostgreSQL ~3.6 us and a row lock per event (a 10k publish writes 6,428 events: 23 ms of
trigger time, auto_explain), and concurrent writers by one user shared that lock through a
MultiXact. Users are deactivated, never deleted, so nothing the key guarded happens.

Revision ID: audit_actor_without_fk
Revises: request_facts
Create Date: 2026-12-01 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "audit_actor_without_fk"
down_revision: str | None = "request_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("fk_events_actor_id_users", type_="foreignkey")


def downgrade() -> None:
    # Ids of actors that no longer exist would fail the key: they go back to NULL first, as
    # the key's ON DELETE SET NULL would have made them.
    op.execute(
        "UPDATE events SET actor_id = NULL WHERE actor_id IS NOT NULL"
        " AND actor_id NOT IN (SELECT id FROM users)"
    )
    with op.batch_alter_table("events") as batch:
        batch.create_foreign_key(
            "fk_events_actor_id_users", "users", ["actor_id"], ["id"], ondelete="SET NULL"
        )
