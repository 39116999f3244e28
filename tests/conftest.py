"""Fixtures: every database test runs on SQLite and, where reachable, on PostgreSQL.

PostgreSQL is at $PATHWAYS_TEST_POSTGRES (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Each test gets its own schema there, dropped afterwards. When it is unreachable the
PostgreSQL half of the suite skips with the reason, unless PATHWAYS_REQUIRE_POSTGRES=1
(as .ci/run sets), which turns the skip into a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pathways_engine import Database
from pathways_engine import FixedClock
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from sqlalchemy import create_engine
from sqlalchemy import text
from support import DEFINITIONS
from support import Cli

# Kept holiday dates go to a folder of this run's own, never the user's ~/.cache: every CLI
# subprocess inherits it, and the first test to need a year's dates fills it.
os.environ["PATHWAYS_CACHE_DIR"] = tempfile.mkdtemp(prefix="pathways-test-cache-")

PG_URL = os.environ.get("PATHWAYS_TEST_POSTGRES",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_reason() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"


_PG_REASON = _postgres_reason()


def pg_schema_url() -> Iterator[str]:
    if _PG_REASON:
        if os.environ.get("PATHWAYS_REQUIRE_POSTGRES") == "1":
            pytest.fail(_PG_REASON)
        pytest.skip(_PG_REASON)
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pathways.db'}"
    else:
        yield from pg_schema_url()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database URL (for what only PostgreSQL has)."""
    yield from pg_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pathways.db'}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC))


@pytest.fixture
def registry() -> Registry:
    return Registry.from_paths([DEFINITIONS])


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    yield db
    db.dispose()


@pytest.fixture
def engine(database: Database, registry: Registry, clock: FixedClock) -> PathwayEngine:
    return PathwayEngine(database, registry, clock=clock)


@pytest.fixture
def run(db_url: str) -> Cli:
    return Cli(db_url)


from web_support import server  # noqa: E402,F401 - the real-server fixture of the HTTP tests
