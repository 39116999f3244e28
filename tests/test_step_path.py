"""The step path's shape: statements per step and per batch (counted, not timed)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

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
    """Not as the driver's executemany, which psycopg 3 pipelines row by row (waiting on the
    server once more a row)."""
    from sqlalchemy import event

    engine = notifying(database)
    first, second = children(engine, 2)
    engine.advance(first, "refer_bup", actor="p", role="ppr", values=REFER)
    inserts: list[tuple[str, str]] = []

    def sent(how: str) -> Any:
        def listener(_cursor: object, statement: str, *_: object) -> None:
            if statement.lstrip().upper().startswith("INSERT"):
                inserts.append((statement.split()[2], how))
        return listener

    listeners = {name: sent(name) for name in ("do_execute", "do_executemany")}
    for name, listener in listeners.items():
        event.listen(database.engine, name, listener)
    try:
        engine.advance(second, "refer_bup", actor="p", role="ppr", values=REFER)
    finally:
        for name, listener in listeners.items():
            event.remove(database.engine, name, listener)
    # two deadlines, two audit entries, two messages
    assert sorted(table for table, _ in inserts) == ["audit", "deadlines", "outbox"]
    if database.engine.dialect.name == "postgresql":
        assert {how for _, how in inserts} == {"do_execute"}, inserts


def test_a_batch_costs_the_statements_of_one_step(database: Database) -> None:
    engine = notifying(database)
    one, *many = children(engine, 51)
    engine.advance_many([StepRequest(one, "refer_bup", "p", "ppr", REFER)])
    with statements(database.engine) as single:
        engine.advance_many([StepRequest(many[0], "refer_bup", "p", "ppr", REFER)])
    with statements(database.engine) as batch:
        engine.advance_many([StepRequest(i, "refer_bup", "p", "ppr", REFER) for i in many[1:]])
    assert batch.statements == single.statements
    assert batch.rows == 49 * single.rows
