"""Populations for the sweep benchmarks, written with SQLAlchemy Core executemany.

Each instance is a clone of one real instance (so its snapshot, subject and audit chain are
valid), with one pending deadline and one reminder timer: due (in the past) for the first
`due` instances, far in the future for the rest, so the sweep has to skip them by index.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from pathways_engine import PathwayEngine
from pathways_engine.store.models import Deadline
from pathways_engine.store.models import Instance
from pathways_engine.store.models import Timer
from sqlalchemy import insert
from sqlalchemy import select

from .common import START
from .common import make_engine
from .common import start_children

CHUNK = 20_000
DUE = START + dt.timedelta(days=3)
LATER = START + dt.timedelta(days=3650)


def template_instance(url: str) -> tuple[PathwayEngine, str, dict[str, Any]]:
    """An engine on `url` and one real instance's row, to clone (snapshot, subject, chain)."""
    engine = make_engine(url)
    [template_id] = start_children(engine, 1, "T")
    with engine.db.sessions() as session:
        template = session.get_one(Instance, template_id)
        row = {c.key: getattr(template, c.key) for c in Instance.__table__.columns}
    return engine, template_id, row


def seed(url: str, population: int, due: int) -> None:
    engine, template_id, row = template_instance(url)
    db = engine.db
    with db.sessions() as session:
        deadline = session.scalars(select(Deadline).where(Deadline.instance_id == template_id)).one()
        drow = {c.key: getattr(deadline, c.key) for c in Deadline.__table__.columns}
        next_id = int(session.scalar(select(Deadline.id).order_by(Deadline.id.desc())) or 0) + 1
    done = 0
    while done < population:
        size = min(CHUNK, population - done)
        instances: list[dict[str, Any]] = []
        deadlines: list[dict[str, Any]] = []
        timers: list[dict[str, Any]] = []
        for n in range(done, done + size):
            iid = f"{n:016x}"
            instances.append({**row, "id": iid})
            deadlines.append({**drow, "id": next_id + n, "instance_id": iid})
            timers.append({"instance_id": iid, "deadline_id": next_id + n, "kind": "reminder",
                           "due_at": DUE if n < due else LATER, "status": "pending",
                           "fired_at": None})
        with db.engine.begin() as conn:
            conn.execute(insert(Instance), instances)
            conn.execute(insert(Deadline), deadlines)
            conn.execute(insert(Timer), timers)
        done += size
        print(f"  seeded {done:,}/{population:,}", file=sys.stderr, end="\r", flush=True)
    print(file=sys.stderr)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    db.dispose()
