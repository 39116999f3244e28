"""Populations for the sweep benchmarks, written with SQLAlchemy Core executemany.

Each instance is a clone of one real instance (so its snapshot, subject and audit chain are
valid), with one pending deadline whose one wake-up (a reminder) is due (in the past) for the
first `due` instances and far in the future for the rest, so the sweep skips them by index.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from pathways_engine import PathwayEngine
from pathways_engine.store.tables import deadlines
from pathways_engine.store.tables import instances
from sqlalchemy import func
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
    with engine.db.reading() as connection:
        template = connection.execute(select(instances).where(instances.c.id == template_id)).one()
    return engine, template_id, dict(template._mapping)


def seed(url: str, population: int, due: int) -> None:
    engine, template_id, row = template_instance(url)
    db = engine.db
    with db.reading() as connection:
        drow = dict(connection.execute(select(deadlines).where(
            deadlines.c.instance_id == template_id)).one()._mapping)
        next_id = int(connection.scalar(select(func.max(deadlines.c.id))) or 0) + 1
    done = 0
    while done < population:
        size = min(CHUNK, population - done)
        new_instances: list[dict[str, Any]] = []
        new_deadlines: list[dict[str, Any]] = []
        for n in range(done, done + size):
            iid = f"{n:016x}"
            wake = DUE if n < due else LATER
            new_instances.append({**row, "id": iid})
            new_deadlines.append({**drow, "id": next_id + n, "instance_id": iid,
                                  "fires": [["reminder", wake.isoformat()]], "fire_index": 0,
                                  "next_fire_at": wake})
        with db.engine.begin() as conn:
            conn.execute(insert(instances), new_instances)
            conn.execute(insert(deadlines), new_deadlines)
        done += size
        print(f"  seeded {done:,}/{population:,}", file=sys.stderr, end="\r", flush=True)
    print(file=sys.stderr)
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    db.dispose()
