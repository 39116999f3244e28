"""pathways against SpiffWorkflow on the same referral, the same database, the same settings.

SpiffWorkflow runs `bench/referral.bpmn` (three user tasks, a 14-day timer boundary event)
and, as a service would, loads and stores the whole workflow in the database for every step.
pathways runs the equivalent path of mistrivsel_referral (triage_to_ppr, refer_bup,
bup_accepts) through the engine and the notifications composer, as the CLI runs it, and does
more per step: audit chain, deadlines in the Danish calendar, rendered messages.

Fair by construction: both write through an engine made by `create_db_engine`, so both get
SQLite's WAL, synchronous=NORMAL and BEGIN IMMEDIATE (or the same PostgreSQL), one
transaction per persisted step; both are measured warm, in the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pathways_engine import StepRequest
from pathways_engine.store.database import create_db_engine
from sqlalchemy import text

from .common import Figure
from .common import make_engine
from .common import median_of
from .common import postgres_reachable
from .common import postgres_url
from .common import seconds
from .common import sqlite_url
from .common import start_children
from .common import statements

BPMN = Path(__file__).with_name("referral.bpmn")
PATH = [("triage_to_ppr", "ppr.anne", "ppr", {}),
        ("refer_bup", "ppr.anne", "ppr", {"referral_received": "2026-11-03"}),
        ("bup_accepts", "bup.lise", "bup", {})]


def spiff(url: str, count: int, *, raw: bool) -> float:
    """Steps per second: start and three user tasks, each persisted in its own transaction.

    `raw`: through the driver's own connection (sqlite3 / psycopg) instead of SQLAlchemy, the
    fastest a service could store it; the engine (and so the settings) is the same.
    """
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.util.task import TaskState

    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec("referral")
    serializer = BpmnWorkflowSerializer()
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE workflows (id INTEGER PRIMARY KEY, state TEXT NOT NULL)"))
    store = _RawStore(engine) if raw else _CoreStore(engine)

    def run(first: int, last: int) -> None:
        for wid in range(first, last):
            workflow = BpmnWorkflow(spec)
            workflow.do_engine_steps()
            store.insert(wid, serializer.serialize_json(workflow))
            for _ in range(3):
                def step(stored: str) -> str:
                    workflow = serializer.deserialize_json(stored)
                    task = workflow.get_next_task(state=TaskState.READY, manual=True)
                    task.data["by"] = "caseworker"
                    task.run()
                    workflow.do_engine_steps()
                    return str(serializer.serialize_json(workflow))
                store.update(wid, step)

    run(0, 10)  # warm
    rate = 4 * count / seconds(lambda: run(10, 10 + count))
    store.close()
    engine.dispose()
    return rate


class _CoreStore:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def insert(self, wid: int, state: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("INSERT INTO workflows VALUES (:i, :s)"), {"i": wid, "s": state})

    def update(self, wid: int, step: Callable[[str], str]) -> None:
        with self.engine.begin() as conn:
            stored = conn.execute(text("SELECT state FROM workflows WHERE id = :i"),
                                  {"i": wid}).scalar_one()
            conn.execute(text("UPDATE workflows SET state = :s WHERE id = :i"),
                         {"s": step(stored), "i": wid})

    def close(self) -> None:
        pass


class _RawStore:
    """The driver's connection, with the BEGIN IMMEDIATE pathways' engine uses on SQLite."""

    def __init__(self, engine: Any) -> None:
        self.raw = engine.raw_connection()
        self.sqlite = engine.dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"

    def _begin(self) -> Any:
        cursor = self.raw.cursor()
        if self.sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        return cursor

    def insert(self, wid: int, state: str) -> None:
        cursor = self._begin()
        cursor.execute(f"INSERT INTO workflows VALUES ({self.mark}, {self.mark})", (wid, state))
        self.raw.commit()

    def update(self, wid: int, step: Callable[[str], str]) -> None:
        cursor = self._begin()
        cursor.execute(f"SELECT state FROM workflows WHERE id = {self.mark}", (wid,))
        stored = cursor.fetchone()[0]
        cursor.execute(f"UPDATE workflows SET state = {self.mark} WHERE id = {self.mark}",
                       (step(stored), wid))
        self.raw.commit()

    def close(self) -> None:
        self.raw.close()


def pathways(url: str, count: int, batch: int | None) -> tuple[float, float, float]:
    """(steps/s, statements per step incl. BEGIN and COMMIT, rows written per step).

    Timed without the statement counter and counted on instances of their own, untimed: on
    PostgreSQL the counter asks the server for its row count twice a transaction, which
    slowed pathways' steps to less than half their rate there (SpiffWorkflow runs without
    it)."""
    engine = make_engine(url)
    warm = start_children(engine, 5, "W")
    ids = start_children(engine, count, "P")
    counted_ids = start_children(engine, count, "C")
    for instance in warm:
        for event, actor, role, values in PATH:
            engine.advance(instance, event, actor=actor, role=role, values=values)

    def one_by_one(ids: list[str]) -> None:
        for instance in ids:
            for event, actor, role, values in PATH:
                engine.advance(instance, event, actor=actor, role=role, values=values)

    def grouped(ids: list[str]) -> None:
        assert batch is not None
        for event, actor, role, values in PATH:
            for k in range(0, len(ids), batch):
                results = engine.advance_many([StepRequest(i, event, actor, role, values)
                                               for i in ids[k:k + batch]])
                assert not any(isinstance(r, Exception) for r in results), results[0]

    work: Callable[[list[str]], Any] = grouped if batch else one_by_one
    elapsed = seconds(lambda: work(ids))
    with statements(engine.db.engine) as counted:
        work(counted_ids)
    engine.db.dispose()
    steps = 3 * count
    return steps / elapsed, counted.statements / steps, counted.rows / steps


def run(scale: str) -> list[Figure]:
    count = 60 if scale == "quick" else 400
    repeats = 1 if scale == "quick" else 3
    targets = [("SQLite", sqlite_url)] + ([("PostgreSQL", postgres_url)]
                                         if postgres_reachable() else [])
    figures = []
    for label, make_url in targets:
        def peer(make: Callable[..., Any] = make_url, raw: bool = False) -> float:
            with make() as url:
                return spiff(url, count, raw=raw)

        # the faster of the two ways to store SpiffWorkflow is the baseline
        peer_rate = max(median_of(repeats, lambda: peer(raw=False)),
                        median_of(repeats, lambda: peer(raw=True)))
        for batch, goal in ((None, 0.6), (200, 1.5)):
            measured: list[tuple[float, float, float]] = []

            def ours(make: Callable[..., Any] = make_url, size: int | None = batch,
                     measured: list[tuple[float, float, float]] = measured) -> float:
                with make() as url:
                    measured.append(pathways(url, count, size))
                return measured[-1][0]

            rate = median_of(repeats, ours)
            _, per_step, rows = measured[-1]
            how = "advance, one commit per step" if batch is None else \
                f"advance_many, {batch} per commit"
            figures.append(Figure(
                "peer", f"{label}: pathways {how}", rate, "steps/s",
                "SpiffWorkflow 3, same database and settings, stored per step "
                "(the faster of DB-API and SQLAlchemy)", peer_rate,
                f">= {goal} x peer" if label == "SQLite" else "",
                rate >= goal * peer_rate if label == "SQLite" else None,
                note=f"{per_step:.2f} statements per step (BEGIN and COMMIT included), "
                     f"{rows:.1f} rows written per step"))
    return figures
