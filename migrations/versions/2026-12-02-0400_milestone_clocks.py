"""milestones keep the working-day clock they were dated by, so an undated one is dated later

Why: a generated step falls due a number of working days after the day its plan got the
offer. When that reaches a year the holiday calendar does not know yet (in December, next
year, until the State Council's schedule is packaged or typed into ``ZHUQI_HOLIDAY_FILE``),
the step was stored with no date ("to be scheduled") and kept none for good: nothing said
from which day, or how many working days, to count once the year became known. Each
generated step now records both (``due_from``, ``due_workdays``); the deadline sweep dates
the undated ones as soon as the calendar can (``app.bundling.milestones.date_waiting``),
found through a partial index of exactly those rows. Steps generated before this migration
have no clock and stay as they are; a coordinator who sets a step's date takes its clock away.

Revision ID: milestone_clocks
Revises: events_entity_index
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "milestone_clocks"
down_revision: str | None = "events_entity_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNDATED = "due_date IS NULL AND due_workdays IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("milestones") as batch:
        batch.add_column(sa.Column("due_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("due_workdays", sa.Integer(), nullable=True))
    op.create_index(
        "ix_milestones_undated",
        "milestones",
        ["due_from", "due_workdays"],
        postgresql_where=sa.text(UNDATED),
        sqlite_where=sa.text(UNDATED),
    )


def downgrade() -> None:
    op.drop_index("ix_milestones_undated", table_name="milestones")
    with op.batch_alter_table("milestones") as batch:
        batch.drop_column("due_workdays")
        batch.drop_column("due_from")
