"""Planning a deadline: when it falls due and when it wakes the sweep (reminders, due, escalation).

Pure arithmetic over the definition and the national calendar; the step path writes the
result as one deadline row carrying its wake-ups.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from pathways_engine.definition.spec import DeadlineSpec
from pathways_engine.definition.spec import PathwaySpec
from pathways_engine.errors import FieldError
from pathways_engine.rules.calendars import WorkCalendar
from pathways_engine.rules.calendars import compute_after
from pathways_engine.rules.calendars import compute_before
from pathways_engine.rules.calendars import compute_due
from pathways_engine.rules.durations import parse_duration
from pathways_engine.store.rows import DeadlineRow
from pathways_engine.store.rows import InstanceRow

# wake-ups at the same moment fire in this order
_ORDER = {"reminder": 0, "due": 1, "timeout": 2, "escalation": 3}


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


def start_of(spec: PathwaySpec, deadline: DeadlineSpec, instance: InstanceRow,
             entered_at: dt.datetime) -> dt.datetime:
    """The moment a deadline counts from: entering its state, the start, or a date field."""
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


def plan(spec: PathwaySpec, deadline: DeadlineSpec, start: dt.datetime) -> tuple[
        dt.datetime, list[tuple[str, dt.datetime]]]:
    """The due time and the wake-ups of one deadline counted from `start`, in firing order."""
    zone = ZoneInfo(spec.timezone)
    calendar = WorkCalendar(spec.country, deadline.calendar.rules())
    due = compute_due(start, parse_duration(deadline.duration), calendar, zone)
    fires = [("reminder", compute_before(due, parse_duration(lead), calendar, zone))
             for lead in deadline.reminders]
    if deadline.remind_at_due or deadline.on_timeout:
        fires.append(("timeout" if deadline.on_timeout else "due", due))
    if deadline.escalate:
        fires.append(("escalation",
                      compute_after(due, parse_duration(deadline.escalate.after), calendar, zone)))
    fires.sort(key=lambda fire: (fire[1], _ORDER[fire[0]]))
    return due, fires


def new_deadline(spec: PathwaySpec, deadline: DeadlineSpec, instance: InstanceRow,
                 state: str | None, entered_at: dt.datetime) -> DeadlineRow:
    start = start_of(spec, deadline, instance, entered_at)
    due, fires = plan(spec, deadline, start)
    responsible = deadline.responsible or (spec.states[state].responsible if state else None)
    return DeadlineRow(instance_id=instance.id, name=deadline.name, state=state,
                       responsible=responsible, started_at=start.astimezone(dt.UTC), due_at=due,
                       status="pending", closed_at=None, rule=rule_of(spec, deadline), fires=fires)


def closed_status(row: DeadlineRow, at: dt.datetime) -> str:
    return "met" if at <= row.due_at else "met_late"
