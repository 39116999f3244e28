"""instances.area: the municipality or region that routes an instance's messages

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("area", sa.String(length=64), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # batch mode rebuilds the table other tables point at: check their keys at commit
        op.execute("PRAGMA defer_foreign_keys = ON")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("area")
