"""Schema migrations: the Alembic history builds exactly the models, and upgrades keep data."""

from __future__ import annotations

import datetime as dt

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pathways_engine import Database
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from pathways_engine.store.database import create_db_engine
from pathways_engine.store.database import current_revision
from pathways_engine.store.database import head_revision
from pathways_engine.store.database import upgrade
from pathways_engine.store.tables import metadata
from sqlalchemy import text


def test_schema_head_constant_is_alembics_head() -> None:
    from pathways_engine.store.database import SCHEMA_HEAD

    assert head_revision() == SCHEMA_HEAD


def test_migrations_produce_the_models(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_upgrade_from_the_first_revision_keeps_rows_and_adds_area(db_url: str,
                                                                   registry: Registry) -> None:
    engine = create_db_engine(db_url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as connection:
        columns = [c for c in connection.execute(text("select * from instances")).keys()]
    assert "area" not in columns
    engine.dispose()
    old = Database(db_url, auto_upgrade=False)
    # a row written by the 0001 schema, through raw SQL as the old release would have
    with old.engine.begin() as connection:
        connection.execute(text(
            "insert into definition_snapshots values ('h', 'p', 1, 'x', :t)"),
            {"t": dt.datetime(2026, 1, 1)})
    old.dispose()
    database = Database(db_url)  # upgrades on first use
    with database.engine.connect() as connection:
        assert connection.execute(text("select count(*) from definition_snapshots")).scalar() == 1
    assert current_revision(database.engine) == head_revision()
    started = PathwayEngine(database, registry).start(
        "mistrivsel_referral", subject_ref="C-1", birth_date=dt.date(2014, 1, 1), actor="gp1",
        role="gp", values={"severity": "moderate", "consent_exchange": True}, area="norddjurs")
    with database.engine.connect() as connection:
        assert connection.execute(text("select area from instances where id = :i"),
                                  {"i": started}).scalar() == "norddjurs"
    database.dispose()
