"""indexes for one instance's rows: found by bench/ (SQLite scanned every pending timer)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:50:00

Without statistics SQLite's planner chose the (status, due_at) indexes for "this instance's
pending deadlines/timers", so closing one step scanned every pending row in the database and
steps got slower as the population grew. Composite (instance_id, status) and
(deadline_id, status) indexes make the lookup follow the instance, as it must.
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_deadlines_instance", table_name="deadlines")
    op.create_index("ix_deadlines_instance_status", "deadlines", ["instance_id", "status"])
    op.drop_index("ix_timers_instance", table_name="timers")
    op.create_index("ix_timers_instance_status", "timers", ["instance_id", "status"])
    op.create_index("ix_timers_deadline_status", "timers", ["deadline_id", "status"])
    op.create_index("ix_outbox_instance", "outbox", ["instance_id"])
    op.create_index("ix_assignments_instance", "assignments", ["instance_id"])
    op.create_index("ix_consents_instance", "consents", ["instance_id"])


def downgrade() -> None:
    op.drop_index("ix_consents_instance", table_name="consents")
    op.drop_index("ix_assignments_instance", table_name="assignments")
    op.drop_index("ix_outbox_instance", table_name="outbox")
    op.drop_index("ix_timers_deadline_status", table_name="timers")
    op.drop_index("ix_timers_instance_status", table_name="timers")
    op.create_index("ix_timers_instance", "timers", ["instance_id"])
    op.drop_index("ix_deadlines_instance_status", table_name="deadlines")
    op.create_index("ix_deadlines_instance", "deadlines", ["instance_id"])
