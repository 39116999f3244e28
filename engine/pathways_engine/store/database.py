"""Opening a database: SQLite (the embedded default) or PostgreSQL, migrated by Alembic.

SQLite is opened in WAL mode, and a write transaction begins with `BEGIN IMMEDIATE` and a
busy timeout, because its default transaction handling silently loses read-modify-write
updates and fails at once on a deferred read-to-write upgrade (libraries.md C1). A read
transaction begins deferred, so readers never queue for the writer. On PostgreSQL a read
is REPEATABLE READ, READ ONLY: every statement of it sees one snapshot (`audit verify` reads
heads and entries that belong together). A new database file is created readable and
writable by its owner only: it holds health and social data about children.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from typing import Literal

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import OperationalError

from pathways_engine.errors import ConfigError
from pathways_engine.errors import DatabaseError
from pathways_engine.errors import MissingExtra

DEFAULT_URL = "sqlite:///pathways.db"
# The newest migration. Opening a database compares it with `alembic_version` in plain SQL and
# imports Alembic only to upgrade; tests check it equals Alembic's head (test_migrations.py).
SCHEMA_HEAD = "0010"
SQLITE_BUSY_TIMEOUT_S = 30
# A pooled PostgreSQL connection idle at least this long is pinged before use, since a server
# restart or an idle timeout may have closed it; one in steady use is not (HikariCP's "alive
# bypass window"): a ping on every checkout cost each step three of its eleven waits on the
# server and about 0.1 ms of CPU (bench/transitions.py, empty write transactions).
IDLE_PING_AFTER_S = 1.0
_IDLE_SINCE = "pathways_idle_since"
URL_ENV = "PATHWAYS_DATABASE_URL"
# Serialises first use of an empty PostgreSQL database by several processes (upgrade below).
_PG_SCHEMA_LOCK = 7_474_658_411_020_535
Access = Literal["read", "write", "create"]
MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _prepare_sqlite_file(path: Path, url: str, create: bool) -> None:
    if path.parent and not path.parent.exists():
        raise ConfigError(f"database folder {str(path.parent)!r} does not exist")
    if path.exists() and not path.is_file():
        raise ConfigError(f"database path {str(path)!r} is not a file")
    if path.exists():
        return
    if not create:
        raise DatabaseError(f"there is no database at {url} (check --db or ${URL_ENV}); "
                            "create one with `pathways db upgrade`")
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot create database file {str(path)!r}: {exc.strerror}") from None
    os.close(fd)


def create_db_engine(url: str, *, create: bool = True) -> Engine:
    """An Engine for `url` with the transaction settings pathways relies on."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"cannot read database URL {url!r}; use e.g. sqlite:///pathways.db or "
            "postgresql+psycopg://user@host/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        file = _sqlite_file(url)
        if file is not None:
            _prepare_sqlite_file(file, url, create)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.drivername == "postgresql+psycopg" and find_spec("psycopg") is None:
            raise MissingExtra("a PostgreSQL database", "postgresql")
        engine = create_engine(parsed)
        _ping_when_idle(engine)
        return engine
    raise ConfigError(f"unsupported database {backend!r}; pathways runs on SQLite and PostgreSQL")


def _ping_when_idle(engine: Engine) -> None:
    """Ping a connection taken from the pool after `IDLE_PING_AFTER_S`; a dead one is replaced.

    A connection the server dropped within that window fails its transaction with a
    DatabaseError (nothing written), and SQLAlchemy then discards the whole pool, so the next
    transaction reconnects.
    """
    dialect = engine.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)  # absent on a connection made just now
        if since is None or time.monotonic() - since < IDLE_PING_AFTER_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()
        except dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"connection closed while idle: {exc}") from exc

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    reading = connection.get_execution_options().get("pathways_read", False)
    connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


