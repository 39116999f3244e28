"""The step path's shape: statements per step and per batch (counted, not timed)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from pathways_engine import FixedClock
from pathways_engine import PathwayEngine
from pathways_engine import Registry
from pathways_engine import StepRequest
from pathways_engine.store.database import Database
from pathways_notifications import Composer
from pathways_notifications import load_parties
from support import DEFINITIONS
from support import ROOT

sys.path.insert(0, str(ROOT))
from bench.common import statements  # noqa: E402 - the benchmarks' own counter

START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
REFER = {"referral_received": "2026-11-03"}


def notifying(database: Database) -> PathwayEngine:
    return PathwayEngine(database, Registry.from_paths([DEFINITIONS]),
                         clock=FixedClock(START + dt.timedelta(days=1)),
                         composer=Composer(load_parties(DEFINITIONS / "parties.yaml")))


def children(engine: PathwayEngine, count: int) -> list[str]:
    return [engine.start("mistrivsel_referral", subject_ref=f"N-{n}", birth_date=dt.date(2014, 1, 1),
                         actor="gp1", role="gp", at=START,
                         values={"severity": "moderate", "consent_exchange": True})
            for n in range(count)]


def test_a_step_sends_at_most_eight_statements(database: Database) -> None:
    """refer_bup closes one deadline, opens two, writes two audit entries, queues two messages."""
    engine = notifying(database)
    first, second = children(engine, 2)
    engine.advance(first, "refer_bup", actor="p", role="ppr", values=REFER)  # warm the caches
    with statements(database.engine) as counted:
        engine.advance(second, "refer_bup", actor="p", role="ppr", values=REFER)
    assert counted.statements <= 8, counted  # BEGIN and COMMIT included
    # 1 deadline closed, 2 opened, 2 audit entries, 2 messages, the instance itself
    assert counted.rows == 8


def test_a_steps_rows_of_one_table_go_to_the_driver_as_one_insert(database: Database) -> None:
    """One INSERT per table, whatever its number of rows (one executemany, not one a row; on
    PostgreSQL one CTE of the step's single writing statement, the table's rows one JSON
    parameter)."""
    from sqlalchemy import event

    engine = notifying(database)
    first, second = children(engine, 2)
    engine.advance(first, "refer_bup", actor="p", role="ppr", values=REFER)
    inserts: list[str] = []  # the tables inserted into, by any statement
    writing: list[str] = []  # the statements that write

    def listener(_cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "WITH")):
            writing.append(statement.lstrip())
        inserts.extend(re.findall(r"\bINSERT INTO (\w+)", statement))

    for name in ("do_execute", "do_executemany"):
        event.listen(database.engine, name, listener)
    try:
        engine.advance(second, "refer_bup", actor="p", role="ppr", values=REFER)
    finally:
        for name in ("do_execute", "do_executemany"):
            event.remove(database.engine, name, listener)
    # two deadlines, two audit entries, two messages
    assert sorted(inserts) == ["audit", "deadlines", "outbox"]
    if database.dialect == "postgresql":  # ... and all in the one statement that writes
        assert len(writing) == 1, writing
        assert writing[0].startswith("WITH"), writing
        assert "UPDATE instances" in writing[0], writing


def test_on_postgresql_a_step_waits_on_the_server_four_times(pg_url: str, tmp_path: Path) -> None:
    """BEGIN, the locked read, the writes and the version-checked update as one statement,
    COMMIT: counted in libpq's own trace of what the client sent, where each Sync or simple
    Query is one wait for the server (psycopg would otherwise wait once a statement, and once
    a row of an executemany)."""
    from sqlalchemy import event

    database = Database(pg_url)
    try:
        engine = notifying(database)
        first, second = children(engine, 2)
        engine.advance(first, "refer_bup", actor="p", role="ppr", values=REFER)
        trace = (tmp_path / "libpq.trace").open("w")

        def traced(dbapi_connection: Any, *_: object) -> None:
            dbapi_connection.pgconn.trace(trace.fileno())

        event.listen(database.engine, "checkout", traced)
        try:
            engine.advance(second, "refer_bup", actor="p", role="ppr", values=REFER)
        finally:
            event.remove(database.engine, "checkout", traced)
            database.engine.dispose()  # the traced connection goes, not back into the pool
            trace.close()
        # each message the client sent ("F") is a line: time, F, length, type, arguments
        sent = re.findall(r"^[^\t\n]*\tF\t\d+\t(\w+)", (tmp_path / "libpq.trace").read_text(),
                          re.MULTILINE)
        waits = [kind for kind in sent if kind in ("Sync", "Query")]
        assert len(waits) == 4, sent
        # the close, the six new rows and the instance's update are one statement, after the
        # read's answer
        syncs = [i for i, kind in enumerate(sent) if kind in ("Sync", "Query")]
        assert sent[syncs[1] + 1:syncs[2]].count("Execute") == 1, sent
    finally:
        database.dispose()


def test_a_batch_costs_the_statements_of_one_step(database: Database) -> None:
    """A batch's statements do not grow with its steps. (On PostgreSQL a batch of one step
    is one writing statement, which a batch of many cannot be: it is compared as well.)"""
    engine = notifying(database)
    one, *many = children(engine, 51)
    engine.advance_many([StepRequest(one, "refer_bup", "p", "ppr", REFER)])
    with statements(database.engine) as single:
        engine.advance_many([StepRequest(many[0], "refer_bup", "p", "ppr", REFER)])
    with statements(database.engine) as two:
        engine.advance_many([StepRequest(i, "refer_bup", "p", "ppr", REFER) for i in many[1:3]])
    with statements(database.engine) as batch:
        engine.advance_many([StepRequest(i, "refer_bup", "p", "ppr", REFER) for i in many[3:]])
    assert batch.statements == two.statements >= single.statements
    assert batch.rows == 47 * single.rows
    assert two.rows == 2 * single.rows


def test_on_postgresql_one_statement_stores_what_the_pipeline_stores(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step written as one statement (each table's rows one JSON parameter) and the same
    step written through the pipeline leave the same rows: times to the microsecond and in
    UTC, text with quotes, backslashes, line breaks and non-Latin letters, JSON as given."""
    from pathways_engine.store import writes
    from pathways_engine.store.tables import audit
    from pathways_engine.store.tables import deadlines
    from pathways_engine.store.tables import outbox
    from sqlalchemy import select

    database = Database(pg_url)
    try:
        engine = notifying(database)
        ids = children(engine, 3)
        engine.advance(ids[0], "refer_bup", actor="p", role="ppr", values=REFER)  # warm
        at = dt.datetime(2026, 11, 3, 8, 7, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))
        note = 'Mor ringede: "ønsker møde"\n\tC:\\\\sti — Åse, ÆØÅ æøå, Ĳ, 子供'
        for instance, one in ((ids[1], True), (ids[2], False)):
            with monkeypatch.context() as patched:
                if not one:
                    patched.setattr(writes, "_as_one_statement", lambda _writes, _updates: None)
                engine.advance(instance, "refer_bup", actor="p", role="ppr", values=REFER,
                               note=note, at=at)

        def rows(instance: str) -> list[list[dict[str, Any]]]:
            with database.reading() as connection:
                found = [[dict(row._mapping) for row in connection.execute(
                    select(table).where(table.c.instance_id == instance).order_by(table.c.id))]
                    for table in (deadlines, audit, outbox)]
            ref = {ids[1]: "N-1", ids[2]: "N-2"}[instance]
            for row in (row for table in found for row in table):
                for name in ("id", "instance_id", "hash", "prev_hash", "mac", "idempotency_key",
                             "message_id", "digest"):  # the instance's own, or hashes of it
                    row.pop(name, None)
                for name, value in row.items():  # ids and digests within values, too
                    if isinstance(value, (str, dict)):
                        text = json.dumps(value, ensure_ascii=False).replace(ref, "R")
                        row[name] = json.loads(re.sub(r"\b[0-9a-f]{16,64}\b", "H", text))
            return found

        one_statement, pipelined = rows(ids[1]), rows(ids[2])
        for a, b in zip(one_statement, pipelined, strict=True):
            for x, y in zip(a, b, strict=True):
                assert x == y, {k: (x[k], y.get(k)) for k in x if x[k] != y.get(k)}
        entry, = (entry for entry in one_statement[1] if entry["note"] is not None)
        assert entry["note"] == note
        assert entry["at"] == at.astimezone(dt.UTC)
        assert len(one_statement[0]) == 3
        assert len(one_statement[2]) == 3
    finally:
        database.dispose()


