"""What every benchmark shares: results with their baseline, throwaway databases, seeding."""

from __future__ import annotations

import datetime as dt
import os
import platform
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pathways_engine import Database
from pathways_engine import FixedClock
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from sqlalchemy import create_engine
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = ROOT / "definitions"
PG_URL = os.environ.get("PATHWAYS_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


@dataclass
class Figure:
    """One measured figure beside the baseline measured in the same run."""

    bench: str
    name: str
    value: float
    unit: str
    baseline_name: str = ""
    baseline: float | None = None
    goal: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def python_loop_seconds() -> float:
    """Seconds for ten million additions in a Python loop: how fast this machine runs Python
    right now. Its speed changes by up to 2.5x between days and within an hour, and the
    goals with an absolute figure (timers/s, ms) move with it, so each run names it."""
    loop = compile("s = 0\nfor i in range(10_000_000):\n    s += i\n", "<loop>", "exec")
    began = time.perf_counter()
    exec(loop, {})  # noqa: S102 - at module level, as `python -c` runs it (globals, not locals)
    return time.perf_counter() - began


def best_of(repeats: int, action: Callable[[], float]) -> float:
    """The best of `repeats` runs of `action` (which returns seconds): the least disturbed."""
    return min(action() for _ in range(repeats))


def median_of(repeats: int, action: Callable[[], float]) -> float:
    """The median of `repeats` runs: steadier than the best on a shared, noisy machine."""
    values = sorted(action() for _ in range(repeats))
    return values[len(values) // 2]


@dataclass
class Counted:
    statements: int = 0
    rows: int = 0


# rows written by this connection's session and not yet flushed to the statistics, by the
# server's own count: a statement in a pipeline, as pathways sends a step's writes on
# PostgreSQL, has no row count at the driver. Read at a transaction's first statement and at
# its commit (nothing is flushed in between), past SQLAlchemy, so not counted as statements.
_WRITTEN = ("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) "
            "FROM pg_stat_xact_user_tables")


@contextmanager
def statements(engine: Any) -> Iterator[Counted]:
    """Count statements sent (BEGIN and COMMIT included) and rows written, while inside."""
    from sqlalchemy import event

    counted = Counted()
    sqlite = engine.dialect.name == "sqlite"
    began: dict[int, int | None] = {}  # connection -> written before its transaction's first

    def written(connection: Any) -> int:
        cursor = connection.connection.driver_connection.execute(_WRITTEN)
        return int(cursor.fetchone()[0])

    def before(connection: Any, *_: Any) -> None:
        counted.statements += 1
        if not sqlite and began.get(id(connection), 0) is None:
            began[id(connection)] = written(connection)

    def after(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip()[:6].upper() in {"INSERT", "UPDATE", "DELETE"} and cursor.rowcount > 0:
            counted.rows += cursor.rowcount

    def begin(connection: Any) -> None:
        counted.statements += 1
        began[id(connection)] = None

    def commit(connection: Any) -> None:
        counted.statements += 1
        if not sqlite and began.get(id(connection)) is not None:
            counted.rows += written(connection) - began.pop(id(connection))  # type: ignore[operator]

    if sqlite:
        event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", commit)
    if not sqlite:  # SQLite's BEGIN IMMEDIATE is a statement of our own, counted above
        event.listen(engine, "begin", begin)
    try:
        yield counted
    finally:
        if sqlite:
            event.remove(engine, "after_cursor_execute", after)
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", commit)
        if not sqlite:
            event.remove(engine, "begin", begin)


def seconds(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


@dataclass(frozen=True)
class Took:
    seconds: float
    per_item: float  # this process's CPU milliseconds per item


def cpu_ms(action: Callable[[], object], items: int) -> Took:
    """Wall seconds of `action`, and this process's CPU milliseconds per item over it: a
    figure against the database server tells the client's share from the server's wait."""
    began, cpu = time.perf_counter(), time.process_time()
    action()
    return Took(time.perf_counter() - began, (time.process_time() - cpu) * 1000 / items)


@contextmanager
def sqlite_url() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="pathways-bench-"))
    try:
        yield f"sqlite:///{folder / 'bench.db'}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def postgres_reachable() -> bool:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "skip the PostgreSQL figures"
        return False


@contextmanager
def postgres_url() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL, dropped afterwards."""
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Placement:
    """Where `database_on_another_core` put the client and the server: said beside a figure."""

    text: str = "client and PostgreSQL where the scheduler put them"
    refused: str | None = None  # why a backend could not be placed (then the figure says so)

    def said(self) -> str:
        return self.text if self.refused is None else \
            f"{self.text}, except where refused ({self.refused})"


@contextmanager
def database_on_another_core() -> Iterator[Placement]:
    """This process on one CPU and every PostgreSQL backend it connects to on another, as
    when the database runs on a machine of its own.

    Left to the scheduler, a round trip over loopback cost 40 us when client and backend
    shared a CPU and 250 us when they did not (2026-12-08, empty transactions on one DB-API
    connection), and which one a contender got was luck: the PostgreSQL ratio against the
    floor moved by about 0.1 with it. Placed, both sides of every comparison pay the same.
    Only the backends this process opens are placed, never the server's other processes; on
    a machine that refuses (no permission, one CPU) the figure says where things ran."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        yield Placement()
        return
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    before = os.sched_getaffinity(0)
    client, server = sorted(before)[:2]
    placement = Placement(f"client on CPU {client}, its PostgreSQL backends on CPU {server}")

    def place(dbapi_connection: Any, _record: Any) -> None:
        pid = getattr(getattr(dbapi_connection, "info", None), "backend_pid", None)
        if pid is None:  # not PostgreSQL
            return
        try:
            os.sched_setaffinity(pid, {server})
        except OSError as exc:
            placement.refused = f"{type(exc).__name__}: {exc.strerror}"

    event.listen(Pool, "connect", place)
    os.sched_setaffinity(0, {client})
    try:
        yield placement
    finally:
        event.remove(Pool, "connect", place)
        os.sched_setaffinity(0, before)


def make_engine(url: str, clock: FixedClock | None = None) -> PathwayEngine:
    from pathways_notifications import Composer
    from pathways_notifications import load_parties

    return PathwayEngine(Database(url), Registry.from_paths([DEFINITIONS]),
                         clock=clock or FixedClock(START + dt.timedelta(days=1)),
                         composer=Composer(load_parties(DEFINITIONS / "parties.yaml")))


def start_children(engine: PathwayEngine, count: int, tag: str = "B") -> list[str]:
    return [engine.start("mistrivsel_referral", subject_ref=f"{tag}-{i}",
                         birth_date=dt.date(2014, 1, 1), actor="dr.jensen", role="gp",
                         values={"severity": "moderate", "consent_exchange": True}, at=START)
            for i in range(count)]
