"""Firing due timers exactly once: `pathways tick` and the scheduler's sweep.

Timers are claimed in due order in bounded batches; each batch - timer rows marked fired,
audit entries, outbox rows, timeout transitions - commits as one transaction or not at all.
A tick killed halfway therefore leaves its batch pending and the next tick fires it. On
PostgreSQL concurrent ticks claim disjoint batches (FOR UPDATE SKIP LOCKED) and lock the
instances they touch; on SQLite BEGIN IMMEDIATE serialises them. After downtime every missed
timer fires once, in due order.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from . import failpoints
from .errors import PathwaysError
from .runtime import SYSTEM_ACTOR
from .runtime import SYSTEM_ROLE
from .runtime import PathwayEngine
from .store.models import Deadline
from .store.models import Instance
from .store.models import Subject
from .store.models import Timer
from .store.models import bump_revision

log = logging.getLogger("pathways.tick")
DEFAULT_BATCH = 500


@dataclass
class TickSummary:
    fired: Counter[str] = field(default_factory=Counter)
    notifications: int = 0
    batches: int = 0
    not_applied: int = 0

    @property
    def total(self) -> int:
        return sum(self.fired.values())

    def as_dict(self) -> dict[str, int]:
        return {"fired": self.total, **{k: self.fired.get(k, 0) for k in
                ("reminder", "due", "escalation", "timeout")},
                "notifications": self.notifications, "batches": self.batches,
                "timeouts_not_applied": self.not_applied}


def count_due(engine: PathwayEngine, now: dt.datetime) -> int:
    with engine.db.sessions() as session:
        query = select(func.count()).select_from(Timer).where(
            Timer.status == "pending", Timer.due_at <= now)
        return int(session.scalar(query) or 0)


def tick(engine: PathwayEngine, now: dt.datetime, *, batch_size: int = DEFAULT_BATCH,
         on_batch: Callable[[int], None] | None = None, max_batches: int | None = None) -> TickSummary:
    """Fire every timer due at `now`; return what was done."""
    summary = TickSummary()
    while max_batches is None or summary.batches < max_batches:
        with engine.writing() as session:
            count = _one_batch(engine, session, now, batch_size, summary)
        if count:
            summary.batches += 1
            if on_batch:
                on_batch(count)
        if count < batch_size:
            break
    if summary.total:
        log.info("tick at %s fired %s", now.isoformat(), summary.as_dict())
    return summary


def _one_batch(engine: PathwayEngine, session: Session, now: dt.datetime, batch_size: int,
               summary: TickSummary) -> int:
    timers = list(session.scalars(
        select(Timer).where(Timer.status == "pending", Timer.due_at <= now)
        .order_by(Timer.due_at, Timer.id).limit(batch_size)
        .with_for_update(skip_locked=True, of=Timer)))
    if not timers:
        return 0
    ids = sorted({t.instance_id for t in timers})
    instances = {i.id: i for i in session.scalars(
        select(Instance).where(Instance.id.in_(ids)).order_by(Instance.id)
        .with_for_update(of=Instance).execution_options(populate_existing=True))}
    deadlines = {d.id: d for d in session.scalars(
        select(Deadline).where(Deadline.id.in_({t.deadline_id for t in timers})))}
    local = Counter[str]()
    with session.no_autoflush:  # the batch's rows go out together at commit (bench/sweep.py)
        for timer in timers:
            _fire(engine, session, timer, instances[timer.instance_id],
                  deadlines[timer.deadline_id], now, summary, local)
            failpoints.hit("tick.fired")
    summary.fired.update(local)
    return len(timers)


def _fire(engine: PathwayEngine, session: Session, timer: Timer, instance: Instance,
          deadline: Deadline, now: dt.datetime, summary: TickSummary, local: Counter[str]) -> None:
    timer.status = "fired"
    timer.fired_at = now
    if deadline.status != "pending" or instance.status != "active":
        timer.status = "cancelled"  # the deadline closed in the same batch
        return
    local[timer.kind] += 1
    bump_revision(instance)
    compiled = engine.compiled_for(session, instance.content_hash)
    subject = session.get_one(Subject, instance.subject_id)
    spec = next(d for s, d in compiled.spec.all_deadlines()
                if d.name == deadline.name and s == deadline.state)
    at = max(timer.due_at, instance.state_entered_at)
    audit.append(session, instance, at=at, recorded_at=now, actor=SYSTEM_ACTOR, role=SYSTEM_ROLE,
                 kind=f"timer_{timer.kind}",
                 changes={"deadline": deadline.name, "due": deadline.due_at.isoformat(),
                          "responsible": deadline.responsible})
    extra = {"deadline": deadline.name, "due_at": deadline.due_at.isoformat(),
             "responsible": deadline.responsible, "kind": timer.kind,
             "escalate_to": list(spec.escalate.to) if spec.escalate else []}
    summary.notifications += engine.notify(session, compiled, instance, subject, timer.kind,
                                           deadline.name, at, extra)
    instance.updated_at = now
    if timer.kind != "timeout" or not spec.on_timeout:
        return
    deadline.status = "timed_out"
    deadline.closed_at = at
    try:
        fired, given = engine.choose(compiled, instance, subject, spec.on_timeout, SYSTEM_ROLE,
                                     {}, at)
    except PathwaysError as exc:
        summary.not_applied += 1
        audit.append(session, instance, at=at, recorded_at=now, actor=SYSTEM_ACTOR,
                     role=SYSTEM_ROLE, kind="timeout_not_applied", event=spec.on_timeout,
                     changes={"deadline": deadline.name}, note=str(exc))
        return
    engine.apply(session, compiled, instance, subject, fired, given, actor=SYSTEM_ACTOR,
                 role=SYSTEM_ROLE, at=at, now=now, note=f"deadline {deadline.name} passed")