def test_a_sweep_writes_a_wake_up_that_only_fired_as_two_columns(
        database: Database, tmp_path: Path, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A deadline whose only change is that a wake-up fired (each row of a sweep: reminders,
    due times, escalations) is written with fire_index and next_fire_at alone. Its rows end
    as they do when every column is written: the same days of sweeps on a second database
    with the narrow write turned off leave the same deadlines."""
    from pathways_engine.runtime.sweep import tick
    from pathways_engine.store.rows import DeadlineRow
    from pathways_engine.store.tables import deadlines
    from sqlalchemy import event
    from sqlalchemy import select

    wide_url = f"sqlite:///{tmp_path / 'wide.db'}" if database.dialect == "sqlite" \
        else request.getfixturevalue("pg_url")
    wide = Database(wide_url)

    def swept(db: Database) -> tuple[list[dict[str, Any]], list[str]]:
        engine = notifying(db)
        for instance in children(engine, 3):
            engine.advance(instance, "refer_bup", actor="p", role="ppr", values=REFER)
        sent: list[str] = []

        def listener(_cursor: object, statement: str, *_: object) -> None:
            if statement.lstrip().startswith("UPDATE deadlines"):
                sent.append(" ".join(statement.split()))

        for name in ("do_execute", "do_executemany"):
            event.listen(db.engine, name, listener)
        try:
            for day in range(1, 60):
                tick(engine, START + dt.timedelta(days=day))
        finally:
            for name in ("do_execute", "do_executemany"):
                event.remove(db.engine, name, listener)
        with db.reading() as connection:
            rows = [dict(row._mapping) for row in connection.execute(
                select(deadlines).order_by(deadlines.c.id))]
        for row in rows:
            row.pop("instance_id")  # each database's own random ids
        return rows, sent

    try:
        narrow_rows, narrow_sent = swept(database)
        with monkeypatch.context() as patched:
            patched.setattr(DeadlineRow, "only_fired", property(lambda _row: False))
            wide_rows, wide_sent = swept(wide)
    finally:
        wide.dispose()
    assert sum(row["fire_index"] for row in narrow_rows) >= 9  # wake-ups fired
    assert narrow_rows == wide_rows
    assert narrow_sent
    assert all("fires" not in s and "SET fire_index" in s for s in narrow_sent), narrow_sent
    assert wide_sent
    assert all("fires" in s for s in wide_sent), wide_sent


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="placing a process on a CPU needs Linux and two CPUs")
def test_the_benchmarks_put_the_database_on_another_core_and_give_the_cpus_back(
        pg_url: str) -> None:
    """bench/transitions.py compares pathways with the DB-API floor on PostgreSQL; whether a
    backend happened to share the client's CPU moved that ratio by about 0.1. Placed, every
    backend either side opens runs on the other CPU, and the process gets its CPUs back."""
    from sqlalchemy import create_engine
    from sqlalchemy import text

    from bench.common import database_on_another_core

    before = os.sched_getaffinity(0)
    with database_on_another_core() as placement:
        client, server = sorted(before)[:2]
        assert os.sched_getaffinity(0) == {client}
        engine = create_engine(pg_url)
        with engine.connect() as connection:
            backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            placed = os.sched_getaffinity(backend)
        engine.dispose()
        said = placement.said()
        refused = placement.refused
    assert os.sched_getaffinity(0) == before
    if refused is not None:  # e.g. not root: the server's backends are not ours to place
        assert said.endswith(f"except where refused ({refused})")
        pytest.skip(f"this machine refused to place a PostgreSQL backend: {refused}")
    assert placed == {server}
    assert said == f"client on CPU {client}, its PostgreSQL backends on CPU {server}"
    later = create_engine(pg_url)  # outside it, nothing is placed
    with later.connect() as connection:
        backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert os.sched_getaffinity(backend) != {server}
    later.dispose()
