"""api tokens can expire

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 15:00:00

`api_tokens.expires_at`: a token given an expiry (`token create --expires-in`) or rotated
(`token rotate`, the old one keeping an overlap for the switch) stops working then without
anyone revoking it. Existing tokens keep NULL: they never expire, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as table:
        table.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as table:
        table.drop_column("expires_at")
