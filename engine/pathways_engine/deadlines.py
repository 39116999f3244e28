"""Deadlines and their timers, opened on entering a state and closed on leaving it.

Runs inside the caller's transaction, so a state change and its timers commit together.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from .calendars import WorkCalendar
from .calendars import compute_after
from .calendars import compute_before
from .calendars import compute_due
from .durations import parse_duration
from .errors import FieldError
from .spec import DeadlineSpec
from .spec import PathwaySpec
from .store.models import Deadline
from .store.models import Instance
from .store.models import Timer


def rule_of(spec: PathwaySpec, deadline: DeadlineSpec) -> dict[str, Any]:
    """What `show` and reports print about the rule behind a deadline."""
    return {
        "duration": str(parse_duration(deadline.duration)),
        "from": deadline.counts_from,
        "status": deadline.status,
        "source": deadline.source,
        "country": spec.country,
        "roll_forward": deadline.calendar.roll_forward,
        "on_timeout": deadline.on_timeout,
    }


def _start_of(spec: PathwaySpec, deadline: DeadlineSpec, instance: Instance,
              entered_at: dt.datetime) -> dt.datetime:
    origin = deadline.counts_from
    if origin == "state_entered":
        return entered_at
    if origin == "pathway_started":
        return instance.started_at
    field = origin.removeprefix("field:")
    value = instance.data.get(field)
    if value is None:
        raise FieldError(
            f"deadline {deadline.name!r} counts from field {field!r}, which has no value yet; "
            f"give it with --set {field}=YYYY-MM-DD"
        )
    zone = ZoneInfo(spec.timezone)
    return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(0), tzinfo=zone)


@dataclass(frozen=True)
class PlannedTimer:
    kind: str
    due_at: dt.datetime


def plan(spec: PathwaySpec, deadline: DeadlineSpec, start: dt.datetime) -> tuple[
        dt.datetime, list[PlannedTimer]]:
    """The due time and the timers of one deadline counted from `start`."""
    zone = ZoneInfo(spec.timezone)
    calendar = WorkCalendar(spec.country, deadline.calendar)
    due = compute_due(start, parse_duration(deadline.duration), calendar, zone)
    timers = [PlannedTimer("reminder", compute_before(due, parse_duration(lead), calendar, zone))
              for lead in deadline.reminders]
    if deadline.remind_at_due or deadline.on_timeout:
        timers.append(PlannedTimer("timeout" if deadline.on_timeout else "due", due))
    if deadline.escalate:
        timers.append(PlannedTimer(
            "escalation", compute_after(due, parse_duration(deadline.escalate.after), calendar, zone)))
    return due, timers


def open_deadlines(session: Session, spec: PathwaySpec, instance: Instance, state: str | None,
                   entered_at: dt.datetime) -> list[Deadline]:
    """Create the deadlines (and timers) of `state`, or the pathway-wide ones for None."""
    specs = spec.deadlines if state is None else spec.states[state].deadlines
    created, planned = [], []
    for deadline in specs:
        start = _start_of(spec, deadline, instance, entered_at)
        due, timers = plan(spec, deadline, start)
        row = Deadline(
            instance_id=instance.id, name=deadline.name, state=state,
            responsible=deadline.responsible or (spec.states[state].responsible if state else None),
            started_at=start.astimezone(dt.UTC), due_at=due, status="pending", closed_at=None,
            rule=rule_of(spec, deadline),
        )
        session.add(row)
        created.append(row)
        planned.append(timers)
    for row, timers in zip(created, planned, strict=True):  # the flush fills deadline_id
        session.add_all([Timer(instance_id=instance.id, deadline=row, kind=timer.kind,
                               due_at=timer.due_at, status="pending", fired_at=None)
                         for timer in timers])
    return created


def close_deadlines(session: Session, instance: Instance, at: dt.datetime, *,
                    state: str | None, whole_pathway: bool = False) -> list[Deadline]:
    """Mark the pending deadlines of a state left (or all, at the end) met, cancel their timers."""
    query = select(Deadline).where(Deadline.instance_id == instance.id,
                                   Deadline.status == "pending")
    if not whole_pathway:
        query = query.where(Deadline.state == state)
    closed = list(session.scalars(query))
    for row in closed:
        row.status = "met" if at <= row.due_at else "met_late"
        row.closed_at = at
    if closed:
        session.execute(
            update(Timer)
            .where(Timer.deadline_id.in_([row.id for row in closed]), Timer.status == "pending")
            .values(status="cancelled")
        )
    return closed


def display_status(row: Deadline, now: dt.datetime, zone: ZoneInfo) -> str:
    """pending, due (falls due today, local time), overdue, or how it was closed."""
    if row.status != "pending":
        return row.status
    if now > row.due_at:
        return "overdue"
    if now.astimezone(zone).date() == row.due_at.astimezone(zone).date():
        return "due"
    return "pending"
