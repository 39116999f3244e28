"""pathways against SpiffWorkflow on the same referral: steps per second, persisted per step.

SpiffWorkflow runs `bench/referral.bpmn` (three user tasks, a 14-day timer boundary event)
and, as a service would, serializes the whole workflow to the database after every step. pathways
runs the equivalent path of mistrivsel_referral (start, triage, refer to BUP, BUP accepts) and
does more per step: audit chain, deadlines in the Danish calendar, timers, rendered messages.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy import text

from .common import START
from .common import Figure
from .common import make_engine
from .common import seconds
from .common import sqlite_url

BPMN = Path(__file__).with_name("referral.bpmn")
PATH = [("triage_to_ppr", "ppr.anne", "ppr", {}),
        ("refer_bup", "ppr.anne", "ppr", {"referral_received": "2026-11-03"}),
        ("bup_accepts", "bup.lise", "bup", {})]


def _spiff(url: str, count: int) -> float:
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.util.task import TaskState

    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec("referral")
    serializer = BpmnWorkflowSerializer()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE workflows (id INTEGER PRIMARY KEY, state TEXT NOT NULL)"))

    def save(conn: object, wid: int, workflow: BpmnWorkflow) -> None:
        conn.execute(text("UPDATE workflows SET state = :s WHERE id = :i"),  # type: ignore[attr-defined]
                     {"s": serializer.serialize_json(workflow), "i": wid})

    def run() -> None:
        for wid in range(count):
            workflow = BpmnWorkflow(spec)
            workflow.do_engine_steps()
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO workflows VALUES (:i, :s)"),
                             {"i": wid, "s": serializer.serialize_json(workflow)})
            for _ in range(3):
                with engine.begin() as conn:
                    stored = conn.execute(text("SELECT state FROM workflows WHERE id = :i"),
                                          {"i": wid}).scalar_one()
                    workflow = serializer.deserialize_json(stored)
                    task = workflow.get_next_task(state=TaskState.READY, manual=True)
                    task.data["by"] = "caseworker"
                    task.run()
                    workflow.do_engine_steps()
                    save(conn, wid, workflow)
            assert workflow.is_completed() or workflow.get_tasks(state=TaskState.WAITING)

    elapsed = seconds(run)
    engine.dispose()
    return 4 * count / elapsed


def _pathways(url: str, count: int) -> float:
    engine = make_engine(url)

    def run() -> None:
        for n in range(count):
            instance = engine.start("mistrivsel_referral", subject_ref=f"P-{n}",
                                    birth_date=dt.date(2014, 1, 1), actor="dr.jensen", role="gp",
                                    values={"severity": "moderate", "consent_exchange": True},
                                    at=START)
            for event, actor, role, values in PATH:
                engine.advance(instance, event, actor=actor, role=role, values=values)

    elapsed = seconds(run)
    engine.db.dispose()
    return 4 * count / elapsed


def run(scale: str) -> list[Figure]:
    count = 50 if scale == "quick" else 300
    with sqlite_url() as url:
        spiff = _spiff(url, count)
    with sqlite_url() as url:
        ours = _pathways(url, count)
    return [Figure("peer", "SQLite: pathways steps/s (start + 3 events, audited, with timers "
                   "and messages)", ours, "steps/s",
                   "SpiffWorkflow 3, workflow serialized per step", spiff, ">= 5 x peer",
                   ours >= 5 * spiff)]
