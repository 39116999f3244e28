"""Committed transitions per second, each with its audit entries, deadlines, timers and outbox rows.

The floor is the same rows (1 instance update, 2 audit inserts, 1 deadline closed, its timers
cancelled, 2 deadlines and 5 timers opened, 2 outbox rows) written per step with the plain
DB-API (sqlite3 / psycopg) and with SQLAlchemy Core, in the same run on the same database.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from pathways_engine import StepRequest
from sqlalchemy import text

from .common import START
from .common import Figure
from .common import make_engine
from .common import postgres_reachable
from .common import postgres_url
from .common import seconds
from .common import sqlite_url
from .common import start_children

EVENT = ("refer_bup", "ppr.anne", "ppr", {"referral_received": "2026-11-03"})
NOW = START + dt.timedelta(days=1)

STATEMENTS = [
    ("UPDATE instances SET state = :state, data = :data, version = version + 1, "
     "audit_head = :h, audit_seq = audit_seq + 2, state_entered_at = :t, updated_at = :t "
     "WHERE id = :i", "update"),
    ("INSERT INTO audit (instance_id, seq, at, recorded_at, actor, role, kind, event, from_state, "
     "to_state, changes, note, prev_hash, hash) VALUES (:i, :seq, :t, :t, 'a', 'ppr', 'transition', "
     "'refer_bup', 'referred', 'bup_referred', '{}', NULL, :h, :h)", "audit"),
    ("INSERT INTO audit (instance_id, seq, at, recorded_at, actor, role, kind, event, from_state, "
     "to_state, changes, note, prev_hash, hash) VALUES (:i, :seq2, :t, :t, 'system', 'system', "
     "'notification_queued', NULL, NULL, NULL, '{}', NULL, :h, :h)", "audit"),
    ("UPDATE deadlines SET status = 'met', closed_at = :t WHERE instance_id = :i AND "
     "status = 'pending'", "update"),
    ("UPDATE timers SET status = 'cancelled' WHERE instance_id = :i AND status = 'pending'",
     "update"),
]


def _floor_step(execute: Callable[[str, dict[str, Any]], Any], instance: str, n: int) -> None:
    params = {"i": instance, "state": "bup_referred", "data": json.dumps({"x": 1}), "h": "0" * 64,
              "t": NOW.replace(tzinfo=None), "seq": 1000 + 2 * n, "seq2": 1001 + 2 * n}
    for sql, _ in STATEMENTS:
        execute(sql, params)
    for name in ("information_letter", "assessment_right"):
        deadline = execute(
            "INSERT INTO deadlines (instance_id, name, state, responsible, started_at, due_at, "
            "status, closed_at, rule) VALUES (:i, :n, 'bup_referred', 'bup', :t, :t, 'pending', "
            "NULL, '{}') RETURNING id", {**params, "n": name}).scalar_one()
        for kind in ("reminder", "due", "escalation")[: 3 if name == "assessment_right" else 2]:
            execute("INSERT INTO timers (instance_id, deadline_id, kind, due_at, status, fired_at) "
                    "VALUES (:i, :d, :k, :t, 'pending', NULL)", {**params, "d": deadline, "k": kind})
    for role in ("bup", "contact_person"):
        execute("INSERT INTO outbox (idempotency_key, message_id, instance_id, role, party, channel, "
                "address, language, template, subject, body_text, body_html, personal_data, "
                "legal_basis, status, attempts, next_attempt_at, last_error, created_at, sent_at) "
                "VALUES (:k, :k, :i, :r, 'p', 'console', NULL, 'da', 'step_assigned', 's', 'b', "
                "NULL, false, NULL, 'pending', 0, :t, NULL, :t, NULL)",
                {**params, "k": f"floor:{instance}:{role}", "r": role})


def _floor_core(url: str, instances: list[str]) -> float:
    """The same rows with SQLAlchemy Core, one transaction per step."""
    from pathways_engine.store.database import create_db_engine

    engine = create_db_engine(url)

    def run() -> None:
        for n, instance in enumerate(instances):
            with engine.begin() as conn:
                _floor_step(lambda sql, p: conn.execute(text(sql), p), instance, n)

    elapsed = seconds(run)
    engine.dispose()
    return len(instances) / elapsed


def _floor_dbapi(url: str, instances: list[str]) -> float:
    """The same rows with the driver alone (sqlite3 or psycopg), one transaction per step."""
    from pathways_engine.store.database import create_db_engine

    engine = create_db_engine(url)
    raw = engine.raw_connection()
    cursor = raw.cursor()
    sqlite = engine.dialect.name == "sqlite"

    class Result:
        def __init__(self, row: Any) -> None:
            self.row = row

        def scalar_one(self) -> Any:
            return self.row[0]

    def execute(sql: str, params: dict[str, Any]) -> Result:
        if not sqlite:
            import re

            sql = re.sub(r":(\w+)", r"%(\1)s", sql)
        cursor.execute(sql, params)
        return Result(cursor.fetchone() if "RETURNING" in sql else None)

    def run() -> None:
        for n, instance in enumerate(instances):
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            _floor_step(execute, instance, n)
            raw.commit()

    elapsed = seconds(run)
    raw.close()
    engine.dispose()
    return len(instances) / elapsed


def _pathways(url: str, count: int, batch: int | None) -> tuple[float, float, float]:
    engine = make_engine(url)
    steps = start_children(engine, count, "S")
    floor_ids = start_children(engine, count, "F")
    core_ids = start_children(engine, count, "C")
    kind, actor, role, values = EVENT

    def one_by_one() -> None:
        for instance in steps:
            engine.advance(instance, kind, actor=actor, role=role, values=values)

    def grouped() -> None:
        assert batch is not None
        for k in range(0, len(steps), batch):
            results = engine.advance_many([StepRequest(i, kind, actor, role, values)
                                           for i in steps[k:k + batch]])
            assert not any(isinstance(r, Exception) for r in results), results[0]

    rate = count / seconds(grouped if batch else one_by_one)
    floor_dbapi = _floor_dbapi(url, floor_ids)
    floor_core = _floor_core(url, core_ids)
    engine.db.dispose()
    return rate, floor_dbapi, floor_core


def run(scale: str) -> list[Figure]:
    count = 300 if scale == "quick" else 2000
    figures = []
    targets = [("SQLite", sqlite_url)] + ([("PostgreSQL", postgres_url)] if postgres_reachable() else [])
    for label, make_url in targets:
        for batch in (None, 200):
            with make_url() as url:
                rate, dbapi, core = _pathways(url, count, batch)
            how = "one commit per step" if batch is None else f"advance_many, {batch} per commit"
            goal = ">= 3000/s" if label == "SQLite" else ""
            figures.append(Figure("transitions", f"{label}: pathways advance ({how})", rate,
                                  "steps/s", "same rows, DB-API, commit per step", dbapi, goal,
                                  rate >= 3000 if goal else None))
            figures.append(Figure("transitions", f"{label}: floor, SQLAlchemy Core", core, "steps/s",
                                  "same rows, DB-API, commit per step", dbapi))
    return figures
