"""`pathways report` over a large history, against the database's own full scan of that history.

The report aggregates every stay and deadline in the period inside the database (window
functions), so its cost should be a small multiple of one pass over the audit table, and no
rows are loaded into Python.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from pathways_engine.store.tables import audit
from pathways_engine.store.tables import deadlines
from pathways_engine.store.tables import instances
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text

from .common import START
from .common import Figure
from .common import best_of
from .common import seconds
from .common import sqlite_url
from .seeding import template_instance

CHUNK = 10_000


def _seed(url: str, count: int) -> Any:
    """`count` children: referred -> ppr_assessment -> closed, a met and a late deadline each."""
    engine, _, row = template_instance(url)
    db = engine.db
    for start in range(0, count, CHUNK):
        new_instances: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        new_deadlines: list[dict[str, Any]] = []
        for n in range(start, min(count, start + CHUNK)):
            iid = f"{n:016x}"
            begun = START + dt.timedelta(minutes=n % 10_000)
            triaged = begun + dt.timedelta(days=1 + n % 20)
            closed = triaged + dt.timedelta(days=5 + n % 30)
            new_instances.append({**row, "id": iid, "state": "closed", "status": "completed",
                              "completed_at": closed, "audit_seq": 3})
            for seq, (kind, state, at) in enumerate([("start", "referred", begun),
                                                     ("transition", "ppr_assessment", triaged),
                                                     ("transition", "closed", closed)], 1):
                entries.append({"instance_id": iid, "seq": seq, "at": at, "recorded_at": at,
                                "actor": "a", "role": "ppr", "kind": kind, "event": None,
                                "from_state": None, "to_state": state, "changes": {},
                                "note": None, "effects": None, "prev_hash": "0" * 64,
                                "hash": "0" * 64, "mac": None})
            new_deadlines.append({"instance_id": iid, "name": "municipal_triage", "state": "referred",
                              "responsible": "ppr", "started_at": begun,
                              "due_at": begun + dt.timedelta(days=14),
                              "status": "met" if n % 20 < 13 else "met_late",
                              "closed_at": triaged, "rule": {}, "fires": [],
                              "fire_index": 0, "next_fire_at": None})
        with db.engine.begin() as conn:
            conn.execute(insert(instances), new_instances)
            conn.execute(insert(audit), entries)
            conn.execute(insert(deadlines), new_deadlines)
        print(f"  seeded {min(count, start + CHUNK):,}/{count:,}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return engine


def run(scale: str) -> list[Figure]:
    from pathways_engine.reading.reporting import report

    count = 20_000 if scale == "quick" else 1_000_000
    with sqlite_url() as url:
        engine = _seed(url, count)
        period: dict[str, Any] = {"start": START - dt.timedelta(days=1),
                                  "end": START + dt.timedelta(days=400),
                                  "now": START + dt.timedelta(days=400), "pathway": None}
        rows: list[dict[str, Any]] = []

        def one_report() -> None:
            rows[:] = report(engine, by="step", **period)

        def full_scan() -> None:
            with engine.db.engine.connect() as conn:
                conn.execute(text("select count(*), max(at), max(to_state) from audit")).one()

        ours = best_of(3, lambda: seconds(one_report))
        floor = best_of(3, lambda: seconds(full_scan))
        with engine.db.reading() as connection:
            total = connection.scalar(select(func.max(audit.c.id)))
        engine.db.dispose()
    referred = next(r for r in rows if r["step"] == "referred")
    assert referred["completed"] >= count, referred
    return [Figure("report", f"SQLite: report by step over {count:,} pathways ({total:,} audit "
                   "entries)", ours, "s", "one full scan of the audit table", floor,
                   note=f"median {referred['median_days']} d, p90 {referred['p90_days']} d, "
                        f"met {referred['deadlines_met_share']}")]