def alembic_config(url: str | None = None) -> Any:
    """Alembic's configuration for pathways' migrations (the folder inside the package)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head", *, down: bool = False) -> None:
    """Bring the schema to `revision` with Alembic (an empty database gets every table);
    `down`: back to it instead."""
    from alembic import command

    config = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # batch mode rebuilds tables others point at; SQLite's own recipe for that is
            # foreign keys off - only possible outside a transaction - and a check at the end
            _sqlite_pragma(connection, "PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    # several processes opening an empty database at once: one migrates, the
                    # others wait here and then find the schema current (SQLite's BEGIN
                    # IMMEDIATE does this)
                    connection.exec_driver_sql(
                        f"SELECT pg_advisory_xact_lock({_PG_SCHEMA_LOCK})")
                config.attributes["connection"] = connection
                if down:
                    command.downgrade(config, revision)
                else:
                    command.upgrade(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise DatabaseError(f"migrating to {revision} would break "
                                            f"{len(broken)} references (first: {broken[0]}); "
                                            "nothing was changed")
        finally:
            if sqlite:
                _sqlite_pragma(connection, "PRAGMA foreign_keys=ON")


def _sqlite_pragma(connection: Any, pragma: str) -> None:
    """A PRAGMA outside any transaction, on the DB-API connection itself."""
    connection.connection.driver_connection.execute(pragma)


def stored_revision(engine: Engine) -> str | None:
    """The revision in `alembic_version`, read without importing Alembic (None if absent)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as connection:
            return connection.execute(text("select version_num from alembic_version")).scalar()
    except DBAPIError:
        return None


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__


def _is_empty(engine: Engine) -> bool:
    return not inspect(engine).get_table_names()


def _known_revision(revision: str) -> bool:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        return ScriptDirectory.from_config(config).get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


class Database:
    """An engine plus a session factory.

    `access` says what opening may do: "create" makes a missing database and upgrades its
    schema (the library default, `start`, `db upgrade`); "write" needs an existing database and
    upgrades an older schema; "read" needs an existing database with the current schema and
    writes nothing, so a mistyped `--db` never leaves an empty database behind.
    """

    def __init__(self, url: str, *, auto_upgrade: bool = True, access: Access = "create",
                 audit_key: bytes | None = None) -> None:
        self.url = url
        self.access = access
        self.engine = create_db_engine(url, create=access == "create")
        self.dialect = self.engine.dialect.name
        # the deployment's secret for keyed audit entries and checkpoints (audit/chain.py)
        self.audit_key = audit_key
        if auto_upgrade:
            self.ensure_schema()

    def ensure_schema(self) -> None:
        try:
            stored = stored_revision(self.engine)
            if stored == SCHEMA_HEAD:
                return
            self._refuse_unless_allowed(stored)
            current = current_revision(self.engine)
            if current != head_revision():
                if current is None and inspect(self.engine).get_table_names() and not \
                        inspect(self.engine).has_table("instances"):
                    raise DatabaseError(f"{self.display_url()} is not a pathways database")
                upgrade(self.engine)
        except DBAPIError as exc:
            self.engine.dispose()
            raise DatabaseError(
                f"cannot open database {self.display_url()}: {_first_line(exc)}") from None

    def _refuse_unless_allowed(self, stored: str | None) -> None:
        if stored is not None and not _known_revision(stored):
            raise DatabaseError(f"{self.display_url()} has schema revision {stored}, newer than "
                                f"this release of pathways knows ({SCHEMA_HEAD}): upgrade pathways")
        if self.access == "create":
            return
        if stored is None:
            if _is_empty(self.engine):
                raise DatabaseError(f"{self.display_url()} has no pathways schema yet; create it "
                                    "with `pathways db upgrade` (or check --db)")
            return  # not ours, or pre-Alembic: ensure_schema says which
        if self.access == "read":
            raise DatabaseError(f"{self.display_url()} has schema revision {stored}; this release "
                                f"needs {SCHEMA_HEAD}: run `pathways db upgrade`")

    def display_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on any exception.

        Lock waits that outlast the busy timeout and a lost connection become DatabaseError.
        """
        try:
            with self.engine.begin() as connection:
                yield connection
        except OperationalError as exc:
            raise DatabaseError(f"database is busy or unavailable: {_first_line(exc)}") from None

    @contextmanager
    def reading(self, *, read_only: bool = True) -> Iterator[Connection]:
        """One read transaction that sees one consistent snapshot.

        `read_only=False` lets it write temporary tables (a report's working table); it still
        never takes SQLite's write lock.
        """
        options: dict[str, Any] = {"pathways_read": True}
        if self.dialect == "postgresql":
            options.update(isolation_level="REPEATABLE READ", postgresql_readonly=read_only)
        try:
            with self.engine.connect().execution_options(**options) as connection, \
                    connection.begin():
                yield connection
        except OperationalError as exc:
            raise DatabaseError(f"database is busy or unavailable: {_first_line(exc)}") from None

    def dispose(self) -> None:
        self.engine.dispose()
