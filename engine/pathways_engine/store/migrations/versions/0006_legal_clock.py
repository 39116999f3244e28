"""the legal clock: obligations met by events, windows, pauses, extensions, repeats

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:00:00

Columns on `deadlines` for what issue 16 lets a definition say. Every existing row keeps
its meaning: no markers (closed by leaving its state), no window, never paused or extended,
its first occurrence.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("met_by", "cancelled_by", "window_start", "paused_at", "paused_seconds",
           "extensions", "occurrence")


def upgrade() -> None:
    with op.batch_alter_table("deadlines") as batch:
        batch.add_column(sa.Column("met_by", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("cancelled_by", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("window_start", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("paused_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("paused_seconds", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("extensions", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("occurrence", sa.Integer(), nullable=False,
                                   server_default="1"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # batch mode rebuilds the table other tables point at: check their keys at commit
        op.execute("PRAGMA defer_foreign_keys = ON")
    with op.batch_alter_table("deadlines") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
