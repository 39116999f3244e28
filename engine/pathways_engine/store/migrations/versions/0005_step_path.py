"""the step path: timers fold into their deadline; audit effects and keys; idempotency keys

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00

- A deadline keeps its wake-ups on its own row (`fires`, `fire_index`, `next_fire_at`) instead
  of one `timers` row each: a step closes a deadline and its wake-ups with one UPDATE, and the
  sweep reads one row per deadline. Every timer row is carried over (fired and cancelled ones
  as fires already passed), then `timers` is dropped.
- Audit entries record their `effects` on the state tables (replayed by `audit verify`) and an
  optional keyed `mac`; both are NULL on earlier entries, whose hashes stay valid.
- Subjects match by `ref_key` (NFC, case folded): a collision among existing references keeps
  both subjects apart with the later id appended, and is printed.
- Outbox rows get a delivery lease (`claimed_at`) and a `digest` of what was queued.
- `requests` holds idempotency keys for start and advance.

Tables that carry the audit triggers are never rebuilt (columns are added in place).
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CHUNK = 1000


def _iso(value: Any) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return str(value.replace(tzinfo=dt.UTC).isoformat())


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        # a rebuilt table is dropped and renamed; references to it are checked at commit
        op.execute("PRAGMA defer_foreign_keys = ON")

    with op.batch_alter_table("deadlines") as batch:
        batch.add_column(sa.Column("fires", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("fire_index", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_fire_at", sa.DateTime(), nullable=True))
    offline = op.get_context().as_sql  # `--sql`: a script has no rows to carry over
    if not offline:
        _carry_timers_over(bind)
    op.drop_table("timers")
    op.create_index("ix_deadlines_next_fire_at", "deadlines", ["next_fire_at"])

    op.add_column("audit", sa.Column("effects", sa.JSON(), nullable=True))
    op.add_column("audit", sa.Column("mac", sa.String(length=64), nullable=True))
    op.add_column("outbox", sa.Column("claimed_at", sa.DateTime(), nullable=True))
    op.add_column("outbox", sa.Column("digest", sa.String(length=64), nullable=True))

    op.add_column("subjects", sa.Column("ref_key", sa.String(length=64), nullable=True))
    if not offline:
        _fill_ref_keys(bind)
    with op.batch_alter_table("subjects") as batch:
        batch.alter_column("ref_key", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint("uq_subjects_ref_key", ["ref_key"])

    op.create_table(
        "requests",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_requests")),
    )


def _carry_timers_over(bind: sa.Connection) -> None:
    timers = sa.table("timers", sa.column("id"), sa.column("deadline_id"), sa.column("kind"),
                      sa.column("due_at"), sa.column("status"))
    deadlines = sa.table("deadlines", sa.column("id"), sa.column("status"), sa.column("fires"),
                         sa.column("fire_index"), sa.column("next_fire_at"))
    by_deadline: dict[int, list[tuple[str, Any, str]]] = defaultdict(list)
    for row in bind.execute(sa.select(timers.c.deadline_id, timers.c.kind, timers.c.due_at,
                                      timers.c.status).order_by(timers.c.deadline_id,
                                                                timers.c.due_at, timers.c.id)):
        by_deadline[row.deadline_id].append((row.kind, row.due_at, row.status))
    pending = {row.id for row in bind.execute(
        sa.select(deadlines.c.id).where(deadlines.c.status == "pending"))}
    updates = []
    for deadline_id, rows in by_deadline.items():
        index = next((i for i, (_, _, status) in enumerate(rows) if status != "fired"), len(rows))
        open_ = deadline_id in pending and index < len(rows)
        next_at = rows[index][1] if open_ else None
        if isinstance(next_at, str):
            next_at = dt.datetime.fromisoformat(next_at)
        updates.append({"b_id": deadline_id, "fires": json.dumps([[k, _iso(t)] for k, t, _ in rows]),
                        "fire_index": index, "next_fire_at": next_at})
    statement = (sa.update(deadlines).where(deadlines.c.id == sa.bindparam("b_id"))
                 .values(fires=sa.bindparam("fires"), fire_index=sa.bindparam("fire_index"),
                         next_fire_at=sa.bindparam("next_fire_at")))
    for start in range(0, len(updates), CHUNK):
        bind.execute(statement, updates[start:start + CHUNK])


def _fill_ref_keys(bind: sa.Connection) -> None:
    subjects = sa.table("subjects", sa.column("id"), sa.column("ref"), sa.column("ref_key"))
    seen: set[str] = set()
    updates = []
    for row in bind.execute(sa.select(subjects.c.id, subjects.c.ref).order_by(subjects.c.id)):
        key = unicodedata.normalize("NFC", row.ref).casefold()[:64]
        if key in seen:
            print(f"0005: subject {row.ref!r} (id {row.id}) matches an earlier reference when "
                  "case is ignored; kept apart as its own subject")
            key = f"{key[:50]}#{row.id}"
        seen.add(key)
        updates.append({"b_id": row.id, "ref_key": key})
    statement = (sa.update(subjects).where(subjects.c.id == sa.bindparam("b_id"))
                 .values(ref_key=sa.bindparam("ref_key")))
    for start in range(0, len(updates), CHUNK):
        bind.execute(statement, updates[start:start + CHUNK])


def downgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        op.execute("PRAGMA defer_foreign_keys = ON")
    op.drop_table("requests")
    with op.batch_alter_table("subjects") as batch:
        batch.drop_constraint("uq_subjects_ref_key", type_="unique")
        batch.drop_column("ref_key")
    for table, column in (("outbox", "digest"), ("outbox", "claimed_at"), ("audit", "mac"),
                          ("audit", "effects")):
        if sqlite:  # native DROP COLUMN: rebuilding `audit` would drop its triggers
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)

    op.create_table(
        "timers",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=32), nullable=False),
        sa.Column("deadline_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fired_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["deadline_id"], ["deadlines.id"],
                                name=op.f("fk_timers_deadline_id_deadlines")),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"],
                                name=op.f("fk_timers_instance_id_instances")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
    )
    op.create_index("ix_timers_status_due", "timers", ["status", "due_at"])
    op.create_index("ix_timers_instance_status", "timers", ["instance_id", "status"])
    op.create_index("ix_timers_deadline_status", "timers", ["deadline_id", "status"])
    deadlines = sa.table("deadlines", sa.column("id"), sa.column("instance_id"),
                         sa.column("status"), sa.column("fires"), sa.column("fire_index"))
    timers = sa.table("timers", sa.column("instance_id"), sa.column("deadline_id"),
                      sa.column("kind"), sa.column("due_at"), sa.column("status"),
                      sa.column("fired_at"))
    rows = []
    for row in bind.execute(sa.select(deadlines)):
        fires = row.fires if isinstance(row.fires, list) else json.loads(row.fires or "[]")
        for index, (kind, at) in enumerate(fires):
            when = dt.datetime.fromisoformat(at).replace(tzinfo=None)
            status = ("fired" if index < row.fire_index else
                      "pending" if row.status == "pending" else "cancelled")
            rows.append({"instance_id": row.instance_id, "deadline_id": row.id, "kind": kind,
                         "due_at": when, "status": status,
                         "fired_at": when if status == "fired" else None})
    for start in range(0, len(rows), CHUNK):
        bind.execute(sa.insert(timers), rows[start:start + CHUNK])
    op.drop_index("ix_deadlines_next_fire_at", table_name="deadlines")
    with op.batch_alter_table("deadlines") as batch:
        batch.drop_column("next_fire_at")
        batch.drop_column("fire_index")
        batch.drop_column("fires")
