"""the sweep finds due wake-ups through (status, next_fire_at)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:10:00

Every query for due wake-ups (the sweep's, `count_due`, the timer-lag gauge) asks for
`status = 'pending' AND next_fire_at <= now`. With an index on `next_fire_at` alone, SQLite's
planner preferred `ix_deadlines_status_due` for the equality and then read and sorted every
pending deadline: each sweep batch cost a scan of all of them (96 ms at 100,000, measured by
bench/sweep.py). One index on both columns serves the equality, the range and the order
(`ORDER BY next_fire_at, id`: the rowid follows in the index), and replaces the old one.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deadlines_status_next_fire_at", "deadlines", ["status", "next_fire_at"])
    op.drop_index("ix_deadlines_next_fire_at", table_name="deadlines")


def downgrade() -> None:
    op.create_index("ix_deadlines_next_fire_at", "deadlines", ["next_fire_at"])
    op.drop_index("ix_deadlines_status_next_fire_at", table_name="deadlines")
