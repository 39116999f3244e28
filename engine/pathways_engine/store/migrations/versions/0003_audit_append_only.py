"""the audit table is append-only: the database refuses UPDATE and DELETE

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:30:00

The hash chain detects tampering after the fact; these triggers stop an accidental or
careless change (a stray UPDATE in a console) before it happens. A database owner can still
drop them - that is what `pathways audit verify` is for (RELIABILITY.md, trust model).
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MESSAGE = "audit entries are append-only"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION pathways_audit_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{MESSAGE}'; END;
            $$ LANGUAGE plpgsql""")
        op.execute("""
            CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit
            FOR EACH ROW EXECUTE FUNCTION pathways_audit_append_only()""")
        op.execute("""
            CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit
            FOR EACH STATEMENT EXECUTE FUNCTION pathways_audit_append_only()""")
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER audit_entries_no_{verb.lower()} BEFORE {verb} ON audit
                BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entries_no_truncate ON audit")
        op.execute("DROP TRIGGER audit_entries_append_only ON audit")
        op.execute("DROP FUNCTION pathways_audit_append_only()")
    else:
        op.execute("DROP TRIGGER audit_entries_no_update")
        op.execute("DROP TRIGGER audit_entries_no_delete")
