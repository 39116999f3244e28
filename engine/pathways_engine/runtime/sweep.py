"""Firing due wake-ups exactly once: `pathways tick` and the scheduler's sweep.

A sweep works in batches of instances. Each batch finds instances with a wake-up due, locks
them (PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent sweeps take disjoint instances and
never wait for a caseworker's step; SQLite: BEGIN IMMEDIATE), reads their pending deadlines,
and fires each instance's due wake-ups in due order - including those a timeout's transition
makes due at once - as steps on the one step path. The batch commits whole or not at all.

Lock order is the same everywhere: instance first, then its deadlines and messages. Nothing
locks a deadline without holding its instance, so a sweep and a step cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from pathways_engine import failpoints
from pathways_engine.audit import notes
from pathways_engine.errors import PathwaysError
from pathways_engine.store import reads
from pathways_engine.store.rows import DeadlineRow

from . import gcpause
from .engine import PathwayEngine
from .step import SYSTEM_ACTOR
from .step import SYSTEM_ROLE
from .step import Batch
from .step import StepContext

log = logging.getLogger("pathways.tick")
DEFAULT_BATCH = 500
# wake-ups one instance may fire in one sweep: a definition whose timeouts keep entering
# states that are due at once stops here (logged) instead of looping
MAX_CASCADE = 100
_ORDER = {"reminder": 0, "due": 1, "timeout": 2, "escalation": 3}


@dataclass
class TickSummary:
    fired: Counter[str] = field(default_factory=Counter)
    notifications: int = 0
    batches: int = 0
    not_applied: int = 0
    signals: int = 0  # handover answers and cancellations applied

    @property
    def total(self) -> int:
        return sum(self.fired.values())

    def as_dict(self) -> dict[str, int]:
        return {"fired": self.total, **{k: self.fired.get(k, 0) for k in
                ("reminder", "due", "escalation", "timeout")},
                "notifications": self.notifications, "batches": self.batches,
                "timeouts_not_applied": self.not_applied, "signals": self.signals}


def count_due(engine: PathwayEngine, now: dt.datetime) -> int:
    """Deadlines with a wake-up due at `now` (for a progress bar)."""
    with engine.db.reading() as connection:
        return reads.count_due(connection, now)


class _DryRun(Exception):
    """Rolls a dry run's transaction back."""


def tick(engine: PathwayEngine, now: dt.datetime, *, batch_size: int = DEFAULT_BATCH,
         on_batch: Callable[[int], None] | None = None, max_batches: int | None = None,
         dry_run: bool = False) -> TickSummary:
    """Fire every wake-up due at `now`, cascades included; return what was done.

    `batch_size` is the number of instances per transaction. A dry run works out all of it
    in one transaction and rolls it back: it says what would fire and changes nothing.
    """
    if dry_run:
        summary = TickSummary()
        try:
            with engine.batch() as batch:
                due = reads.due_instances(batch.connection, now, 10**9)
                for instance_id in batch.load(due, with_deadlines=True):
                    _fire_due(batch, instance_id, now, summary)
                summary.batches = 1 if due else 0
                raise _DryRun
        except _DryRun:
            return summary
    from .signals import deliver

    summary = TickSummary()
    summary.signals = deliver(engine)
    busy: set[str] = set()  # held by another sweep or step now: theirs to finish
    idle: set[str] = set()  # found due, but nothing of theirs was (see _mend_wake_ups)
    while max_batches is None or summary.batches < max_batches:
        before = summary.total
        with gcpause.paused(), engine.batch() as batch:
            due = reads.due_instances(batch.connection, now, batch_size, exclude=busy)
            held = batch.load(due, skip_locked=True, with_deadlines=True)
            busy.update(set(due) - set(held))
            for instance_id in held:
                if _fire_due(batch, instance_id, now, summary):
                    continue
                if instance_id in idle:
                    _mend_wake_ups(batch, instance_id)
                idle.add(instance_id)
        if held:
            summary.batches += 1
            if on_batch:
                on_batch(summary.total - before)
        if not due:
            break
    summary.signals += deliver(engine)  # answers the timeouts just fired may have caused
    if summary.total:
        log.info("tick at %s fired %s", now.isoformat(), summary.as_dict())
    return summary


