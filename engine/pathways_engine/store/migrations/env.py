"""Alembic environment: runs on the connection `Database.upgrade` hands over."""

from __future__ import annotations

from alembic import context
from pathways_engine.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - pathways always passes its connection
    raise RuntimeError("run migrations through `pathways db upgrade`")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
