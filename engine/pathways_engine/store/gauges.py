"""What operations watch, read in one snapshot: how late the sweep is, what waits to be sent.

Timer lag is the age of the oldest wake-up that is due and has not fired: 0 while the sweep
keeps up, growing when it is stopped or behind (Camunda's overdue-timer metric).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import func
from sqlalchemy import select

from .tables import audit
from .tables import deadlines
from .tables import instances
from .tables import outbox


def read(connection: Connection, now: dt.datetime) -> dict[str, Any]:
    due = (select(func.min(deadlines.c.next_fire_at), func.count())
           .where(deadlines.c.status == "pending", deadlines.c.next_fire_at <= now))
    oldest, waiting = connection.execute(due).one()
    return {
        "timer_lag_seconds": max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        "timers_due": int(waiting),
        "outbox": [(r.status, r.channel, int(r.n)) for r in connection.execute(
            select(outbox.c.status, outbox.c.channel, func.count().label("n"))
            .group_by(outbox.c.status, outbox.c.channel))],
        "instances": [(r.status, int(r.n)) for r in connection.execute(
            select(instances.c.status, func.count().label("n")).group_by(instances.c.status))],
        "steps": [(r.kind, int(r.n)) for r in connection.execute(
            select(audit.c.kind, func.count().label("n"))
            .where(audit.c.kind.in_(("transition", "internal", "timer_timeout")))
            .group_by(audit.c.kind))],
    }