def _next_due(batch: Batch, instance_id: str, now: dt.datetime) -> DeadlineRow | None:
    due = [row for row in batch.cases[instance_id].pending()
           if row.next_fire_at is not None and row.next_fire_at <= now]
    if not due:
        return None
    return min(due, key=lambda r: (r.next_fire_at, _ORDER[r.fires[r.fire_index][0]],
                                   r.id or 0))


def _fire_due(batch: Batch, instance_id: str, now: dt.datetime, summary: TickSummary) -> int:
    """Fire the instance's due wake-ups in due order; return how many fired."""
    for fired in range(MAX_CASCADE):
        row = _next_due(batch, instance_id, now)
        if row is None:
            return fired
        with batch.step(instance_id, undo=False) as step:  # a failure aborts the batch
            _fire(step, row, summary)
        failpoints.hit("tick.fired")
    log.warning("instance %s: more than %d wake-ups due in one sweep; the rest wait for the "
                "next sweep (do its timeouts keep entering states that are due at once?)",
                instance_id, MAX_CASCADE)
    return MAX_CASCADE


def _mend_wake_ups(batch: Batch, instance_id: str) -> None:
    """The index said a wake-up of this instance was due, twice, but its deadlines have none
    due: the stored next wake-up disagrees with them (a row changed by hand, or restored from
    elsewhere). Write it again from the deadlines, or every batch would find the instance
    again, fire nothing, and the sweep would never end.

    Once is no sign of that: on PostgreSQL another sweep, or a step that met the deadline,
    can commit between a batch's search for due wake-ups and its lock, and then the instance
    is not found again."""
    log.warning("instance %s: its stored next wake-up did not match its deadlines' wake-ups; "
                "written again from them", instance_id)
    for row in batch.cases[instance_id].pending():
        row.changed = True


def _fire(step: StepContext, row: DeadlineRow, summary: TickSummary) -> None:
    index = row.fire_index
    kind, when = row.fires[index]
    row.fire_index, row.changed = index + 1, True
    instance = step.instance
    at = max(when, instance.state_entered_at)
    spec = step.compiled.deadline_specs[(row.state, row.name)]
    timed_out = kind == "timeout" and spec.on_timeout is not None
    step.audit(f"timer_{kind}", at=at, actor=SYSTEM_ACTOR, role=SYSTEM_ROLE,
               changes={"deadline": row.name, "due": row.due_at.isoformat(),
                        "responsible": row.responsible},
               effects={"deadline": row.name, "index": index, "timed_out": timed_out})
    summary.fired[kind] += 1
    extra = {"deadline": row.name, "due_at": row.due_at.isoformat(),
             "warning": row.rule.get("warning"),
             "responsible": row.responsible, "kind": kind,
             "escalate_to": list(spec.escalate.to) if spec.escalate else []}
    summary.notifications += step.notify(kind, row.name, at, extra)
    if not timed_out:
        return
    row.status, row.closed_at = "timed_out", at
    assert spec.on_timeout is not None
    try:
        fired, given = step.choose(spec.on_timeout, SYSTEM_ROLE, {}, at)
    except PathwaysError as exc:
        summary.not_applied += 1
        step.audit("timeout_not_applied", at=at, actor=SYSTEM_ACTOR, role=SYSTEM_ROLE,
                   event=spec.on_timeout, changes={"deadline": row.name}, note=str(exc))
        return
    step.transition(fired, given, actor=SYSTEM_ACTOR, role=SYSTEM_ROLE, at=at,
                    note=notes.PASSED.format(deadline=row.name))
