"""Schema migrations: the Alembic history builds exactly the models, upgrades keep data, and
(issue 17) the whole chain goes down and up again on both databases, with `pathways db
current|history|downgrade`, offline `--sql` and the stock `alembic` command."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from pathways_engine.store.database import Database
from pathways_engine.store.database import alembic_config
from pathways_engine.store.database import create_db_engine
from pathways_engine.store.database import current_revision
from pathways_engine.store.database import head_revision
from pathways_engine.store.database import upgrade
from pathways_engine.store.tables import metadata
from sqlalchemy import text
from support import DEFINITIONS
from support import ROOT
from support import Cli


def _drift(database: Database) -> list[object]:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_the_whole_chain_goes_down_and_up_again_without_drift(db_url: str) -> None:
    database = Database(db_url)
    try:
        assert current_revision(database.engine) == head_revision()
        assert _drift(database) == []  # the migrations build exactly what tables.py declares
        engine = PathwayEngine(database, Registry.from_paths([DEFINITIONS]))
        engine.start("mistrivsel_referral", subject_ref="MIG-1", birth_date=dt.date(2014, 5, 2),
                     actor="gp1", role="gp",
                     values={"severity": "moderate", "consent_exchange": True})
        revisions = [s.revision for s in
                     ScriptDirectory.from_config(alembic_config()).walk_revisions()]
        for older in revisions[1:]:  # one step at a time, with the data in place
            upgrade(database.engine, older, down=True)
            assert current_revision(database.engine) == older
        upgrade(database.engine, "base", down=True)
        assert current_revision(database.engine) is None
        upgrade(database.engine, "head")
        assert current_revision(database.engine) == head_revision()
        assert _drift(database) == []
    finally:
        database.dispose()


def test_db_current_history_downgrade_and_offline_sql(db_url: str) -> None:
    run = Cli(db_url)
    run("db", "upgrade")
    head = head_revision()
    assert run("db", "current").output.strip().endswith(f"{head} (current)")
    history = run("db", "history").output.splitlines()
    assert history[0].startswith(f"{int(head) - 1:04d} -> {head}: ")
    assert history[-1].startswith("base -> 0001: ")
    back = run("db", "downgrade", "-1", "--as", "leader").output
    assert f"{head} -> {int(head) - 1:04d}" in back
    assert "behind" in run("db", "current").output
    refused = run("db", "downgrade", "0099", "--as", "leader", code=1)
    assert refused.stderr.startswith("error: revision '0099': ")
    run("db", "upgrade")
    if not db_url.startswith("postgresql"):
        refused = run("db", "upgrade", "--sql", code=1)
        assert "--sql writes a script for PostgreSQL" in refused.stderr
        return
    script = run("db", "upgrade", "--sql").output
    assert "CREATE TABLE instances" in script
    assert "CREATE TRIGGER audit_entries_append_only" in script
    assert f"UPDATE alembic_version SET version_num='{head}'" in script


def test_the_stock_alembic_command_runs_on_the_same_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stock.db'}"
    env = {**os.environ, "PATHWAYS_DATABASE_URL": url}
    alembic = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]

    def run(*args: str) -> str:
        done = subprocess.run([*alembic, *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    current = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "current"]
    missing = subprocess.run(current, capture_output=True, text=True, env=env, cwd=tmp_path,
                             timeout=120)
    assert missing.returncode != 0
    assert not (tmp_path / "stock.db").exists()  # `current` on a typo creates nothing
    run("upgrade", "head")
    assert f"{head_revision()} (head)" in run("current")
    run("downgrade", "-1")
    database = Database(url, auto_upgrade=False, access="write")
    try:
        assert current_revision(database.engine) == f"{int(head_revision()) - 1:04d}"
    finally:
        database.dispose()


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
