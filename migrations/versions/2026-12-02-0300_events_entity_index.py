"""events: an index on (entity_type, entity_id), so one entity's history is a look-up

Why: ``GET /events?entity_type=…&entity_id=…`` (one request's or one assignment's history)
read the whole audit log, for its page and again for its total. The log only grows (a 10k
publish alone appends ~6,400 events); at 3 million events each of the two took ~0.24 s of
both cores in a parallel scan, against under a millisecond from this index. An index entry
more per audited write is the price (measured on publish in docs/benchmarks.md).

Revision ID: events_entity_index
Revises: requests_heap_only_updates
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "events_entity_index"
down_revision: str | None = "requests_heap_only_updates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_entity", "events", ["entity_type", "entity_id"])


def downgrade() -> None:
    op.drop_index("ix_events_entity", table_name="events")
