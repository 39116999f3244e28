"""Alembic environment for `pathways db ...` and for the stock `alembic` command.

`pathways db` hands over its own connection (with PostgreSQL's advisory lock held). The stock
command (`alembic -c alembic.ini current|history|upgrade|downgrade`, `--sql` for offline
scripts) connects to `sqlalchemy.url` from alembic.ini, or else `$PATHWAYS_DATABASE_URL`, so a
DBA can use the tool they know on the same chain.
"""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from pathways_engine.store.tables import metadata

config = context.config


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("PATHWAYS_DATABASE_URL")
    if not url:
        raise SystemExit("alembic: set sqlalchemy.url in alembic.ini or PATHWAYS_DATABASE_URL")
    return url


def _options(dialect: str) -> dict[str, Any]:
    return {"target_metadata": metadata, "render_as_batch": dialect == "sqlite",
            "compare_type": True}


if context.is_offline_mode():  # `--sql`: write the script a DBA reviews and runs
    url = _url()
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"},
                      **_options(url.split(":", 1)[0].split("+", 1)[0]))
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **_options(connection.dialect.name))
        with context.begin_transaction():
            context.run_migrations()
    else:
        from pathways_engine.store.database import create_db_engine

        # only `alembic upgrade` may create a missing SQLite file (a typo elsewhere must not)
        command: Any = getattr(getattr(config, "cmd_opts", None), "cmd", None)
        creating = bool(command) and getattr(command[0], "__name__", "") == "upgrade"
        engine = create_db_engine(_url(), create=creating)
        try:
            with engine.connect() as own:
                context.configure(connection=own, **_options(own.dialect.name))
                with context.begin_transaction():
                    context.run_migrations()
                own.commit()
        finally:
            engine.dispose()
