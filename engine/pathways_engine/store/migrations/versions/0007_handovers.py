"""handovers between pathways, signals between them, one contact person per child

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:00:00

- `instances.parent_id` / `handover`: the pathway whose handover started this one (NULL for
  every existing instance: none was handed over).
- `signals`: what one pathway owes another across a handover, applied under the receiver's lock.
- `subject_assignments`: a party named for a role across all of one child's pathways.

`instances` carries no audit trigger, so adding columns in place is safe on both databases.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("handover", sa.String(length=64), nullable=True))
        batch.create_foreign_key("fk_instances_parent_id_instances", "instances",
                                 ["parent_id"], ["id"])
        batch.create_index("ix_instances_parent", ["parent_id"])
    op.create_table(
        "subject_assignments",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("subject_id", ID, sa.ForeignKey("subjects.id",
                  name="fk_subject_assignments_subject_id_subjects"), nullable=False),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("party", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subject_assignments"),
    )
    op.create_index("ix_subject_assignments_subject", "subject_assignments", ["subject_id"])
    op.create_table(
        "signals",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("instance_id", sa.String(length=32), sa.ForeignKey(
            "instances.id", name="fk_signals_instance_id_instances"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("source_id", sa.String(length=32), sa.ForeignKey(
            "instances.id", name="fk_signals_source_id_instances"), nullable=False),
        sa.Column("handover", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_signals"),
    )
    op.create_index("ix_signals_pending", "signals", ["delivered_at", "instance_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # batch mode rebuilds the table other tables point at: check their keys at commit
        op.execute("PRAGMA defer_foreign_keys = ON")
    op.drop_index("ix_signals_pending", table_name="signals")
    op.drop_table("signals")
    op.drop_index("ix_subject_assignments_subject", table_name="subject_assignments")
    op.drop_table("subject_assignments")
    with op.batch_alter_table("instances") as batch:
        batch.drop_index("ix_instances_parent")
        batch.drop_constraint("fk_instances_parent_id_instances", type_="foreignkey")
        batch.drop_column("handover")
        batch.drop_column("parent_id")
